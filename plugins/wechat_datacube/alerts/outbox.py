"""The alert outbox: events wait in Postgres until their robot may be called, shared by every worker.

Tasks run in separate processes on several workers, and a group robot takes about 20
messages a minute whoever sends them, so both the queue and the count of requests live
in the database: schema :data:`ALERT_SCHEMA`, tables

* ``outbox`` — one row per event (its JSON, ``state`` pending / sent / failed, attempts,
  the request that carried it, the last error, scrubbed);
* ``robot_requests`` — one row per request made to a robot, failed ones included (they
  count against its limit too).

:func:`enqueue` commits events before anything is sent (an event is never lost because
the robot or the task died); :func:`flush` runs the delivery loop
(:func:`wechat_datacube.alerts.delivery.deliver`) with a session-level advisory lock per
robot, so one process at a time speaks to a robot and the others leave their events to
it. The tables are a migration track of their own (ledger ``alert_migrations``), run by
the same machinery as the data and token schemas (:mod:`wechat_datacube.storage.versions`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from wechat_datacube.alerts.delivery import (
    MAX_ATTEMPTS,
    MAX_SECONDS,
    ROBOT_LIMIT,
    ROBOT_WINDOW,
    FlushReport,
    Outcome,
    Pending,
    Send,
    deliver,
)
from wechat_datacube.alerts.events import AlertEvent
from wechat_datacube.alerts.render import MAX_BYTES
from wechat_datacube.alerts.wecom import scrub_key
from wechat_datacube.storage.connection import own_transaction, validate_schema_name
from wechat_datacube.storage.versions import Migration, Track, ensure

log = logging.getLogger(__name__)

#: Where the outbox lives, whatever the accounts' data schemas.
ALERT_SCHEMA = "wechat_alerts"
#: Sent and failed events, and requests, are deleted after these ages (at the end of a flush).
KEEP_EVENTS = dt.timedelta(days=30)
KEEP_REQUESTS = dt.timedelta(days=7)

_TABLES = """
CREATE TABLE IF NOT EXISTS {s}.robot_requests (
  id        bigserial PRIMARY KEY,
  robot_id  text NOT NULL,
  sent_at   timestamptz NOT NULL,
  ok        boolean NOT NULL,
  events    integer NOT NULL,
  status    text NOT NULL CONSTRAINT robot_requests_status_check
            CHECK (status IN ('sent', 'rate_limited', 'unavailable', 'rejected'))
);
CREATE INDEX IF NOT EXISTS robot_requests_window_idx ON {s}.robot_requests (robot_id, sent_at);
CREATE TABLE IF NOT EXISTS {s}.outbox (
  id          bigserial PRIMARY KEY,
  robot_id    text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  event       jsonb NOT NULL,
  state       text NOT NULL DEFAULT 'pending' CONSTRAINT outbox_state_check
              CHECK (state IN ('pending', 'sent', 'failed')),
  attempts    integer NOT NULL DEFAULT 0,
  sent_at     timestamptz,
  request_id  bigint REFERENCES {s}.robot_requests (id) ON DELETE SET NULL,
  last_error  text
);
CREATE INDEX IF NOT EXISTS outbox_pending_idx ON {s}.outbox (robot_id, id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS outbox_created_idx ON {s}.outbox (created_at);
COMMENT ON TABLE {s}.outbox IS
  'Alert events waiting for (or delivered to) a WeCom group robot; robot_id is a fingerprint of the '
  'webhook URL and key, never the key. Owned by wechat_datacube.alerts.outbox.';
COMMENT ON COLUMN {s}.outbox.attempts IS 'Requests that carried the event and failed as unreachable (or succeeded).';
COMMENT ON TABLE {s}.robot_requests IS
  'Every request made to a robot, failed ones too: the last minute of it is the robot''s rate window.';
"""


def _a1_outbox(cur: psycopg.Cursor[Any], schema: str) -> None:
    """outbox and robot_requests."""
    cur.execute(sql.SQL(_TABLES).format(s=sql.Identifier(schema)))


#: Append-only. Released steps are never edited.
ALERT_MIGRATIONS: tuple[Migration, ...] = (Migration(1, "outbox and robot_requests", _a1_outbox),)


def _relations(schema: str) -> list[str]:
    return ["outbox", "robot_requests"]


def _definition(schema: str) -> str:
    return _TABLES


ALERT_TRACK = Track("alert", "alert_migrations", ALERT_MIGRATIONS, _relations, _definition)


def ensure_alert_schema(conn: psycopg.Connection[Any], schema: str = ALERT_SCHEMA) -> bool:
    """Make sure the outbox tables exist as this code expects (ONE statement when they do); whether it migrated."""
    return ensure(conn, schema, ALERT_TRACK)


def enqueue(
    conn: psycopg.Connection[Any], robot_id: str, events: Sequence[AlertEvent], *, schema: str = ALERT_SCHEMA
) -> list[int]:
    """Store ``events`` as pending for ``robot_id`` and commit; their ids, in order.

    ``conn`` has no transaction open. Nothing is sent: call :func:`flush`.
    """
    ensure_alert_schema(conn, schema)
    table = sql.Identifier(schema, "outbox")
    with own_transaction(conn), conn.cursor() as cur:
        ids = []
        for event in events:
            cur.execute(
                sql.SQL("INSERT INTO {} (robot_id, event) VALUES (%s, %s) RETURNING id").format(table),
                (robot_id, Jsonb(event.as_json())),
            )
            ids.append(cur.fetchone()[0])  # type: ignore[index]
    return ids


class PostgresOutbox:
    """The :class:`~wechat_datacube.alerts.delivery.Store` over the outbox tables.

    Runs every statement in autocommit (:func:`autocommitting`): each write is committed
    the moment it is made, and the advisory lock is a session lock that outlives them.
    ``clock`` None means the database's clock, the same for every worker.
    """

    def __init__(
        self, conn: psycopg.Connection[Any], *, schema: str = ALERT_SCHEMA,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:  # fmt: skip
        self.conn = conn
        self.schema = validate_schema_name(schema)
        self._clock = clock
        self._outbox = sql.Identifier(schema, "outbox")
        self._requests = sql.Identifier(schema, "robot_requests")

    def _lock_key(self, robot_id: str) -> str:
        return f"{self.schema}.robot:{robot_id}"

    def try_lock(self, robot_id: str) -> bool:
        row = self.conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (self._lock_key(robot_id),))
        return bool(row.fetchone()[0])  # type: ignore[index]

    def unlock(self, robot_id: str) -> None:
        self.conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (self._lock_key(robot_id),))

    def now(self) -> dt.datetime:
        if self._clock is not None:
            return self._clock()
        return self.conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]

    def pending(self, robot_id: str, limit: int) -> list[Pending]:
        rows = self.conn.execute(
            sql.SQL(
                "SELECT id, event, attempts FROM {} WHERE robot_id = %s AND state = 'pending' ORDER BY id LIMIT %s"
            ).format(self._outbox),
            (robot_id, limit),
        ).fetchall()
        return [Pending(row[0], AlertEvent.from_json(row[1]), row[2]) for row in rows]

    def count_pending(self, robot_id: str) -> int:
        query = sql.SQL("SELECT count(*) FROM {} WHERE robot_id = %s AND state = 'pending'").format(self._outbox)
        return int(self.conn.execute(query, (robot_id,)).fetchone()[0])  # type: ignore[index]

    def request_times(self, robot_id: str, since: dt.datetime) -> list[dt.datetime]:
        query = sql.SQL("SELECT sent_at FROM {} WHERE robot_id = %s AND sent_at > %s ORDER BY sent_at").format(
            self._requests
        )
        return [row[0] for row in self.conn.execute(query, (robot_id, since)).fetchall()]

    def record(
        self, robot_id: str, at: dt.datetime, ids: Sequence[int], outcome: Outcome, error: str | None,
        max_attempts: int,
    ) -> int:  # fmt: skip
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(
                sql.SQL(
                    "INSERT INTO {} (robot_id, sent_at, ok, events, status) VALUES (%s, %s, %s, %s, %s) RETURNING id"
                ).format(self._requests),
                (robot_id, at, outcome is Outcome.SENT, len(ids), outcome.value),
            )
            request_id = cur.fetchone()[0]  # type: ignore[index]
            cur.execute(self._outcome_update(outcome), {
                "ids": list(ids), "request_id": request_id, "at": at, "error": error, "max_attempts": max_attempts,
            })  # fmt: skip
            return sum(1 for (state,) in cur.fetchall() if state == "failed")

    def _outcome_update(self, outcome: Outcome) -> sql.Composed:
        """One UPDATE of the request's events for ``outcome``, returning their new states."""
        changes = {
            Outcome.SENT: "state = 'sent', sent_at = %(at)s, attempts = attempts + 1, last_error = NULL",
            Outcome.REJECTED: "state = 'failed', attempts = attempts + 1, last_error = %(error)s",
            Outcome.UNAVAILABLE: "attempts = attempts + 1, last_error = %(error)s, "
            "state = CASE WHEN attempts + 1 >= %(max_attempts)s THEN 'failed' ELSE state END",
            Outcome.RATE_LIMITED: "last_error = %(error)s",
        }[outcome]
        return sql.SQL(
            "UPDATE {} SET " + changes + ", request_id = %(request_id)s"
            " WHERE id = ANY(%(ids)s) AND state = 'pending' RETURNING state"
        ).format(self._outbox)

    def prune(self, *, keep_events: dt.timedelta = KEEP_EVENTS, keep_requests: dt.timedelta = KEEP_REQUESTS) -> None:
        """Delete delivered / failed events and requests past their age."""
        now = self.now()
        self.conn.execute(
            sql.SQL("DELETE FROM {} WHERE created_at < %s AND state <> 'pending'").format(self._outbox),
            (now - keep_events,),
        )
        self.conn.execute(sql.SQL("DELETE FROM {} WHERE sent_at < %s").format(self._requests), (now - keep_requests,))


@contextlib.contextmanager
def autocommitting(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """``conn`` in autocommit for the block, then as it was. psycopg refuses it inside a transaction."""
    previous = conn.autocommit
    conn.autocommit = True
    try:
        yield
    finally:
        conn.autocommit = previous


def flush(
    conn: psycopg.Connection[Any],
    robot_id: str,
    send: Send,
    *,
    limit: int = ROBOT_LIMIT,
    window: dt.timedelta = ROBOT_WINDOW,
    clock: Callable[[], dt.datetime] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_attempts: int = MAX_ATTEMPTS,
    limit_bytes: int = MAX_BYTES,
    max_seconds: float = MAX_SECONDS,
    schema: str = ALERT_SCHEMA,
) -> FlushReport:
    """Send what is pending for ``robot_id`` through ``send(markdown)``, within the robot's window.

    Returns at once (``busy``) when another process is sending for the robot: that one
    delivers these events too. A database failure is logged and reported (``error``),
    not raised: the events stay pending for the next flush. ``clock`` None: the
    database's clock. See :mod:`wechat_datacube.alerts.delivery` for the rules.
    """
    if conn.closed:
        return _failed_flush(robot_id, "OperationalError: the outbox connection is closed")
    try:
        ensure_alert_schema(conn, schema)
        store = PostgresOutbox(conn, schema=schema, clock=clock)
        with autocommitting(conn):
            report = deliver(
                store, robot_id, send, limit=limit, window=window, sleep=sleep, max_attempts=max_attempts,
                limit_bytes=limit_bytes, max_seconds=max_seconds,
            )  # fmt: skip
            if report.requests:
                store.prune()
    except psycopg.Error as exc:
        return _failed_flush(robot_id, f"{type(exc).__name__}: {exc}")
    return report


def _failed_flush(robot_id: str, error: str) -> FlushReport:
    message = scrub_key(error)
    log.warning("alert outbox: flush for robot %s failed, events stay pending: %s", robot_id, message)
    return FlushReport(error=message)
