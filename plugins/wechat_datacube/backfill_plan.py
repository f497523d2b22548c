"""Plan a bulk backfill: which (account, endpoint, date range) tasks to run, and what they cost.

Pure planning (:func:`plan_backfill` and its helpers) is separated from the one function
that reads Postgres (:func:`read_done_dates`) and from the entry point the DAG's ``plan``
task calls (:func:`plan_from_params`), so the rules can be unit-tested without a database.
The ``report`` task at the end of a run has its own module, :mod:`wechat_datacube.backfill_report`.

How a range becomes mapped tasks:

1. Per account and endpoint, [begin, end] is cut into windows of the endpoint's max span
   by :func:`wechat_datacube.windows.plan_windows` — clipped to the endpoint's first date
   and the account's active range (cutover between legacy and replacement endpoints).
   Windows are aligned at the first servable date (at the last one for getusersummary,
   whose newest day is never asked for alone), so one window is one API call. Week and
   month endpoints get the labels of the periods that end in the range (see
   :mod:`wechat_datacube.windows`).
2. With ``reprocess="missing"`` a window whose dates are all done in ``load_log``
   (:data:`wechat_datacube.load_status.DONE`: loaded, empty or kept) is dropped; with
   ``"all"`` every window is fetched again.
3. Consecutive remaining windows form runs; each run is cut into batches of at most
   ``windows_per_task`` windows. One batch = one mapped task = one contiguous
   ``begin_date..end_date`` handed to the ordinary operator, which re-plans exactly the
   same windows (all but a range's last window are full-span, so the alignment holds).

API calls of a plan = Σ over endpoints of ceil(days / span) (for week and month endpoints:
of the periods ending in the range, as many per call as the span holds), minus the windows
skipped.

Batching and Airflow's mapped-task cap (``[core] max_map_length``, 1024 by default): a
window per mapped task is the clearest progress display, but ten years × six endpoints is
~16,000 windows and each task instance costs scheduler and metadata-DB work (and about a
quarter of a second in ``dag.test``). So batches hold several windows and, when even that
would exceed the cap, :func:`choose_batch_size` widens them until the task count fits
under it — the cap is honoured, never silently raised, and nothing is dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wechat_datacube.accounts import AccountConfig
from wechat_datacube.backfill_params import DEFAULT_WINDOWS_PER_TASK, REPROCESS_MODES
from wechat_datacube.dates import DateRange, beijing_yesterday
from wechat_datacube.endpoints import get_endpoint
from wechat_datacube.errors import ConfigError, DateRangeError
from wechat_datacube.periods import earliest_label
from wechat_datacube.run_conf import endpoint_names, expand_names
from wechat_datacube.windows import Window, plan_windows

#: Airflow's default ``[core] max_map_length``.
DEFAULT_MAX_TASKS = 1024

#: (account, endpoint) -> dates already done (loaded, empty or kept).
DoneDates = Mapping[tuple[str, str], set[dt.date]]


@dataclass(frozen=True)
class BackfillTask:
    """One mapped task: a contiguous range of one endpoint for one account."""

    account: AccountConfig
    endpoint: str
    dates: DateRange
    #: API calls it makes (one per window).
    windows: int

    @property
    def label(self) -> str:
        return f"{self.account.name} {self.endpoint} {self.dates}"

    def operator_kwargs(self, *, skip_loaded: bool, replace_shrinking: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``WeChatDatacubeToPostgresOperator`` (JSON-safe: they travel via XCom)."""
        return {
            "account": self.account.name,
            "endpoint": self.endpoint,
            "wechat_conn_id": self.account.wechat_conn_id,
            "postgres_conn_id": self.account.postgres_conn_id,
            "schema": self.account.schema,
            "begin_date": self.dates.begin.isoformat(),
            "end_date": self.dates.end.isoformat(),
            "ready_deadline_hour": self.account.ready_deadline_hour,
            "skip_loaded": skip_loaded,
            "replace_shrinking": replace_shrinking,
            # Only for accounts with alerts: the other accounts' kwargs stay as they were.
            **({"alert_targets": self.account.alert_targets.as_json()} if self.account.alert_targets else {}),
        }


@dataclass
class BackfillPlan:
    """The tasks to run plus the bookkeeping the run log reports."""

    dates: DateRange
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
            f"backfill {self.dates} reprocess={self.reprocess}: {self.calls} API call(s) in "
            f"{len(self.tasks)} task(s) of <= {self.windows_per_task} window(s); {self.skipped} window(s) already done"
        ]
        for (account, endpoint), total in self.windows_total.items():
            skipped = self.windows_skipped.get((account, endpoint), 0)
            lines.append(f"  {account} {endpoint}: {total - skipped} of {total} window(s) to fetch")
        return "\n".join(lines)


# --- pure rules -------------------------------------------------------------------------


def window_done(window: Window, done: set[dt.date]) -> bool:
    """A window is finished when every one of its dates is done (loaded, empty or kept)."""
    return all(day in done for day in window)


def account_endpoints(
    accounts: Iterable[AccountConfig], endpoints: Mapping[str, Sequence[str]]
) -> Iterator[tuple[AccountConfig, str]]:
    """(account, endpoint) for every endpoint ``endpoints`` names for each account, in order."""
    for account in accounts:
        for name in endpoints.get(account.name, ()):
            yield account, name


def contiguous_runs(windows: Sequence[Window]) -> list[list[Window]]:
    """Group windows (in date order) into runs with no gap between neighbours."""
    runs: list[list[Window]] = []
    for window in windows:
        if runs and runs[-1][-1].last_day + dt.timedelta(days=1) == window.begin:
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


def resolve_dates(begin: Any, end: Any, *, yesterday: dt.date, **context: Any) -> DateRange:
    """The run's dates; an empty end means yesterday, a later one is capped at yesterday
    (Beijing), because WeChat refuses today and the future (61501). ``context`` (accounts,
    endpoints) goes into the messages."""
    if not begin:
        raise ConfigError("begin_date (YYYY-MM-DD, a Beijing date) is required", **context)
    asked = DateRange.parse(begin, end or yesterday, **context)
    try:
        return DateRange.parse(asked.begin, min(asked.end, yesterday), **context)
    except DateRangeError as exc:
        exc.reword(f"{exc.message} (end_date is capped at yesterday in Beijing)")
        raise


def resolve_params(
    params: Mapping[str, Any], all_accounts: Sequence[AccountConfig], *, now: dt.datetime | None = None
) -> tuple[list[AccountConfig], DateRange, dict[str, tuple[str, ...]]]:
    """(accounts, dates, account name -> endpoints) a backfill run's params ask for, each checked."""
    accounts = resolve_accounts(all_accounts, params.get("accounts"))
    names = ", ".join(a.name for a in accounts)
    asked = ", ".join(endpoint_names(params.get("endpoints"), account=names)) or "all configured"
    yesterday = beijing_yesterday(now)
    dates = resolve_dates(params.get("begin_date"), params.get("end_date"), yesterday=yesterday, account=names, endpoint=asked)
    endpoints = resolve_endpoints(accounts, params.get("endpoints"), begin_date=dates.begin, end_date=dates.end)
    return accounts, dates, endpoints


def endpoint_windows(account: AccountConfig, endpoint: str, dates: DateRange) -> list[Window]:
    """The windows (one API call each) of ``endpoint`` for ``account`` in ``dates``, within its active range."""
    active_from, active_until = account.active_range(endpoint)
    return plan_windows(get_endpoint(endpoint), dates, active_from=active_from, active_until=active_until)


def plan_backfill(
    accounts: Sequence[AccountConfig],
    endpoints: Mapping[str, Sequence[str]],
    dates: DateRange,
    *,
    done: DoneDates,
    reprocess: str = "missing",
    windows_per_task: int = DEFAULT_WINDOWS_PER_TASK,
    max_tasks: int = DEFAULT_MAX_TASKS,
) -> BackfillPlan:
    """The mapped tasks for ``dates`` (see the module docstring for the rules)."""
    if reprocess not in REPROCESS_MODES:
        raise ConfigError(f"reprocess must be one of {REPROCESS_MODES}, not {reprocess!r}")
    plan = BackfillPlan(dates=dates, reprocess=reprocess)
    pending: list[tuple[AccountConfig, str, list[Window]]] = []
    for account, name in account_endpoints(accounts, endpoints):
        windows = endpoint_windows(account, name, dates)
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
            # Through the last window's last business date: a week or month task then re-plans
            # exactly its labels (those whose period ends in the task's range).
            plan.tasks.append(BackfillTask(account, name, DateRange(part[0].begin, part[-1].last_day), len(part)))
    return plan


# --- the database -------------------------------------------------------------------------


def read_done_dates(
    accounts: Sequence[AccountConfig],
    endpoints: Mapping[str, Sequence[str]],
    dates: DateRange,
    *,
    connect: Callable[[str], Any] | None = None,
) -> dict[tuple[str, str], set[dt.date]]:
    """Dates already done (loaded, empty or kept) per (account, endpoint), read from each account's load_log.

    Brings each schema up to date first (as the window loader does), so a first backfill
    into an empty database plans everything instead of failing.
    ``connect(postgres_conn_id)`` returns a psycopg connection (default: PostgresHook).
    """
    from wechat_datacube import storage

    # A week or month whose last day is in ``dates`` is labelled up to a month before them.
    begin, end = earliest_label(dates.begin), dates.end
    done: dict[tuple[str, str], set[dt.date]] = {}
    for conn, group in connections_by_database(accounts, connect):
        for account, name in account_endpoints(group, endpoints):
            done[(account.name, name)] = storage.loaded_dates(conn, account.schema, account.name, name, begin, end)
    return done


def connections_by_database(
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
                storage.ensure_schema(conn, schema)
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
    accounts, dates, endpoints = resolve_params(params, all_accounts, now=now)
    mode = reprocess or params.get("reprocess") or "missing"
    windows_per_task = int(params.get("windows_per_task") or DEFAULT_WINDOWS_PER_TASK)
    done = read_done_dates(accounts, endpoints, dates, connect=connect) if mode == "missing" else {}
    return plan_backfill(
        accounts,
        endpoints,
        dates,
        done=done,
        reprocess=mode,
        windows_per_task=windows_per_task,
        max_tasks=max_tasks,
    )
