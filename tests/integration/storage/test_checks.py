"""Data-quality checks on a written window (inside the write, and on demand)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.fixtures.storage import ACCOUNT, D1, SCHEMA, SHARE, checksum, share_rows, write_share
from wechat_datacube.endpoints import get_endpoint
from wechat_datacube.errors import DataQualityError
from wechat_datacube.storage.checks import run_checks
from wechat_datacube.storage.writer import write_window

SHARE_HOUR = get_endpoint("getusersharehour")


# --- checks -----------------------------------------------------------------------------------------


def test_a_negative_metric_fails_the_check_and_rolls_the_window_back(db: psycopg.Connection[Any]) -> None:
    write_share(db, share_rows([0]), first=0, last=0)
    before = checksum(db, SHARE)
    bad = share_rows([0])
    bad[1]["share_count"] = -4
    with pytest.raises(DataQualityError, match=r"1 row\(s\) with negative share_count \(lowest -4\)") as err:
        write_share(db, bad, first=0, last=0)
    assert "account=wx_acc" in str(err.value) and "endpoint=getusershare" in str(err.value)
    assert checksum(db, SHARE) == before


def test_an_impossible_ref_hour_fails_the_check(db: psycopg.Connection[Any]) -> None:
    rows = [{"ref_date": D1.isoformat(), "ref_hour": h, "share_scene": 1, "share_user": 1} for h in (0, 100, 150, 2400)]
    with pytest.raises(
        DataQualityError, match=r"2 row\(s\) with ref_hour outside 0, 100, ..., 2300 \(seen \[150, 2400\]\)"
    ):
        write_window(db, SCHEMA, spec=SHARE_HOUR, account=ACCOUNT, begin_date=D1, end_date=D1, body={"list": rows})
    assert checksum(db, SHARE_HOUR)[0] == 0


def test_run_checks_passes_on_a_clean_window(db: psycopg.Connection[Any]) -> None:
    rows = [{"ref_date": D1.isoformat(), "ref_hour": h * 100, "share_scene": 1, "share_user": h} for h in range(24)]
    write_window(db, SCHEMA, spec=SHARE_HOUR, account=ACCOUNT, begin_date=D1, end_date=D1, body={"list": rows})
    run_checks(db, SCHEMA, SHARE_HOUR, ACCOUNT, D1, D1)  # raises on failure
    assert db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_run_checks_finds_duplicate_keys_if_the_primary_key_was_lost(db: psycopg.Connection[Any]) -> None:
    result = write_share(db, share_rows([0]), first=0, last=0)
    db.execute(f"ALTER TABLE {SCHEMA}.user_share DROP CONSTRAINT user_share_pkey")
    db.execute(
        f"INSERT INTO {SCHEMA}.user_share (account, ref_date, share_scene, share_user, response_id)"
        " VALUES (%s, %s, 1, 0, %s)",
        (ACCOUNT, D1, result.response_id),
    )
    db.commit()
    with pytest.raises(DataQualityError, match=r"1 key\(s\) \(account, ref_date, share_scene\) stored more than once"):
        run_checks(db, SCHEMA, SHARE, ACCOUNT, D1, D1)
