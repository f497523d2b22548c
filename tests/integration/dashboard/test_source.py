"""The dashboard's read transaction: read-only, bounded in time, no JIT compilation."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.fixtures.accounts import write_accounts_file
from wechat_datacube.accounts import load_accounts
from wechat_datacube.dashboard.source import STATEMENT_TIMEOUT_MS, SourceUnavailableError, read_cursor


def test_read_cursor_is_read_only_with_a_timeout_and_no_jit(fresh_pg: tuple[str, str], tmp_path) -> None:
    conn_id, _ = fresh_pg
    path = write_accounts_file(tmp_path, name="src", postgres_conn_id=conn_id, start_date=dt.date(2025, 1, 1))
    (account,) = load_accounts(path).accounts
    with read_cursor(account) as cur:
        cur.execute("SELECT setting::int, (SELECT setting FROM pg_settings WHERE name = 'jit')"
                    " FROM pg_settings WHERE name = 'statement_timeout'")
        assert cur.fetchone() == (STATEMENT_TIMEOUT_MS, "off")
    with pytest.raises(SourceUnavailableError), read_cursor(account) as cur:
        cur.execute("CREATE TABLE not_allowed (x int)")
