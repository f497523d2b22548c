"""What became of a bulk backfill run: the ``report`` task's rules and reads.

The same split as the planner's (:mod:`wechat_datacube.backfill_plan`): :func:`build_report`
is pure (windows loaded / kept / failed / skipped per account and endpoint, each failure's
errcode with its meaning and what to do; :class:`RunFacts` holds what the run left and
counts one endpoint's windows, then its failed tasks), :func:`read_run_outcome` reads
Postgres and :func:`report_from_params` is the entry point the DAG's ``report`` task calls.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wechat_datacube.accounts import AccountConfig
from wechat_datacube.backfill_plan import account_endpoints, connections_by_database, endpoint_windows, resolve_params
from wechat_datacube.dates import DateRange, beijing_clock
from wechat_datacube.errors import ErrorClass, classify, describe_errcode
from wechat_datacube.load_status import DONE, LoadStatus
from wechat_datacube.periods import earliest_label

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
#: The ``api_response`` states of a response that was not loaded.
NOT_LOADED_RESPONSES = (LoadStatus.FAILED, LoadStatus.NOT_READY)
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
    return f"resume after {beijing_clock(moment)} Beijing: trigger again then"


@dataclass(frozen=True)
class RunFailure:
    """A response of this run that was not loaded: an ``api_response`` row in :data:`NOT_LOADED_RESPONSES`."""

    begin: dt.date
    end: dt.date
    status: LoadStatus
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
    #: ``failed`` / ``not_ready``; None when the task kept no failed response.
    status: LoadStatus | None = None

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
        return ErrorClass.NOT_READY if self.status is LoadStatus.NOT_READY else None

    def meaning(self) -> str:
        if self.errcode is not None:
            return describe_errcode(self.errcode)
        if self.status is None:
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

    def count_window(self, days: set[str | None], task_state: str | None) -> bool:
        """Count one window by its days' load states and the Airflow state of the load task that
        held it; True when that task failed and left the window unloaded."""
        self.windows += 1
        if days <= DONE:
            if LoadStatus.KEPT in days:
                self.kept += 1
            else:
                self.loaded += 1
        elif task_state in FAILED_TASK_STATES:
            self.failed += 1
            return True
        elif task_state == SKIPPED_TASK_STATE:
            self.skipped += 1
        else:
            self.missing += 1
        return False

    def count_failed_task(self, cause: FailureCause, windows_left: int) -> None:
        tally = self.causes.setdefault(cause, [0, 0])
        tally[0] += 1
        tally[1] += windows_left

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

    dates: DateRange
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
        span = str(self.dates)
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
            "begin": self.dates.begin.isoformat(),
            "end": self.dates.end.isoformat(),
            "failed_tasks": self.failed_tasks,
            "missing_windows": self.missing_windows,
            "next_steps": self.next_steps(),
            "endpoints": [o.as_dict() for o in self.outcomes],
        }


#: A load task of the run: the dates it was given and its map index (its place in the plan's list).
TaskDates = tuple[DateRange, int]


def task_dates(tasks: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], list[TaskDates]]:
    """Each load task's dates per (account, endpoint), in the plan's order (list index = map index)."""
    found: dict[tuple[str, str], list[TaskDates]] = {}
    for index, kwargs in enumerate(tasks):
        key = (kwargs["account"], kwargs["endpoint"])
        dates = DateRange.parse(kwargs["begin_date"], kwargs["end_date"], account=key[0], endpoint=key[1])
        found.setdefault(key, []).append((dates, index))
    return found


def _holding_task(tasks: Sequence[TaskDates]) -> Callable[[dt.date], int | None]:
    """day -> the map index of the load task whose dates hold it (None: no task did)."""
    by_start = sorted(tasks, key=lambda task: (task[0].begin, task[0].end, task[1]))
    starts = [dates.begin for dates, _ in by_start]

    def holding(day: dt.date) -> int | None:
        at = bisect.bisect_right(starts, day) - 1  # the last task to start on or before the day
        return by_start[at][1] if at >= 0 and day in by_start[at][0] else None

    return holding


@dataclass(frozen=True)
class RunFacts:
    """What a run left, per (account, endpoint), as :func:`build_report` is given it."""

    tasks: Mapping[tuple[str, str], Sequence[TaskDates]]
    task_states: Mapping[int, str | None]
    load_status: Mapping[tuple[str, str], Mapping[dt.date, str]]
    failures: Mapping[tuple[str, str], Sequence[RunFailure]]
    blocked_until: Mapping[tuple[str, str], dt.datetime]

    def outcome(self, account: AccountConfig, endpoint: str, dates: DateRange) -> EndpointOutcome:
        """Every window of ``endpoint`` in ``dates`` counted by what it is now, then the failed tasks by cause."""
        key = (account.name, endpoint)
        outcome = EndpointOutcome(account.name, endpoint, resume_at=self.blocked_until.get(key))
        left = self._count_windows(outcome, endpoint_windows(account, endpoint, dates), key)
        self._count_failed_tasks(outcome, key, left)
        return outcome

    def _count_windows(
        self, outcome: EndpointOutcome, windows: Sequence[DateRange], key: tuple[str, str]
    ) -> dict[int, int]:
        """Count each window into ``outcome``; returns load task -> windows it failed and left unloaded."""
        status = self.load_status.get(key, {})
        holding = _holding_task(self.tasks.get(key, ()))
        left: dict[int, int] = {}
        for window in windows:
            index = holding(window.begin)
            state = self.task_states.get(index) if index is not None else None
            if outcome.count_window({status.get(day) for day in window}, state) and index is not None:
                left[index] = left.get(index, 0) + 1
        return left

    def _count_failed_tasks(self, outcome: EndpointOutcome, key: tuple[str, str], left: Mapping[int, int]) -> None:
        """Each failed load task under its cause: the last failed response of this run within its dates."""
        failures = self.failures.get(key, ())
        for dates, index in self.tasks.get(key, ()):
            if self.task_states.get(index) in FAILED_TASK_STATES:
                last = next((f for f in reversed(failures) if f.begin in dates), None)
                outcome.count_failed_task(FailureCause.of(last), left.get(index, 0))


def build_report(
    accounts: Sequence[AccountConfig],
    endpoints: Mapping[str, Sequence[str]],
    dates: DateRange,
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
    run = RunFacts(task_dates(tasks), task_states, load_status, failures or {}, blocked_until or {})
    return BackfillReport(dates, [run.outcome(a, name, dates) for a, name in account_endpoints(accounts, endpoints)])


def read_run_outcome(
    accounts: Sequence[AccountConfig],
    endpoints: Mapping[str, Sequence[str]],
    dates: DateRange,
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
    from wechat_datacube import storage

    status: dict[tuple[str, str], dict[dt.date, str]] = {}
    failures: dict[tuple[str, str], list[RunFailure]] = {}
    blocked: dict[tuple[str, str], dt.datetime] = {}
    for conn, group in connections_by_database(accounts, connect):
        for account, name in account_endpoints(group, endpoints):
            key = (account.name, name)
            first = earliest_label(dates.begin)  # a week or month ending in ``dates`` may start before them
            status[key] = storage.load_status(conn, account.schema, account.name, name, first, dates.end)
            until = storage.blocked_until(conn, account.schema, account=account.name, endpoint=name, now=now)
            if until is not None:
                blocked[key] = until
        for key, failure in _run_failures(conn, group, dates, dag_id=dag_id, run_id=run_id):
            failures.setdefault(key, []).append(failure)
    return status, failures, blocked


def _run_failures(
    conn: Any, group: Sequence[AccountConfig], dates: DateRange, *, dag_id: str, run_id: str
) -> Iterator[tuple[tuple[str, str], RunFailure]]:
    """This run's responses that were not loaded, oldest first, from each schema of the group's database."""
    from psycopg import sql

    from wechat_datacube.storage import read_transaction

    not_loaded = [s.value for s in NOT_LOADED_RESPONSES]
    for schema in sorted({a.schema for a in group}):
        names = [a.name for a in group if a.schema == schema]
        with read_transaction(conn):
            rows = conn.execute(
                sql.SQL(
                    "SELECT account, endpoint, begin_date, end_date, status, coalesce(error, '')"
                    " FROM {}.api_response WHERE dag_id = %s AND run_id = %s AND account = ANY(%s)"
                    " AND status = ANY(%s) AND begin_date <= %s AND end_date >= %s ORDER BY id"
                ).format(sql.Identifier(schema)),
                (dag_id, run_id, names, not_loaded, dates.end, dates.begin),
            ).fetchall()
        for account, endpoint, begin, end, state, error in rows:
            yield (account, endpoint), RunFailure(begin, end, LoadStatus(state), error)


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
    accounts, dates, endpoints = resolve_params(params, all_accounts, now=now)
    status, failures, blocked = read_run_outcome(
        accounts, endpoints, dates, dag_id=dag_id, run_id=run_id, now=now, connect=connect
    )
    return build_report(
        accounts,
        endpoints,
        dates,
        tasks=tasks,
        task_states=task_states,
        load_status=status,
        failures=failures,
        blocked_until=blocked,
    )
