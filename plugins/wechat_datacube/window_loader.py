"""Load one date window: fetch through the hook, decide readiness, store atomically.

The operator plans windows; this module runs each one and owns the rules of what a
response *means*: a failed or unusable response is kept raw for diagnosis with typed rows
untouched; an empty answer before the readiness deadline is "not ready" (retried); a
45009 is remembered so no other task calls that endpoint again before the reset.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from wechat_datacube import storage
from wechat_datacube.alerts.builders import kept_event, not_published_event
from wechat_datacube.alerts.events import ALERT_HORIZON, AlertEvent
from wechat_datacube.dates import readiness_deadline
from wechat_datacube.endpoints import EndpointSpec
from wechat_datacube.errors import (
    BadPayloadError,
    ConfigError,
    DataNotReadyError,
    HttpStatusError,
    MalformedResponseError,
    PermanentError,
    QuotaBlockedError,
    QuotaExceededError,
    WeChatDatacubeError,
)
from wechat_datacube.load_status import LoadStatus
from wechat_datacube.periods import last_day
from wechat_datacube.windows import Window, label_window, labels

if TYPE_CHECKING:
    import psycopg

    from wechat_datacube.hook import FetchedWindow, WeChatDatacubeHook


#: The errcode WeChat gives for a window wider than the endpoint allows.
SPAN_ERRCODE = 61501


#: The status of a window loaded one day at a time: the first of these any day has.
_MERGED_ORDER = (LoadStatus.KEPT, LoadStatus.LOADED, LoadStatus.EMPTY)


@dataclass(frozen=True)
class LoadResult:
    #: LOADED, EMPTY, or KEPT (some day kept its stored rows against a shrinking answer).
    status: LoadStatus
    rows: int
    response_id: int


class WindowLoader:
    """Runs windows of one (account, endpoint) against one Postgres connection.

    What a person should hear of (a stored day kept against a shorter answer, a day still
    unpublished at its deadline) is collected in :attr:`events`; the operator sends them
    once the task's work is done, so an alert never stands between a window and its storage.
    """

    def __init__(
        self,
        *,
        hook: WeChatDatacubeHook,
        postgres_conn_id: str,
        schema: str,
        spec: EndpointSpec,
        account: str,
        ready_deadline_hour: int,
        clock: Callable[[], dt.datetime],
        meta: Mapping[str, Any],
        log: logging.Logger | Any,
    ) -> None:
        self.hook = hook
        self.postgres_conn_id = postgres_conn_id
        self.schema = storage.validate_schema_name(schema)
        self.spec = spec
        self.account = account
        self.ready_deadline_hour = ready_deadline_hour
        self.clock = clock
        self.meta = dict(meta)
        self.log = log
        self.events: list[AlertEvent] = []

    @cached_property
    def conn(self) -> psycopg.Connection[Any]:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        conn = PostgresHook(postgres_conn_id=self.postgres_conn_id).get_conn()
        storage.ensure_schema(conn, self.schema)
        return conn

    def close(self) -> None:
        if "conn" in self.__dict__:
            self.conn.close()

    def _where(self, window: Window) -> dict[str, Any]:
        """The storage arguments that name this loader's window."""
        return {"spec": self.spec, "account": self.account, "begin_date": window.begin, "end_date": window.end}

    def _keep_failure(self, window: Window, raw: Any, status: LoadStatus, error: Exception) -> None:
        storage.record_failure(
            self.conn,
            self.schema,
            **self._where(window),
            body_or_text=raw,
            status=status,
            message=str(error),
            meta=self.meta,
        )

    def _refuse_unstorable(self, window: Window, body: Any) -> None:
        """Fail a "not ready" body that PostgreSQL cannot store (NaN, Infinity, U+0000) as a bad payload.

        A good body is checked by ``storage.write_window``; this one would be kept as
        ``not_ready`` and fetched again at every retry, yet the next answer is as broken as
        this one (say a NaN beside ``is_delay``). Kept as ``failed`` instead, and not retried.
        """
        try:
            storage.body_json(
                body, account=self.account, endpoint=self.spec.name, begin_date=window.begin, end_date=window.end
            )
        except BadPayloadError as exc:
            self._keep_failure(window, body, LoadStatus.FAILED, exc)
            raise

    def _days_without_rows(self, window: Window, rows: list[Any]) -> list[dt.date]:
        """Days of ``window`` that could carry rows (its labels: every day, or its Mondays / 1sts) and got none.

        Judged per day, not per window: a multi-day range ending yesterday, fetched before
        WeChat published yesterday, has rows for the other days only; storing it would mark
        yesterday ``empty`` (final for the backfill planner) instead of "not ready".
        """
        with_rows = {str(row.get(self.spec.date_column)) for row in rows if isinstance(row, Mapping)}
        return [day for day in labels(self.spec, window) if day.isoformat() not in with_rows]

    def _deadline(self, label: dt.date) -> dt.datetime:
        """When the rows of ``label`` must be published: after the last day of its period (the day itself, mostly)."""
        return readiness_deadline(last_day(label, self.spec.period), self.ready_deadline_hour)

    def load(self, window: Window, *, replace_shrinking: bool = False) -> LoadResult:
        """Fetch and store ``window``; raise the typed error when it cannot be stored.

        A multi-day window that WeChat refuses as too wide (61501) is fetched again one day
        at a time, once, with a warning: the registry's span for an endpoint is partly
        hearsay (getbizsummary's 30 days come from SDKs), so a wrong span costs calls, never data.
        """
        try:
            return self._load(window, replace_shrinking)
        except PermanentError as exc:
            if exc.errcode != SPAN_ERRCODE or window.days == 1:
                raise
            self.log.warning(
                "%s account=%s %s..%s: WeChat refused a %d-day window (61501); fetching it one day at a time",
                self.spec.name, self.account, window.begin, window.end, window.days,
            )
        results = [
            self._load(label_window(self.spec, day, window.reason), replace_shrinking)
            for day in labels(self.spec, window)
        ]
        statuses = {r.status for r in results}
        status = next(s for s in _MERGED_ORDER if s in statuses)
        return LoadResult(status, sum(r.rows for r in results), results[-1].response_id)

    def _load(self, window: Window, replace_shrinking: bool) -> LoadResult:
        """One call for ``window``: refused while a quota block holds, kept raw when unusable."""
        self._check_quota(window)
        fetched = self._fetch(window)
        self._check_ready(window, fetched)
        return self._store(window, fetched, replace_shrinking)

    def _ctx(self, window: Window) -> dict[str, Any]:
        return {"account": self.account, "endpoint": self.spec.name, "begin_date": window.begin, "end_date": window.end}

    def _check_quota(self, window: Window) -> None:
        """Refuse to call while a 45009 seen earlier (by any task) still holds for this endpoint."""
        until = storage.blocked_until(
            self.conn, self.schema, account=self.account, endpoint=self.spec.name, now=self.clock()
        )
        if until is not None:
            raise QuotaBlockedError(
                "daily quota already spent (45009 seen earlier); not calling", reset_at=until, **self._ctx(window)
            )

    def _fetch(self, window: Window) -> FetchedWindow:
        """The hook's answer for ``window``; a failed call is kept raw (and a 45009 remembered) before it raises."""
        try:
            (fetched,) = self.hook.fetch_windows(self.spec.name, window.begin, window.end)
            return fetched
        except QuotaExceededError as exc:
            storage.record_block(
                self.conn, self.schema, account=self.account, endpoint=self.spec.name, until=exc.reset_at, message=str(exc)
            )
            self._keep_failure(window, exc.context(), LoadStatus.FAILED, exc)
            raise
        except (MalformedResponseError, HttpStatusError) as exc:
            self._keep_failure(window, exc.raw, LoadStatus.FAILED, exc)
            raise
        except ConfigError:
            raise  # a bad range or connection: nothing was fetched, nothing to keep
        except WeChatDatacubeError as exc:
            self._keep_failure(window, exc.context(), LoadStatus.FAILED, exc)
            raise

    def _check_ready(self, window: Window, fetched: FetchedWindow) -> None:
        """Raise DataNotReadyError (kept as not_ready) while some day of the window is not published."""
        fallback = readiness_deadline(window.end, self.ready_deadline_hour)  # a window without a label
        deadline = max(map(self._deadline, labels(self.spec, window)), default=fallback)
        now = self.clock()
        waiting = [day for day in self._days_without_rows(window, fetched.rows) if now < self._deadline(day)]
        if now < deadline and (fetched.is_delay or waiting):
            self._refuse_unstorable(window, fetched.body)
            why = "is_delay is true" if fetched.is_delay else (
                "the list is empty" if not fetched.rows else f"no rows yet for {', '.join(map(str, waiting))}"
            )
            error = DataNotReadyError(
                f"data not published yet ({why}); retrying until {deadline.isoformat()}",
                deadline=deadline,
                **self._ctx(window),
            )
            self._keep_failure(window, fetched.body, LoadStatus.NOT_READY, error)
            raise error
        if fetched.is_delay:
            self.log.warning("%s %s still flagged is_delay after the deadline; storing it", self.spec.name, window)
        self._note_unpublished(window, fetched, now)

    def _note_unpublished(self, window: Window, fetched: FetchedWindow, now: dt.datetime) -> None:
        """An event when, past a recent readiness deadline, WeChat still has not published the day.

        "Not published" is what WeChat says (``is_delay``) or, for an account-wide daily summary
        (``spec.daily_summary``), a day without rows; other endpoints are empty on quiet days.
        Deadlines missed long ago (a backfill of old days) are no news.
        """
        if fetched.is_delay:
            days = labels(self.spec, window)
        else:
            days = self._days_without_rows(window, fetched.rows) if self.spec.daily_summary else []
        recent = [d for d in days if now - self._deadline(d) < ALERT_HORIZON]
        if recent:
            deadline = self._deadline(max(recent))
            self.events.append(not_published_event(account=self.account, endpoint=self.spec.name, days=recent,
                                                   deadline=deadline, is_delay=fetched.is_delay))

    def _store(self, window: Window, fetched: FetchedWindow, replace_shrinking: bool) -> LoadResult:
        """Write the window in one transaction; a payload storage refuses is kept raw instead."""
        try:
            result = storage.write_window(
                self.conn,
                self.schema,
                **self._where(window),
                body=fetched.body,
                rows=fetched.rows,
                meta=self.meta,
                replace_shrinking=replace_shrinking,
            )
        except (BadPayloadError, MalformedResponseError) as exc:
            self._keep_failure(window, fetched.body, LoadStatus.FAILED, exc)
            raise
        for day, reason in zip(result.kept_dates, result.kept_reasons, strict=True):
            self.log.warning(
                "%s account=%s %s: kept the stored rows of %s: %s (set replace_shrinking to replace them)",
                self.spec.name, self.account, window, day, reason,
            )
        if result.kept_dates:
            self.events.append(kept_event(account=self.account, endpoint=self.spec.name,
                                          days=result.kept_dates, reasons=result.kept_reasons))
            return LoadResult(LoadStatus.KEPT, result.row_count, result.response_id)
        status = LoadStatus.LOADED if result.row_count else LoadStatus.EMPTY
        return LoadResult(status, result.row_count, result.response_id)
