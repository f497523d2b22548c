"""One call per (account, endpoint, date window): store a good response, or keep a failed one.

* :func:`write_window` — the response was good: keep it raw, replace the typed rows of
  exactly that window, mark each date ``loaded``, ``empty`` or ``kept``; all in ONE
  transaction, so a reader sees the old window or the new one, never a mix, and a crash
  half-way leaves the old rows in place.
* :func:`record_failure` — it was not (bad payload, not ready, error): keep the raw
  body for diagnosis and mark the dates ``failed`` / ``not_ready``, without touching
  typed rows and without downgrading a date that is already done.

Both are steps named in order; the statements live in :mod:`.window_sql`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from wechat_datacube.dates import DateLike, DateRange
from wechat_datacube.endpoints import EndpointSpec
from wechat_datacube.errors import ConfigError
from wechat_datacube.load_status import LoadStatus
from wechat_datacube.storage import history, load_log
from wechat_datacube.storage.checks import check_window
from wechat_datacube.storage.connection import own_transaction, validate_schema_name
from wechat_datacube.storage.load_log import LogEntry
from wechat_datacube.storage.payloads import body_json, failure_message, failure_payload
from wechat_datacube.storage.rows import normalize_rows, rows_from_body
from wechat_datacube.storage.window_sql import (
    copy_rows,
    delete_days,
    insert_response,
    lock_window,
    stored_profile,
    upsert_rows,
)

#: The states :func:`record_failure` writes: every state that is not done.
FAILURE_STATUSES = frozenset(s for s in LoadStatus if not s.is_done)
_META_KEYS = ("dag_id", "run_id", "try_number", "fetched_at")

BeforeCommit = Callable[[psycopg.Cursor[Any]], None]


@dataclass(frozen=True)
class WriteResult:
    """What :func:`write_window` stored."""

    response_id: int
    row_count: int
    #: Dates of the window that got rows / that got none (marked ``empty``).
    loaded_dates: tuple[dt.date, ...] = ()
    empty_dates: tuple[dt.date, ...] = ()
    #: Dates whose stored rows were kept because the answer would have shrunk them, and why.
    kept_dates: tuple[dt.date, ...] = ()
    kept_reasons: tuple[str, ...] = ()


def _meta(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    meta = dict(meta or {})
    unknown = set(meta) - set(_META_KEYS)
    if unknown:
        raise ConfigError(f"unknown meta key(s) {sorted(unknown)}: expected {', '.join(_META_KEYS)}")
    return {key: meta.get(key) for key in _META_KEYS}


@dataclass(frozen=True)
class _Answer:
    """A good response, checked and typed before the transaction opens."""

    typed: list[dict[str, Any]]
    payload_json: str
    profile: history.Profile


def _read_answer(spec: EndpointSpec, account: str, dates: DateRange, body: Any, rows: Sequence[Any] | None) -> _Answer:
    """Type the rows and check the whole body for jsonb: a BadPayloadError here leaves the database untouched."""
    where = {"account": account, "begin_date": dates.begin, "end_date": dates.end}
    raw = rows_from_body(spec, body, **where) if rows is None else rows
    typed = normalize_rows(spec, raw, **where)
    return _Answer(typed, body_json(body, endpoint=spec.name, **where), history.profile(spec, typed))


@dataclass(frozen=True)
class _Plan:
    """Per day of the window: keep the stored rows, or write the answer's."""

    stored: history.Profile
    shrinking: dict[dt.date, str]
    kept: dict[dt.date, str]
    writing: list[dict[str, Any]]

    @property
    def status(self) -> LoadStatus:
        return LoadStatus.KEPT if self.kept else (LoadStatus.LOADED if self.writing else LoadStatus.EMPTY)

    @property
    def why(self) -> str | None:
        reasons = [f"{reason}: stored rows kept (replace_shrinking replaces them)" for reason in self.kept.values()]
        return "; ".join(reasons) or None


def _plan(
    cur: psycopg.Cursor[Any], schema: str, spec: EndpointSpec, account: str, dates: DateRange, answer: _Answer,
    replace_shrinking: bool,
) -> _Plan:
    """Lock the window, read what is stored, and decide which days would shrink (see :mod:`.history`)."""
    lock_window(cur, schema, spec, account)
    stored = stored_profile(cur, schema, spec, account, dates.begin, dates.end)
    shrinking = history.shrinking_days(spec, stored, answer.profile)
    kept = {} if replace_shrinking else shrinking
    return _Plan(stored, shrinking, kept, [r for r in answer.typed if r[spec.date_column] not in kept])


def _log_entries(
    spec: EndpointSpec, account: str, dates: DateRange, answer: _Answer, plan: _Plan, response_id: int
) -> list[LogEntry]:
    entries = []
    for day in dates:
        if day in plan.kept:
            count, status, message = sum(plan.stored[day].values()), LoadStatus.KEPT, plan.kept[day]
        else:
            count = sum(answer.profile.get(day, Counter()).values())
            status, message = (LoadStatus.LOADED if count else LoadStatus.EMPTY), None
        entries.append(LogEntry(account, spec.name, day, status, count, response_id, message))
    return entries


def _replace_rows(
    cur: psycopg.Cursor[Any], schema: str, spec: EndpointSpec, account: str, dates: DateRange, plan: _Plan,
    response_id: int,
) -> None:
    """Replace the days not kept; a maturing series is upserted so a stat date the answer lacks stays."""
    if spec.maturity_days > 1:
        delete_days(cur, schema, spec, account, [d for d in plan.shrinking if d not in plan.kept])
        upsert_rows(cur, schema, spec, plan.writing, response_id)
    else:
        delete_days(cur, schema, spec, account, [d for d in dates if d not in plan.kept])
        copy_rows(cur, sql.Identifier(schema, spec.table), spec, plan.writing, response_id)


def _result(dates: DateRange, answer: _Answer, plan: _Plan, response_id: int) -> WriteResult:
    written = [d for d in dates if d not in plan.kept]
    return WriteResult(
        response_id=response_id,
        row_count=len(plan.writing),
        loaded_dates=tuple(d for d in written if d in answer.profile),
        empty_dates=tuple(d for d in written if d not in answer.profile),
        kept_dates=tuple(sorted(plan.kept)),
        kept_reasons=tuple(plan.kept[d] for d in sorted(plan.kept)),
    )


def write_window(
    conn: psycopg.Connection[Any],
    schema: str,
    *,
    spec: EndpointSpec,
    account: str,
    begin_date: DateLike,
    end_date: DateLike,
    body: Any,
    rows: Sequence[Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    before_commit: BeforeCommit | None = None,
    replace_shrinking: bool = False,
) -> WriteResult:
    """Store one good response: raw body + typed rows of the window + load_log, atomically.

    ``body`` is the response as received (stored as JSONB in ``api_response``); ``rows``
    are its raw API rows (default: ``body["list"]``), normalised here before anything is
    written, and the whole body is checked once for what jsonb cannot hold (NaN,
    Infinity, U+0000 — in any key) — a :class:`BadPayloadError` therefore leaves the
    database untouched (call :func:`record_failure` to keep the body).

    Per day of the window: when the answer holds less than is stored (see
    :mod:`.history`), the stored rows are kept, the day is marked ``kept`` with the
    reason, and the response is still kept raw — unless ``replace_shrinking`` asks to
    replace anyway. Other days are replaced: deleted and rewritten (rerunning a window is
    idempotent), except for maturing series (``spec.maturity_days``), which are upserted
    by key so a stat date the answer lacks is never deleted. The data-quality checks run
    inside the transaction: failing ones roll the window back (DataQualityError).
    ``before_commit(cursor)`` runs after every write, just before the commit; raising
    there rolls everything back (tests use it to inject a crash).
    ``meta``: optional ``dag_id``, ``run_id``, ``try_number``, ``fetched_at``.
    """
    schema = validate_schema_name(schema)
    dates = DateRange.parse(begin_date, end_date, account=account, endpoint=spec.name)
    info = _meta(meta)
    answer = _read_answer(spec, account, dates, body, rows)
    with own_transaction(conn), conn.cursor(row_factory=tuple_row) as cur:
        plan = _plan(cur, schema, spec, account, dates, answer, replace_shrinking)
        response_id = insert_response(
            cur, schema, spec, account, dates.begin, dates.end, info,
            status=plan.status, row_count=len(plan.writing), error=plan.why, payload_json=answer.payload_json,
        )
        load_log.upsert(cur, schema, _log_entries(spec, account, dates, answer, plan, response_id), protect_done=False)
        _replace_rows(cur, schema, spec, account, dates, plan, response_id)
        check_window(cur, schema, spec, account, dates.begin, dates.end)
        if before_commit is not None:
            before_commit(cur)
    return _result(dates, answer, plan, response_id)


def _failure_status(status: LoadStatus | str) -> LoadStatus:
    if status not in FAILURE_STATUSES:
        allowed = ", ".join(sorted(FAILURE_STATUSES))
        raise ConfigError(f"record_failure status must be one of {allowed}, not {status!r}")
    return LoadStatus(status)


def record_failure(
    conn: psycopg.Connection[Any],
    schema: str,
    *,
    spec: EndpointSpec,
    account: str,
    begin_date: DateLike,
    end_date: DateLike,
    body_or_text: Any,
    status: LoadStatus | str,
    message: str,
    meta: Mapping[str, Any] | None = None,
) -> int:
    """Keep a response that was not loaded, and mark its dates ``failed`` or ``not_ready``.

    ``body_or_text`` is the parsed body, or the raw text/bytes when it was not JSON (kept
    as a JSON string). Typed rows are never touched, and dates already done (loaded,
    empty, kept) keep that state (their rows are still right; the failed attempt stays in
    ``api_response``). Token-looking query parameters are redacted from the stored text.
    Returns the ``api_response.id``.
    """
    failure = _failure_status(status)
    schema = validate_schema_name(schema)
    dates = DateRange.parse(begin_date, end_date, account=account, endpoint=spec.name)
    info = _meta(meta)
    message = failure_message(message)
    payload_json = json.dumps(failure_payload(body_or_text), allow_nan=False)
    with own_transaction(conn), conn.cursor(row_factory=tuple_row) as cur:
        response_id = insert_response(
            cur, schema, spec, account, dates.begin, dates.end, info,
            status=failure, row_count=None, error=message, payload_json=payload_json,
        )
        entries = [LogEntry(account, spec.name, day, failure, 0, response_id, message) for day in dates]
        load_log.upsert(cur, schema, entries, protect_done=True)
    return response_id
