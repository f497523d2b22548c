"""The ``account`` column holds the account's *name* from the accounts file, and says so in its comment.

Every typed table has it (storage.columns.FIXED_COLUMNS). The comment used to call it the
AppID; tables created with that comment are corrected by the next migrate (reconcile
compares every column comment with the registry's).
"""

from __future__ import annotations

from typing import Any

import psycopg

from wechat_datacube.endpoints import ENDPOINTS
from wechat_datacube.storage.columns import ACCOUNT_COLUMN, FIXED_COLUMNS
from wechat_datacube.storage.migrations import migrate
from wechat_datacube.storage.schema import column_comments

OLD_COMMENT = "Account (AppID) the row belongs to."


def account_comment() -> str:
    (comment,) = [c for name, _, c in FIXED_COLUMNS if name == ACCOUNT_COLUMN]
    return comment


def test_the_comment_says_it_is_the_accounts_file_name_not_the_appid() -> None:
    comment = account_comment()
    assert "name in the accounts file" in comment and "(not the AppID)" in comment
    for spec in ENDPOINTS.values():
        assert column_comments(spec)["account"] == comment


def live_account_comments(conn: psycopg.Connection[Any]) -> dict[str, str | None]:
    rows = conn.execute(
        """SELECT c.relname, col_description(c.oid, a.attnum)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'account'
            WHERE n.nspname = 'wechat' AND c.relkind = 'r' AND c.relname = ANY(%s)""",
        ([spec.table for spec in ENDPOINTS.values()],),
    ).fetchall()
    conn.rollback()
    return dict(rows)


def test_migrate_corrects_the_comment_of_tables_created_with_the_old_one(fresh_pg: tuple[str, str]) -> None:
    with psycopg.connect(fresh_pg[1]) as conn:
        migrate(conn)
        tables = [spec.table for spec in ENDPOINTS.values()]
        assert live_account_comments(conn) == dict.fromkeys(tables, account_comment())
        with conn.transaction():  # as a release before this fix left them
            for table in tables:
                conn.execute(f"COMMENT ON COLUMN wechat.{table}.account IS '{OLD_COMMENT}'")

        assert migrate(conn) == []  # no numbered migration: reconcile alone does it

        assert live_account_comments(conn) == dict.fromkeys(tables, account_comment())
