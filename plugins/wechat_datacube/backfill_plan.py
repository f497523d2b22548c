"""Plan a bulk backfill: which (account, endpoint, date range) tasks to run, and what they cost.

Pure planning (:func:`plan_backfill` and its helpers) is separated from the one function
that reads Postgres (:func:`read_done_dates`) and from the entry point the DAG's ``plan``
task calls (:func:`plan_from_params`), so the rules can be unit-tested without a database.
The same split holds for the ``report`` task at the end of a run: :func:`build_report`
(pure: windows loaded / kept / failed / skipped per account and endpoint, each failure's
errcode with its meaning and what to do), :func:`read_run_outcome` (Postgres) and
:func:`report_from_params` (the entry point).

How a range becomes mapped tasks:

1. Per account and endpoint, [begin, end] is cut into windows of the endpoint's max span
   by :func:`wechat_datacube.windows.plan_windows` — clipped to the endpoint's first date
   and the account's active range (cutover between legacy and replacement endpoints).
   Windows are aligned at the first servable date, so one window is one API call.
2. With ``reprocess="missing"`` a window whose dates are all ``loaded``/``empty`` in
   ``load_log`` is dropped; with ``"all"`` every window is fetched again.
3. Consecutive remaining windows form runs; each run is cut into batches of at most
   ``windows_per_task`` windows. One batch = one mapped task = one contiguous
   ``begin_date..end_date`` handed to the ordinary operator, which re-plans exactly the
   same windows (all but a range's last window are full-span, so the alignment holds).

API calls of a plan = Σ over endpoints of ceil(days / span), minus the windows skipped.

Batching and Airflow's mapped-task cap (``[core] max_map_length``, 1024 by default): a
window per mapped task is the clearest progress display, but ten years × six endpoints is
~16,000 windows and each task instance costs scheduler and metadata-DB work (and about a
quarter of a second in ``dag.test``). So batches hold several windows and, when even that
would exceed the cap, :func:`choose_batch_size` widens them until the task count fits
under it — the cap is honoured, never silently raised, and nothing is dropped.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wechat_datacube.accounts import AccountConfig
from wechat_datacube.backfill_params import DEFAULT_WINDOWS_PER_TASK, REPROCESS_MODES
from wechat_datacube.dates import beijing_yesterday, iter_days, parse_date
from wechat_datacube.endpoints import get_endpoint
from wechat_datacube.errors import BEIJING, ConfigError, ErrorClass, classify, describe_errcode
from wechat_datacube.run_conf import endpoint_names, expand_names
from wechat_datacube.windows import Window, plan_windows

#: Airflow's default ``[core] max_map_length``.
DEFAULT_MAX_TASKS = 1024

#: (account, endpoint) -> dates already loaded/empty.
DoneDates = Mapping[tuple[str, str], set[dt.date]]


@dataclass(frozen=True)
class BackfillTask:
    """One mapped task: a contiguous range of one endpoint for one account."""

    account: AccountConfig
    endpoint: str
    begin: dt.date
    end: dt.date
    #: API calls it makes (one per window).
    windows: int

    @property
    def label(self) -> str:
        return f"{self.account.name} {self.endpoint} {self.begin.isoformat()}..{self.end.isoformat()}"

    def operator_kwargs(self, *, skip_loaded: bool, replace_shrinking: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``WeChatDatacubeToPostgresOperator`` (JSON-safe: they travel via XCom)."""
        return {
            "account": self.account.name,
            "endpoint": self.endpoint,
            "wechat_conn_id": self.account.wechat_conn_id,
            "postgres_conn_id": self.account.postgres_conn_id,
            "schema": self.account.schema,
            "begin_date": self.begin.isoformat(),
            "end_date": self.end.isoformat(),
            "ready_deadline_hour": self.account.ready_deadline_hour,
            "skip_loaded": skip_loaded,
            "replace_shrinking": replace_shrinking,
        }


@dataclass
class BackfillPlan:
    """The tasks to run plus the bookkeeping the run log reports."""

    begin: dt.date
    end: dt.date
    reprocess: str
    tasks: list[BackfillTask] = field(default_factory=list)
    #: (account, endpoint) -> windows in range / windows skipped because already done.
    windows_total: dict[tuple[str, str], int] = field(default_factory=dict)
    windows_skipped: dict[tuple[str, str], int] = field(default_factory=dict)
    windows_per_task: int = DEFAULT_WINDOWS_PER_TASK

    @property
    def calls(self) -> int:
        """API calls this plan makes (one per window to fetch)."""
        return sum(t.windows for t in self.tasks)

    @property
    def skipped(self) -> int:
        return sum(self.windows_skipped.values())

    def summary(self) -> str:
        lines = [
            f"backfill {self.begin}..{self.end} reprocess={self.reprocess}: {self.calls} API call(s) in "
            f"{len(self.tasks)} task(s) of <= {self.windows_per_task} window(s); {self.skipped} window(s) already done"
        ]
        for (account, endpoint), total in self.windows_total.items():
            skipped = self.windows_skipped.get((account, endpoint), 0)
            lines.append(f"  {account} {endpoint}: {total - skipped} of {total} window(s) to fetch")
        return "\n".join(lines)


# --- pure rules -------------------------------------------------------------------------


def window_done(window: Window, done: set[dt.date]) -> bool:
    """A window is finished when every one of its dates is loaded or empty."""
    return all(day in done for day in iter_days(window.begin, window.end))


def contiguous_runs(windows: Sequence[Window]) -> list[list[Window]]:
    """Group windows (in date order) into runs with no gap between neighbours."""
    runs: list[list[Window]] = []
    for window in windows:
        if runs and runs[-1][-1].end + dt.timedelta(days=1) == window.begin:
            runs[-1].append(window)
        else:
            runs.append([window])
    return runs


def tasks_needed(run_lengths: Iterable[int], batch: int) -> int:
    """Mapped tasks for runs of these lengths at ``batch`` windows per task."""
    return sum(-(-n // batch) for n in run_lengths)


def choose_batch_size(run_lengths: Sequence[int], preferred: int, max_tasks: int) -> int:
    """The smallest batch >= ``preferred`` that keeps the task count <= ``max_tasks``.

    Raises when even one task per run exceeds the cap (more separate runs than allowed
    tasks, which needs an absurd mix of already-loaded holes).
    """
    if preferred < 1 or max_tasks < 1:
        raise ConfigError("windows_per_task and max_tasks must be >= 1")
    if len(run_lengths) > max_tasks:
        raise ConfigError(
            f"{len(run_lengths)} separate date runs need at least that many mapped tasks, more than "
            f"[core] max_map_length={max_tasks}: narrow the range or the accounts/endpoints, or raise the limit"
        )
    low, high = preferred, max(preferred, max(run_lengths, default=1))
    if tasks_needed(run_lengths, low) <= max_tasks:
        return low
    while low < high:  # tasks_needed is non-increasing in batch: binary search
        mid = (low + high) // 2
        if tasks_needed(run_lengths, mid) <= max_tasks:
            high = mid
        else:
            low = mid + 1
    return high


def resolve_accounts(all_accounts: Sequence[AccountConfig], names: Iterable[str] | None) -> list[AccountConfig]:
    """The accounts a run asked for (empty = all), in the accounts file's order."""
    wanted = [n for n in (names or []) if n]
    if not wanted:
        if not all_accounts:
            raise ConfigError("the accounts file has no valid account to backfill")
        return list(all_accounts)
    known = {a.name for a in all_accounts}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ConfigError(f"unknown account(s) {unknown}; the accounts file has {sorted(known)}")
    return [a for a in all_accounts if a.name in wanted]


def resolve_endpoints(
    accounts: Sequence[AccountConfig], requested: Iterable[str] | str | None, **context: Any
) -> dict[str, tuple[str, ...]]:
    """account name -> endpoints to backfill: the request (names or family keywords, a list or
    one name as a string) intersected with what each account is configured for; empty
    request = all configured. ``context`` (dates) goes into the messages."""
    context = {"account": ", ".join(a.name for a in accounts), **context}
    names = endpoint_names(requested, **context)
    if not names:
        return {a.name: a.endpoints for a in accounts}
    wanted = expand_names(names, **context)
    chosen = {a.name: tuple(e for e in a.endpoints if e in wanted) for a in accounts}
    used = {e for endpoints in chosen.values() for e in endpoints}
    unused = [e for e in wanted if e not in used]
    if unused:
        raise ConfigError(f"endpoint(s) {unused} are not configured for any of the accounts {sorted(chosen)}", **context)
    return chosen


def resolve_dates(begin: Any, end: Any, *, yesterday: dt.date) -> tuple[dt.date, dt.date]:
    """Parse the run's dates; an empty end means yesterday, a later one is capped at yesterday
    (Beijing), because WeChat refuses today and the future (61501)."""
    if not begin:
        raise ConfigError("begin_date (YYYY-MM-DD, a Beijing date) is required")
    b = parse_date(begin, what="begin_date")
    e = parse_date(end, what="end_date") if end else yesterday
    e = min(e, yesterday)
    if b > e:
        raise ConfigError(f"begin_date {b} is after end_date {e} (end_date is capped at yesterday in Beijing)")
    return b, e


def endpoint_windows(account: AccountConfig, endpoint: str, begin: dt.date, end: dt.date) -> list[Window]:
    """The windows (one API call each) of ``endpoint`` for ``account`` in [begin, end], within its active range."""
    active_from, active_until = account.active_range(endpoint)
    return plan_windows(get_endpoint(endpoint), begin, end, active_from=active_from, active_until=active_until)


def plan_backfill(
    accounts: Sequence[AccountConfig],
    endpoints: Mapping[str, Sequence[str]],
    begin: dt.date,
    end: dt.date,
    *,
    done: DoneDates,
    reprocess: str = "missing",
    windows_per_task: int = DEFAULT_WINDOWS_PER_TASK,
    max_tasks: int = DEFAULT_MAX_TASKS,
) -> BackfillPlan:
    """The mapped tasks for [begin, end] (see the module docstring for the rules)."""
    if reprocess not in REPROCESS_MODES:
        raise ConfigError(f"reprocess must be one of {REPROCESS_MODES}, not {reprocess!r}")
    plan = BackfillPlan(begin=begin, end=end, reprocess=reprocess)
    pending: list[tuple[AccountConfig, str, list[Window]]] = []
    for account in accounts:
        for name in endpoints.get(account.name, ()):
            windows = endpoint_windows(account, name, begin, end)
            finished = done.get((account.name, name), set()) if reprocess == "missing" else set()
            todo = [w for w in windows if not window_done(w, finished)]
            plan.windows_total[(account.name, name)] = len(windows)
            plan.windows_skipped[(account.name, name)] = len(windows) - len(todo)
            pending.extend((account, name, run) for run in contiguous_runs(todo))
    batch = choose_batch_size([len(run) for _, _, run in pending], windows_per_task, max_tasks)
    plan.windows_per_task = batch
    for account, name, run in pending:
        for i in range(0, len(run), batch):
            part = run[i : i + batch]
            plan.tasks.append(BackfillTask(account, name, part[0].begin, part[-1].end, len(part)))
    return plan


# --- the database -------------------------------------------------------------------------


def read_done_dates(
    accounts: Sequence[AccountConfig],
    endpoints: Mapping[str, Sequence[str]],
    begin: dt.date,
    end: dt.date,
    *,
    connect: Callable[[str], Any] | None = None,
) -> dict[tuple[str, str], set[dt.date]]:
    """Dates already ``loaded``/``empty`` per (account, endpoint), read from each account's load_log.

    Migrates the schema first (idempotent, the operator does the same), so a first
    backfill into an empty database plans everything instead of failing.
    ``connect(postgres_conn_id)`` returns a psycopg connection (default: PostgresHook).
    """
    from wechat_datacube import storage

    done: dict[tuple[str, str], set[dt.date]] = {}
    for conn, group in _connections(accounts, connect):
        for account in group:
            for name in endpoints.get(account.name, ()):
                done[(account.name, name)] = storage.loaded_dates(conn, account.schema, account.name, name, begin, end)
    return done


def _connections(
    accounts: Sequence[AccountConfig], connect: Callable[[str], Any] | None
) -> Iterator[tuple[Any, list[AccountConfig]]]:
    """(connection, its accounts) per ``postgres_conn_id``, each schema migrated; closed after use.

    ``connect(postgres_conn_id)`` returns a psycopg connection (default: PostgresHook).
    """
    from wechat_datacube import storage

    if connect is None:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        def connect(conn_id: str) -> Any:
            return PostgresHook(postgres_conn_id=conn_id).get_conn()

    by_conn: dict[str, list[AccountConfig]] = {}
    for account in accounts:
        by_conn.setdefault(account.postgres_conn_id, []).append(account)
    for conn_id, group in by_conn.items():
        conn = connect(conn_id)
        try:
            for schema in sorted({a.schema for a in group}):
                storage.migrate(conn, schema)
            yield conn, group
        finally:
            conn.close()


def plan_from_params(
    params: Mapping[str, Any],
    *,
    all_accounts: Sequence[AccountConfig],
    now: dt.datetime | None = None,
    max_tasks: int = DEFAULT_MAX_TASKS,
    reprocess: str | None = None,
    connect: Callable[[str], Any] | None = None,
) -> BackfillPlan:
    """The DAG's entry point: validate the run params, read load_log, plan.

    ``reprocess`` overrides the param (the final report always asks what is still missing).
    """
    accounts = resolve_accounts(all_accounts, params.get("accounts"))
    begin, end = resolve_dates(params.get("begin_date"), params.get("end_date"), yesterday=beijing_yesterday(now))
    endpoints = resolve_endpoints(accounts, params.get("endpoints"), begin_date=begin, end_date=end)
    mode = reprocess or params.get("reprocess") or "missing"
    windows_per_task = int(params.get("windows_per_task") or DEFAULT_WINDOWS_PER_TASK)
    done = read_done_dates(accounts, endpoints, begin, end, connect=connect) if mode == "missing" else {}
    return plan_backfill(
        accounts,
        endpoints,
        begin,
        end,
        done=done,
        reprocess=mode,
        windows_per_task=windows_per_task,
        max_tasks=max_tasks,
    )


# --- the report: what became of a run ---------------------------------------------------------
#
# After the loads, the ``report`` task walks every window of the run's range and says what it
# is now (load_log), and for those not loaded which load task left them (the mapped task's
# Airflow state: failed or skipped) and why (the task's last failed response of this run in
# ``api_response``, whose error text carries the errcode). Any failed load task fails the run;
# windows skipped because the daily quota ran out do not, but the report says when to resume.

#: Airflow states of a load task that ended without loading its windows because of an error.
FAILED_TASK_STATES = frozenset({"failed", "upstream_failed"})
SKIPPED_TASK_STATE = "skipped"
RESUME = "trigger again to resume"
#: What to do after a load failed, by the class of its errcode.
NEXT_STEPS: dict[ErrorClass | None, str] = {
    ErrorClass.PERMANENT: "fix the configuration, then trigger again",
    ErrorClass.TRANSIENT: RESUME,
    ErrorClass.TOKEN: RESUME,
    ErrorClass.NOT_READY: f"WeChat has not published these dates yet: {RESUME} later",
    # No errcode: an HTTP error, a body that does not parse or fit, a crash.
    None: "read the load task's log and fix the cause, then trigger again",
}
_ERRCODE = re.compile(r"\berrcode=(-?\d+)")


def resume_after(moment: dt.datetime) -> str:
    """``resume after 2026-05-03 00:00 Beijing: trigger again then``."""
    return f"resume after {moment.astimezone(BEIJING):%Y-%m-%d %H:%M} Beijing: trigger again then"


@dataclass(frozen=True)
class RunFailure:
    """A response of this run that was not loaded: an ``api_response`` row with status failed/not_ready."""

    begin: dt.date
    end: dt.date
    status: str
    #: The stored error text (``... [account=..., errcode=40125, errmsg=...]``).
    error: str

    @property
    def errcode(self) -> int | None:
        match = _ERRCODE.search(self.error)
        return int(match.group(1)) if match else None


@dataclass(frozen=True)
class FailureCause:
    """Why a load task failed, as far as it is the same for every task it hit: the errcode, or
    the error text without its ``[account=..., dates=...]`` part when there is none."""

    errcode: int | None = None
    detail: str = ""
    #: ``failed`` / ``not_ready``; empty when the task kept no failed response.
    status: str = ""

    @classmethod
    def of(cls, failure: RunFailure | None) -> FailureCause:
        if failure is None:
            return cls()
        errcode = failure.errcode
        detail = "" if errcode is not None else failure.error.split(" [account=", 1)[0].strip()[:300]
        return cls(errcode, detail, failure.status)

    @property
    def error_class(self) -> ErrorClass | None:
        if self.errcode is not None:
            return classify(self.errcode)
        return ErrorClass.NOT_READY if self.status == "not_ready" else None

    def meaning(self) -> str:
        if self.errcode is not None:
            return describe_errcode(self.errcode)
        if not self.status:
            return "no failed response was kept: the task failed before calling WeChat or did not finish"
        return f"no errcode: {self.detail}"

    def next_step(self, resume_at: dt.datetime | None) -> str:
        if self.error_class is ErrorClass.QUOTA:
            return resume_after(resume_at) if resume_at else RESUME
        return NEXT_STEPS[self.error_class]


@dataclass
class EndpointOutcome:
    """What a run left of one (account, endpoint): its windows by state, and why load tasks failed."""

    account: str
    endpoint: str
    windows: int = 0
    #: Windows whose dates are all loaded/empty (this run or earlier) / some kept their rows.
    loaded: int = 0
    kept: int = 0
    #: Windows not loaded whose load task failed / was skipped (daily quota).
    failed: int = 0
    skipped: int = 0
    #: Windows not loaded that no failed or skipped task accounts for (say the range grew past midnight).
    missing: int = 0
    #: cause -> [load tasks that failed of it, windows they left unloaded]
    causes: dict[FailureCause, list[int]] = field(default_factory=dict)
    #: When the endpoint's daily quota resets, while it is known to be spent.
    resume_at: dt.datetime | None = None

    @property
    def failed_tasks(self) -> int:
        return sum(tasks for tasks, _ in self.causes.values())

    @property
    def not_loaded(self) -> int:
        return self.failed + self.skipped + self.missing

    def _skip_step(self) -> str:
        return resume_after(self.resume_at) if self.resume_at else RESUME

    def failure_steps(self) -> list[str]:
        """What to do about the failed load tasks."""
        return list(dict.fromkeys(cause.next_step(self.resume_at) for cause in self.causes))

    def resume_steps(self) -> list[str]:
        """When to pick up the windows skipped or not planned."""
        steps = [self._skip_step()] if self.skipped else []
        return list(dict.fromkeys([*steps, *([RESUME] if self.missing else [])]))

    def next_steps(self) -> list[str]:
        return list(dict.fromkeys([*self.failure_steps(), *self.resume_steps()]))

    def line(self) -> str:
        counts = (
            f"{self.account} {self.endpoint}: {self.windows} window(s): {self.loaded} loaded, {self.kept} kept, "
            f"{self.failed} failed, {self.skipped} skipped"
        )
        parts = [counts + (f", {self.missing} missing" if self.missing else "")]
        for cause, (tasks, windows) in self.causes.items():
            parts.append(
                f"{tasks} load task(s) failed, leaving {windows} window(s): {cause.meaning()} "
                f"-> {cause.next_step(self.resume_at)}"
            )
        if self.skipped:
            why = "daily quota (45009) spent" if self.resume_at else "skipped"
            parts.append(f"{self.skipped} window(s) skipped, {why} -> {self._skip_step()}")
        if self.missing:
            parts.append(f"{self.missing} window(s) not planned or not loaded -> {RESUME}")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "endpoint": self.endpoint,
            "windows": self.windows,
            "loaded": self.loaded,
            "kept": self.kept,
            "failed": self.failed,
            "skipped": self.skipped,
            "missing": self.missing,
            "failures": [
                {
                    "errcode": cause.errcode,
                    "error_class": cause.error_class.value if cause.error_class else None,
                    "meaning": cause.meaning(),
                    "next_step": cause.next_step(self.resume_at),
                    "tasks": tasks,
                    "windows": windows,
                }
                for cause, (tasks, windows) in self.causes.items()
            ],
            "resume_at": self.resume_at.isoformat() if self.resume_at else None,
            "next_steps": self.next_steps(),
        }


@dataclass
class BackfillReport:
    """What a backfill run left, per (account, endpoint), and the verdict."""

    begin: dt.date
    end: dt.date
    outcomes: list[EndpointOutcome] = field(default_factory=list)

    @property
    def failed_tasks(self) -> int:
        return sum(o.failed_tasks for o in self.outcomes)

    @property
    def missing_windows(self) -> int:
        return sum(o.not_loaded for o in self.outcomes)

    @property
    def state(self) -> str:
        """``failed`` (a load task failed: the run must fail), ``incomplete`` (only skipped or
        missing windows: trigger again) or ``complete``."""
        if self.failed_tasks:
            return "failed"
        return "incomplete" if self.missing_windows else "complete"

    def next_steps(self) -> list[str]:
        """What to do, failures first: the same step once however many endpoints need it."""
        failures = [step for o in self.outcomes for step in o.failure_steps()]
        return list(dict.fromkeys([*failures, *(step for o in self.outcomes for step in o.resume_steps())]))

    def headline(self) -> str:
        span = f"{self.begin}..{self.end}"
        steps = "; ".join(self.next_steps())
        if self.state == "failed":
            return (
                f"FAILED: {self.failed_tasks} load task(s) failed; {self.missing_windows} window(s) of {span} "
                f"still missing: {steps}"
            )
        if self.state == "incomplete":
            return f"INCOMPLETE: {self.missing_windows} window(s) still missing of {span}: {steps}"
        return f"complete: every window of {span} is loaded"

    def text(self) -> str:
        return "\n".join([self.headline(), *(f"  {o.line()}" for o in self.outcomes)])

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe (the report task's XCom)."""
        return {
            "state": self.state,
            "begin": self.begin.isoformat(),
            "end": self.end.isoformat(),
            "failed_tasks": self.failed_tasks,
            "missing_windows": self.missing_windows,
            "next_steps": self.next_steps(),
            "endpoints": [o.as_dict() for o in self.outcomes],
        }


def build_report(
    accounts: Sequence[AccountConfig],
    endpoints: Mapping[str, Sequence[str]],
    begin: dt.date,
    end: dt.date,
    *,
    tasks: Sequence[Mapping[str, Any]],
    task_states: Mapping[int, str | None],
    load_status: Mapping[tuple[str, str], Mapping[dt.date, str]],
    failures: Mapping[tuple[str, str], Sequence[RunFailure]] | None = None,
    blocked_until: Mapping[tuple[str, str], dt.datetime] | None = None,
) -> BackfillReport:
    """The report of a run (pure).

    ``tasks``: the plan task's operator kwargs (list index = the load task's map index);
    ``task_states``: map index -> Airflow state of that load task; ``load_status``: load_log
    per (account, endpoint); ``failures``: this run's failed responses per (account, endpoint),
    oldest first; ``blocked_until``: quota blocks still in force.
    """
    from wechat_datacube.storage import DONE_STATUSES

    failures = failures or {}
    blocked_until = blocked_until or {}
    ranges: dict[tuple[str, str], list[tuple[dt.date, dt.date, int]]] = {}
    for index, kwargs in enumerate(tasks):
        key = (kwargs["account"], kwargs["endpoint"])
        ranges.setdefault(key, []).append(
            (parse_date(kwargs["begin_date"], what="begin_date"), parse_date(kwargs["end_date"], what="end_date"), index)
        )
    report = BackfillReport(begin, end)
    for account in accounts:
        for name in endpoints.get(account.name, ()):
            key = (account.name, name)
            outcome = EndpointOutcome(account.name, name, resume_at=blocked_until.get(key))
            status = load_status.get(key, {})
            left: dict[int, int] = {}  # load task -> its windows not loaded
            covering = sorted(ranges.get(key, ()))
            starts = [b for b, _, _ in covering]
            for window in endpoint_windows(account, name, begin, end):
                outcome.windows += 1
                states = {status.get(day) for day in iter_days(window.begin, window.end)}
                if states <= set(DONE_STATUSES):
                    if "kept" in states:
                        outcome.kept += 1
                    else:
                        outcome.loaded += 1
                    continue
                at = bisect.bisect_right(starts, window.begin) - 1  # the task whose range holds the window
                index = covering[at][2] if at >= 0 and window.begin <= covering[at][1] else -1
                state = task_states.get(index) if index >= 0 else None
                if state in FAILED_TASK_STATES:
                    outcome.failed += 1
                    left[index] = left.get(index, 0) + 1
                elif state == SKIPPED_TASK_STATE:
                    outcome.skipped += 1
                else:
                    outcome.missing += 1
            for b, e, index in ranges.get(key, ()):
                if task_states.get(index) not in FAILED_TASK_STATES:
                    continue
                last = None
                for failure in failures.get(key, ()):
                    if b <= failure.begin <= e:
                        last = failure
                tally = outcome.causes.setdefault(FailureCause.of(last), [0, 0])
                tally[0] += 1
                tally[1] += left.get(index, 0)
            report.outcomes.append(outcome)
    return report


def read_run_outcome(
    accounts: Sequence[AccountConfig],
    endpoints: Mapping[str, Sequence[str]],
    begin: dt.date,
    end: dt.date,
    *,
    dag_id: str,
    run_id: str,
    now: dt.datetime,
    connect: Callable[[str], Any] | None = None,
) -> tuple[
    dict[tuple[str, str], dict[dt.date, str]],
    dict[tuple[str, str], list[RunFailure]],
    dict[tuple[str, str], dt.datetime],
]:
    """(load_log statuses, this run's failed responses oldest first, quota blocks in force at ``now``)
    per (account, endpoint), from each account's schema."""
    from psycopg import sql

    from wechat_datacube import quota_guard, storage
    from wechat_datacube.storage_schema import read_transaction

    status: dict[tuple[str, str], dict[dt.date, str]] = {}
    failures: dict[tuple[str, str], list[RunFailure]] = {}
    blocked: dict[tuple[str, str], dt.datetime] = {}
    for conn, group in _connections(accounts, connect):
        for account in group:
            for name in endpoints.get(account.name, ()):
                key = (account.name, name)
                status[key] = storage.load_status(conn, account.schema, account.name, name, begin, end)
                until = quota_guard.blocked_until(conn, account.schema, account=account.name, endpoint=name, now=now)
                if until is not None:
                    blocked[key] = until
        for schema in sorted({a.schema for a in group}):
            with read_transaction(conn):
                rows = conn.execute(
                    sql.SQL(
                        "SELECT account, endpoint, begin_date, end_date, status, coalesce(error, '')"
                        " FROM {}.api_response WHERE dag_id = %s AND run_id = %s AND account = ANY(%s)"
                        " AND status IN ('failed', 'not_ready') AND begin_date <= %s AND end_date >= %s ORDER BY id"
                    ).format(sql.Identifier(schema)),
                    (dag_id, run_id, [a.name for a in group if a.schema == schema], end, begin),
                ).fetchall()
            for account_name, endpoint, b, e, state, error in rows:
                failures.setdefault((account_name, endpoint), []).append(RunFailure(b, e, state, error))
    return status, failures, blocked


def report_from_params(
    params: Mapping[str, Any],
    *,
    all_accounts: Sequence[AccountConfig],
    tasks: Sequence[Mapping[str, Any]],
    task_states: Mapping[int, str | None],
    dag_id: str,
    run_id: str,
    now: dt.datetime | None = None,
    connect: Callable[[str], Any] | None = None,
) -> BackfillReport:
    """The report task's entry point: the run's range from its params, the rest from Postgres."""
    from wechat_datacube.dates import utcnow

    now = now or utcnow()
    accounts = resolve_accounts(all_accounts, params.get("accounts"))
    begin, end = resolve_dates(params.get("begin_date"), params.get("end_date"), yesterday=beijing_yesterday(now))
    endpoints = resolve_endpoints(accounts, params.get("endpoints"), begin_date=begin, end_date=end)
    status, failures, blocked = read_run_outcome(
        accounts, endpoints, begin, end, dag_id=dag_id, run_id=run_id, now=now, connect=connect
    )
    return build_report(
        accounts,
        endpoints,
        begin,
        end,
        tasks=tasks,
        task_states=task_states,
        load_status=status,
        failures=failures,
        blocked_until=blocked,
    )
