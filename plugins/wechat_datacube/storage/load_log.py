"""``load_log``: the state of each (account, endpoint, ref_date), written and read.

The writer records a state per date of every window it stores or fails; the backfill
planner and report read them (:func:`loaded_dates`, :func:`load_status`) to skip what is
done and to say what is not. The states are :class:`wechat_datacube.load_status.LoadStatus`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from wechat_datacube.load_status import DONE, LoadStatus
from wechat_datacube.storage.connection import read_transaction, validate_schema_name


class LogEntry(NamedTuple):
    """One date's state, as written to ``load_log``."""

    account: str
    endpoint: str
    ref_date: dt.date
    status: LoadStatus
    row_count: int
    response_id: int
    message: str | None


def upsert(cur: psycopg.Cursor[Any], schema: str, entries: Sequence[LogEntry], *, protect_done: bool) -> None:
    """Write ``entries`` in one statement; with ``protect_done``, a date already done keeps its state.

    ``protect_done`` is for failures: a date whose rows are stored (loaded, empty, kept)
    stays so when a later attempt fails; the failed attempt stays in ``api_response``.
    """
    guard = (
        sql.SQL(" WHERE l.status NOT IN ({})").format(sql.SQL(", ").join(sql.Literal(str(s)) for s in sorted(DONE)))
        if protect_done
        else sql.SQL("")
    )
    cur.execute(
        sql.SQL(
            "INSERT INTO {}.load_log AS l (account, endpoint, ref_date, status, row_count, response_id, message)"
            " SELECT * FROM unnest(%s::text[], %s::text[], %s::date[], %s::text[], %s::int[], %s::bigint[], %s::text[])"
            " ON CONFLICT (account, endpoint, ref_date) DO UPDATE SET"
            " status = excluded.status, row_count = excluded.row_count, response_id = excluded.response_id,"
            " message = excluded.message, updated_at = now()"
        ).format(sql.Identifier(schema))
        + guard,
        [list(col) for col in zip(*entries, strict=True)],
    )


def load_status(
    conn: psycopg.Connection[Any],
    schema: str,
    account: str,
    endpoint: str,
    begin: dt.date,
    end: dt.date,
) -> dict[dt.date, LoadStatus]:
    """ref_date -> load_log status for the dates of [begin, end] that have one."""
    schema = validate_schema_name(schema)
    with read_transaction(conn), conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(
            sql.SQL(
                "SELECT ref_date, status FROM {}.load_log"
                " WHERE account = %s AND endpoint = %s AND ref_date BETWEEN %s AND %s"
            ).format(sql.Identifier(schema)),
            (account, endpoint, begin, end),
        )
        return {d: LoadStatus(s) for d, s in cur.fetchall()}


def loaded_dates(
    conn: psycopg.Connection[Any],
    schema: str,
    account: str,
    endpoint: str,
    begin: dt.date,
    end: dt.date,
) -> set[dt.date]:
    """Dates of [begin, end] already done (loaded, empty or kept): the backfill planner skips them."""
    return {d for d, s in load_status(conn, schema, account, endpoint, begin, end).items() if s.is_done}
