"""The quota memory: a 45009 seen by one task stops every task for that (account, endpoint) until the reset."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest

from tests.fixtures.storage import SCHEMA, query
from wechat_datacube.errors import ConfigError
from wechat_datacube.storage.quota import blocked_until, record_block

NOW = dt.datetime(2025, 3, 10, 12, tzinfo=dt.UTC)
RESET = NOW + dt.timedelta(hours=4)


def block(conn: psycopg.Connection[Any], until: dt.datetime, endpoint: str = "getusershare", message: str = "45009") -> None:
    record_block(conn, SCHEMA, account="acme", endpoint=endpoint, until=until, message=message)


def test_a_recorded_block_holds_until_the_reset_and_not_after(db: psycopg.Connection[Any]) -> None:
    block(db, RESET)
    assert blocked_until(db, SCHEMA, account="acme", endpoint="getusershare", now=NOW) == RESET
    assert blocked_until(db, SCHEMA, account="acme", endpoint="getusershare", now=RESET) is None
    assert db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_block_is_per_account_and_endpoint(db: psycopg.Connection[Any]) -> None:
    block(db, RESET)
    assert blocked_until(db, SCHEMA, account="acme", endpoint="getuserread", now=NOW) is None
    assert blocked_until(db, SCHEMA, account="other", endpoint="getusershare", now=NOW) is None


def test_a_later_block_extends_and_an_earlier_one_never_shortens(db: psycopg.Connection[Any]) -> None:
    block(db, RESET)
    block(db, RESET - dt.timedelta(hours=1), message="stale worker")
    assert blocked_until(db, SCHEMA, account="acme", endpoint="getusershare", now=NOW) == RESET
    block(db, RESET + dt.timedelta(days=1))
    assert blocked_until(db, SCHEMA, account="acme", endpoint="getusershare", now=NOW) == RESET + dt.timedelta(days=1)
    assert query(db, f"SELECT count(*) FROM {SCHEMA}.quota_block") == [(1,)]


def test_a_long_message_is_cut_to_two_thousand_characters(db: psycopg.Connection[Any]) -> None:
    block(db, RESET, message="x" * 5000)
    assert query(db, f"SELECT length(message) FROM {SCHEMA}.quota_block") == [(2000,)]


def test_reading_joins_an_open_transaction_and_recording_refuses_one(db: psycopg.Connection[Any]) -> None:
    block(db, RESET)
    db.execute("SELECT 1")
    assert blocked_until(db, SCHEMA, account="acme", endpoint="getusershare", now=NOW) == RESET
    with pytest.raises(ConfigError, match="no open transaction"):
        block(db, RESET)
    db.rollback()
