"""load_log reads: which dates are done, and the states as LoadStatus."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.fixtures.storage import ACCOUNT, SCHEMA, SHARE, day, fail_share, share_rows, statuses, write_share
from wechat_datacube.load_status import LoadStatus
from wechat_datacube.storage.load_log import loaded_dates

# --- loaded_dates -------------------------------------------------------------------------------


def test_loaded_dates_lists_loaded_and_empty_dates_only(db: psycopg.Connection[Any]) -> None:
    write_share(db, share_rows([0]), first=0, last=1)
    fail_share(db, {"list": []}, "not_ready", "not yet", first=2, last=3)
    assert loaded_dates(db, SCHEMA, ACCOUNT, "getusershare", day(0), day(5)) == {day(0), day(1)}
    assert loaded_dates(db, SCHEMA, "someone_else", "getusershare", day(0), day(5)) == set()
    assert loaded_dates(db, SCHEMA, ACCOUNT, "getuserread", day(0), day(5)) == set()


def test_load_status_gives_load_status_members(db: psycopg.Connection[Any]) -> None:
    write_share(db, share_rows([0]), first=0, last=1)
    fail_share(db, "<html>502</html>", "failed", "bad gateway", first=2, last=2)
    found = statuses(db, SHARE, 0, 2)
    assert found == {day(0): LoadStatus.LOADED, day(1): LoadStatus.EMPTY, day(2): LoadStatus.FAILED}
    assert all(type(s) is LoadStatus for s in found.values())
