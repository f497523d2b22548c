"""Shared memory of WeChat's daily quota (45009) across tasks and workers.

Once one task learns that an endpoint's quota is spent for an account, every other task
(parallel mapped backfill windows included) stops before calling — no request is wasted
on a certain 45009 — until the quota resets at midnight Beijing time. The table
(``quota_block``) is created by migration 3 (:mod:`.migrations`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import sql

from wechat_datacube.storage.connection import own_transaction, read_transaction


def record_block(
    conn: psycopg.Connection[Any], schema: str, *, account: str, endpoint: str, until: dt.datetime, message: str
) -> None:
    """Remember that ``endpoint`` may not be called for ``account`` before ``until``."""
    with own_transaction(conn):
        conn.execute(
            sql.SQL(
                "INSERT INTO {s}.quota_block (account, endpoint, blocked_until, message) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (account, endpoint) DO UPDATE SET blocked_until = GREATEST("
                "{s}.quota_block.blocked_until, EXCLUDED.blocked_until), message = EXCLUDED.message, updated_at = now()"
            ).format(s=sql.Identifier(schema)),
            (account, endpoint, until, message[:2000]),
        )


def blocked_until(
    conn: psycopg.Connection[Any], schema: str, *, account: str, endpoint: str, now: dt.datetime
) -> dt.datetime | None:
    """The reset time if the quota is known to be spent right now, else None."""
    with read_transaction(conn):
        row = conn.execute(
            sql.SQL(
                "SELECT blocked_until FROM {s}.quota_block WHERE account = %s AND endpoint = %s AND blocked_until > %s"
            ).format(s=sql.Identifier(schema)),
            (account, endpoint, now),
        ).fetchone()
    return row[0] if row else None
