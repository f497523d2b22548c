"""WeChatDatacubeToPostgresOperator: fetch one endpoint's windows and store them.

Thin, like Airflow's transfer operators: the hook talks to WeChat, the window loader
(:mod:`wechat_datacube.window_loader`) stores each window in Postgres, this class decides
*which dates* a run covers and in which order the windows are loaded. Heavy modules
(requests, psycopg, the Postgres provider, the dates module) are imported inside
``execute`` so that DAG files stay fast to parse.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from functools import cache, cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from wechat_datacube.endpoints import get_endpoint
from wechat_datacube.errors import BadPayloadError, ConfigError, MalformedResponseError, QuotaExceededError

if TYPE_CHECKING:
    from airflow.sdk import Context

    from wechat_datacube.dates import DateRange
    from wechat_datacube.hook import WeChatDatacubeHook
    from wechat_datacube.window_loader import LoadResult, WindowLoader
    from wechat_datacube.windows import Window

#: What a task returns (its XCom): counts and one line per window, never a payload.
Summary = dict[str, Any]


@cache
def table_asset(schema: str, table: str) -> Asset:
    """The lineage asset of one typed table (shared by the operator and the DAGs).

    Cached: a DAG folder with many accounts builds the same few assets hundreds of times
    at every parse. The URI scheme is ``x-``-prefixed, Airflow's convention for schemes no
    provider defines: such URIs are kept as they are, whereas any other scheme makes Airflow
    look for a normaliser in every installed provider — at the first Asset of each parse,
    which cost more than everything else in the daily DAG file (bench/parse_time.py).
    """
    return Asset(name=f"wechat_datacube.{schema}.{table}", uri=f"x-wechat-datacube://{schema}/{table}")


class WeChatDatacubeToPostgresOperator(BaseOperator):
    """Pull one datacube endpoint for one account and replace the stored window(s).

    Dates: explicit ``begin_date``/``end_date`` (templated; manual runs and the bulk
    backfill) win; otherwise the business date is the run's data interval start in
    Asia/Shanghai. A run with neither fails with a clear message.

    :param endpoint: API name, e.g. ``getusershare``.
    :param account: the account's name (labels rows and messages).
    :param refetch_matured: on a daily run, also re-fetch the send date whose maturity
        window just completed (getarticletotal / getarticletotaldetail).
    :param ready_deadline_hour: Beijing hour on the day after a date until which an empty
        answer is "not ready" (retried) rather than "empty" (stored).
    :param selected_endpoints: templated list (or one name, comma-separated text, or the JSON
        text the daily DAG renders) of endpoints or families a manual run asked for; when
        non-empty and this endpoint is not among them, the task skips. A name the registry
        does not know, or one that selects none of this DAG's endpoints, fails the task
        (ConfigError): a run must never skip everything and show success.
    :param max_manual_days: longest window explicit dates may span (None: no limit); the
        daily DAGs set 31 and send longer ranges to the backfill DAG.
    :param on_quota: ``"fail"`` (raise the 45009 error; the retry policy waits for the
        reset) or ``"skip"`` (end the task as skipped with a message: the bulk backfill
        stops cleanly and a later run resumes instead of retrying in a loop).
    :param skip_loaded: skip windows whose dates are all ``loaded``/``empty``/``kept`` in
        load_log already (the bulk backfill: a retry does not re-fetch the windows its earlier
        try stored).
    :param replace_shrinking: templated flag (a bool, or the text of one from the run conf).
        By default a day whose new answer holds fewer rows (or stat dates) than are stored
        keeps its stored rows and is marked ``kept``; true replaces them anyway.
    :param alert_targets: where the account's alerts go (``AlertTargets.as_json()``: WeCom
        robots, other notifiers, the outbox's Postgres connection); None sends none. The task
        sends what it learned (a 45009, a kept day, a day unpublished at its deadline) when its
        work is done; ``task_failure_callback`` reads it to report a failure.
    """

    # ``end_date`` is BaseOperator's own (when the task stops being scheduled): the window
    # dates therefore live in ``date_from`` / ``date_to``.
    template_fields: Sequence[str] = ("date_from", "date_to", "selected_endpoints", "replace_shrinking")
    ui_color = "#07c160"  # WeChat green

    # Optional knobs default here, on the class; ``__init__`` stores one on the task only
    # when it differs. Every attribute assigned to an operator goes through
    # BaseOperator.__setattr__ (~1 µs), and the DAG files build every task again at each
    # parse: the daily tasks leave all of these at their defaults (bench/parse_time.py).
    wechat_conn_id: str = "wechat_default"
    postgres_conn_id: str = "postgres_default"
    schema: str = "wechat"
    ready_deadline_hour: int = 12
    refetch_matured: bool = True
    active_from: dt.date | None = None
    active_until: dt.date | None = None
    #: None = the real clock (resolved in ``execute``: parsing does not import the dates module).
    clock: Callable[[], dt.datetime] | None = None
    #: Extra keyword arguments for the hook (tests inject a simulated sleep, faster backoff).
    hook_kwargs: Mapping[str, Any] = MappingProxyType({})
    on_quota: str = "fail"
    skip_loaded: bool = False
    replace_shrinking: Any = False
    max_manual_days: int | None = None
    alert_targets: Mapping[str, Any] | None = None

    def __init__(
        self,
        *,
        endpoint: str,
        account: str,
        wechat_conn_id: str = "wechat_default",
        postgres_conn_id: str = "postgres_default",
        schema: str = "wechat",
        begin_date: str | dt.date | None = None,
        end_date: str | dt.date | None = None,
        refetch_matured: bool = True,
        ready_deadline_hour: int = 12,
        active_from: dt.date | None = None,
        active_until: dt.date | None = None,
        selected_endpoints: Any = None,
        clock: Callable[[], dt.datetime] | None = None,
        hook_kwargs: dict[str, Any] | None = None,
        on_quota: str = "fail",
        skip_loaded: bool = False,
        replace_shrinking: Any = False,
        max_manual_days: int | None = None,
        alert_targets: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if on_quota not in ("fail", "skip"):
            raise ConfigError(f"on_quota must be 'fail' or 'skip', not {on_quota!r}")
        kwargs.setdefault("outlets", [table_asset(schema, get_endpoint(endpoint).table)])
        super().__init__(**kwargs)
        self.endpoint = endpoint
        self.account = account
        # The templated fields: set on every task, whatever their value.
        self.date_from = begin_date
        self.date_to = end_date
        self.selected_endpoints = selected_endpoints
        self._set_unless_default(
            wechat_conn_id=wechat_conn_id,
            postgres_conn_id=postgres_conn_id,
            schema=schema,
            ready_deadline_hour=ready_deadline_hour,
            refetch_matured=refetch_matured,
            active_from=active_from,
            active_until=active_until,
            clock=clock,
            hook_kwargs=hook_kwargs or self.hook_kwargs,
            on_quota=on_quota,
            skip_loaded=skip_loaded,
            replace_shrinking=replace_shrinking,
            max_manual_days=max_manual_days,
            alert_targets=alert_targets,
        )

    def _set_unless_default(self, **values: Any) -> None:
        """Store each value on the task only when it differs from the class default (see above)."""
        for name, value in values.items():
            if value != getattr(type(self), name):
                setattr(self, name, value)

    # -- collaborators ------------------------------------------------------------

    @cached_property
    def hook(self) -> WeChatDatacubeHook:
        from wechat_datacube.hook import WeChatDatacubeHook

        return WeChatDatacubeHook(
            wechat_conn_id=self.wechat_conn_id,
            token_store_conn_id=self.postgres_conn_id,
            schema=self.schema,
            account=self.account,
            clock=self.clock,
            **self.hook_kwargs,
        )

    # -- dates --------------------------------------------------------------------

    def _ctx(self, dates: DateRange | None = None) -> dict[str, Any]:
        return {
            "account": self.account,
            "endpoint": self.endpoint,
            "begin_date": None if dates is None else dates.begin,
            "end_date": None if dates is None else dates.end,
        }

    def resolve_dates(self, context: Context) -> tuple[DateRange, bool]:
        """(dates, is_daily): explicit dates win, else the data interval's Beijing date."""
        from wechat_datacube.dates import DateRange, business_date
        from wechat_datacube.run_conf import requested_dates

        asked = requested_dates(
            self.date_from, self.date_to, max_days=self.max_manual_days, account=self.account, endpoint=self.endpoint
        )
        if asked is not None:
            return asked, False
        day = business_date(context)
        if day is None:
            raise ConfigError(
                "this run has no logical date / data interval (e.g. a manual trigger without one): "
                "pass begin_date and end_date (YYYY-MM-DD) in the run's conf",
                **self._ctx(),
            )
        return DateRange(day, day), True

    def _replace_shrinking(self) -> bool:
        """The flag as a bool; text that is not clearly one is refused rather than guessed."""
        value = self.replace_shrinking
        if isinstance(value, bool):
            return value
        text = str(value or "").strip().lower()
        if text in ("", "false", "0", "no", "off", "none"):
            return False
        if text in ("true", "1", "yes", "on"):
            return True
        raise ConfigError(f"replace_shrinking must be true or false, not {value!r}", **self._ctx())

    def _selected(self, dates: DateRange) -> tuple[str, ...]:
        """The endpoints the run asked for (empty: all), checked against the registry and this DAG."""
        from wechat_datacube.run_conf import selected_endpoints

        return selected_endpoints(self.selected_endpoints, self._dag_endpoints(), **self._ctx(dates))

    def _dag_endpoints(self) -> list[str] | None:
        """The endpoints this task's DAG loads (None outside a DAG): what a run's selection must hit."""
        if not self.has_dag():
            return None
        return [t.endpoint for t in self.dag.tasks if isinstance(t, WeChatDatacubeToPostgresOperator)]

    # -- execution ----------------------------------------------------------------

    def execute(self, context: Context) -> Summary:
        # Every task checks the whole ask before it may skip: a wrong one fails the run.
        dates, daily = self.resolve_dates(context)
        selected = self._selected(dates)
        replace_shrinking = self._replace_shrinking()
        if selected and self.endpoint not in selected:
            raise AirflowSkipException(f"{self.endpoint} not among the endpoints this run asked for: {list(selected)}")
        windows = self._plan(dates, daily)
        loader = self._loader(context)
        summary: Summary = {"account": self.account, "endpoint": self.endpoint, "windows": [], "rows": 0, "calls": 0}
        try:
            if self.skip_loaded:
                windows = self._unfinished(loader, windows)
            self._load_in_order(windows, lambda w: loader.load(w, replace_shrinking=replace_shrinking), summary)
        except QuotaExceededError as exc:
            self._note_quota(loader, exc, summary, windows)
            if self.on_quota == "skip":
                raise self._quota_skip(exc, summary, windows) from exc
            raise
        finally:
            summary["calls"] = self.hook.data_calls
            loader.close()
            self.hook.close()  # the HTTP session; the token stays cached for the next task
            self._send_alerts(loader.events, context)
        self.log.info(
            "Stored %s rows of %s for account %s in %d window(s) with %d API call(s)",
            summary["rows"], self.endpoint, self.account, len(summary["windows"]), summary["calls"],
        )
        return summary

    def _plan(self, dates: DateRange, daily: bool) -> list[Window]:
        """The windows of ``dates`` this endpoint serves for the account (skips the task when none)."""
        from wechat_datacube.windows import plan_windows

        spec = get_endpoint(self.endpoint)
        windows = plan_windows(
            spec,
            dates,
            refetch_matured=daily and self.refetch_matured,
            active_from=self.active_from,
            active_until=self.active_until,
        )
        if not windows:
            from wechat_datacube.periods import describe

            why = "" if spec.period == "day" else f"; {describe(spec.period)}, so no period ends in these dates"
            raise AirflowSkipException(
                f"{self.endpoint} serves no dates in {dates} for account {self.account} "
                f"(first date {spec.first_date}, active {self.active_from}..{self.active_until}{why})"
            )
        return windows

    def _loader(self, context: Context) -> WindowLoader:
        """The window loader of this task, labelling what it stores with the task instance."""
        from wechat_datacube.dates import utcnow  # this and the rest: not needed at parse time
        from wechat_datacube.window_loader import WindowLoader

        ti = context.get("ti")
        return WindowLoader(
            hook=self.hook,
            postgres_conn_id=self.postgres_conn_id,
            schema=self.schema,
            spec=get_endpoint(self.endpoint),
            account=self.account,
            ready_deadline_hour=self.ready_deadline_hour,
            clock=self.clock or utcnow,
            meta={name: getattr(ti, name, None) for name in ("dag_id", "run_id", "try_number")},
            log=self.log,
        )

    def _load_in_order(self, windows: list[Window], load: Callable[[Window], LoadResult], summary: Summary) -> None:
        """Load the requested windows, then the matured re-fetch.

        The requested dates go first: while the day is not published (every retry until the
        deadline) only that one call is spent; the matured re-fetch comes with the try that
        finds the day ready. A broken payload for the day must not cost the matured send
        date its only full re-fetch, so that one still runs before the error is raised.
        """
        from wechat_datacube.windows import MATURED

        matured = [w for w in windows if w.reason == MATURED]
        try:
            self._load_each([w for w in windows if w.reason != MATURED], load, summary)
        except (BadPayloadError, MalformedResponseError):
            self._load_each(matured, load, summary)
            raise
        self._load_each(matured, load, summary)

    @staticmethod
    def _load_each(windows: list[Window], load: Callable[[Window], LoadResult], summary: Summary) -> None:
        for window in windows:
            result = load(window)
            summary["windows"].append(
                {"begin": window.begin.isoformat(), "end": window.end.isoformat(), "status": result.status.value,
                 "rows": result.rows, "reason": window.reason}
            )
            summary["rows"] += result.rows

    def _note_quota(self, loader: WindowLoader, exc: QuotaExceededError, summary: Summary, windows: list[Window]) -> None:
        """A 45009 this task got from WeChat is news; one remembered from an earlier task is not."""
        from wechat_datacube.alerts.builders import quota_event
        from wechat_datacube.errors import QuotaBlockedError

        if not isinstance(exc, QuotaBlockedError):
            backfill = self.on_quota == "skip"
            loader.events.append(quota_event(exc, backfill=backfill, stored=len(summary["windows"]), planned=len(windows)))

    def _send_alerts(self, events: list[Any], context: Context) -> None:
        """Send what the task learned to the account's targets, and what their outbox still holds;
        never raises (see ``deliver``)."""
        if self.alert_targets:
            from wechat_datacube.alerts.dispatch import deliver

            deliver(events, self.alert_targets, context)

    def _quota_skip(self, exc: QuotaExceededError, summary: Summary, windows: list[Window]) -> AirflowSkipException:
        """``on_quota="skip"``: end the task as skipped, saying what was stored and when to resume."""
        return AirflowSkipException(
            f"WeChat daily quota (45009) spent for {self.account} {self.endpoint} until "
            f"{exc.reset_at.isoformat()}: stored {len(summary['windows'])} of {len(windows)} window(s), "
            "the rest were not called; run the backfill again after the reset to resume"
        )

    def _unfinished(self, loader: WindowLoader, windows: list[Window]) -> list[Window]:
        """Drop windows whose dates are all done already (one load_log read)."""
        from wechat_datacube import storage
        from wechat_datacube.backfill_plan import window_done

        done = storage.loaded_dates(
            loader.conn, self.schema, self.account, self.endpoint,
            min(w.begin for w in windows), max(w.end for w in windows),
        )
        todo = [w for w in windows if not window_done(w, done)]
        if len(todo) < len(windows):
            self.log.info("%d of %d window(s) already loaded; not fetching them again", len(windows) - len(todo), len(windows))
        return todo

