"""The one table checksum: blind to row order and bookkeeping, sensitive to what was stored."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from wechat_datacube_dev.checksums import table_checksums

from tests.fixtures.postgres import _create_db, _drop_db
from wechat_datacube.endpoints import get_endpoint

ENDPOINT = "getusershare"
TABLE = get_endpoint(ENDPOINT).table
DAY = dt.date(2024, 6, 1)
ROWS = [(DAY, 1, 10, 11), (DAY, 2, 20, 22), (DAY + dt.timedelta(days=1), 1, 30, 33)]


@pytest.fixture
def dsn() -> Iterator[str]:
    """A database with two schemas holding the endpoint's table (registry columns and bookkeeping)."""
    name, dsn = _create_db("wdc_checksums")
    with psycopg.connect(dsn, autocommit=True) as conn:
        for schema in ("a", "b"):
            conn.execute(f"CREATE SCHEMA {schema}")
            conn.execute(
                f"CREATE TABLE {schema}.{TABLE} (account text, ref_date date, share_scene int, share_user int, "
                "share_count int, extra jsonb NOT NULL DEFAULT '{}', loaded_at timestamptz DEFAULT now(), "
                "response_id bigint)"
            )
    yield dsn
    _drop_db(name)


def insert(dsn: str, schema: str, rows: list[tuple[Any, ...]], *, account: str = "acc", response_id: int = 1,
           extra: str = "{}") -> None:  # fmt: skip
    with psycopg.connect(dsn, autocommit=True) as conn:
        for row in rows:
            conn.execute(
                f"INSERT INTO {schema}.{TABLE} (account, ref_date, share_scene, share_user, share_count, extra, "
                "response_id) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (account, *row, extra, response_id),
            )


def checksum(dsn: str, schema: str, **kwargs: Any) -> tuple[int, str]:
    return table_checksums(dsn, [ENDPOINT], schema=schema, **kwargs)[TABLE]


def test_an_empty_table_is_zero_rows_and_the_md5_of_nothing(dsn: str) -> None:
    assert checksum(dsn, "a") == (0, hashlib.md5(b"").hexdigest())


def test_row_order_and_bookkeeping_do_not_count(dsn: str) -> None:
    insert(dsn, "a", ROWS, response_id=1)
    insert(dsn, "b", ROWS[::-1], response_id=7)  # other order, other api_response, later loaded_at
    assert checksum(dsn, "a") == checksum(dsn, "b")
    assert checksum(dsn, "a")[0] == len(ROWS)


def test_one_changed_metric_changes_the_checksum(dsn: str) -> None:
    insert(dsn, "a", ROWS)
    insert(dsn, "b", [*ROWS[:2], (*ROWS[2][:3], 34)])
    assert checksum(dsn, "a") != checksum(dsn, "b")


def test_the_account_counts_unless_left_out(dsn: str) -> None:
    insert(dsn, "a", ROWS, account="soak")
    insert(dsn, "b", ROWS, account="ref")
    assert checksum(dsn, "a") != checksum(dsn, "b")
    assert checksum(dsn, "a", with_account=False) == checksum(dsn, "b", with_account=False)


def test_the_extra_column_counts_only_when_asked(dsn: str) -> None:
    insert(dsn, "a", ROWS)
    insert(dsn, "b", ROWS, extra='{"new_field": 1}')
    assert checksum(dsn, "a") == checksum(dsn, "b")
    assert checksum(dsn, "a", with_extra=True) != checksum(dsn, "b", with_extra=True)


def test_a_date_window_sees_only_its_days(dsn: str) -> None:
    insert(dsn, "a", ROWS[:2])
    insert(dsn, "b", ROWS)
    assert checksum(dsn, "a") != checksum(dsn, "b")
    assert checksum(dsn, "a", begin=DAY, end=DAY) == checksum(dsn, "b", begin=DAY, end=DAY)
