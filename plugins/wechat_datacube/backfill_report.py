"""What became of a bulk backfill run: the ``report`` task's rules and reads.

The same split as the planner's (:mod:`wechat_datacube.backfill_plan`): :func:`build_report`
is pure (windows loaded / kept / failed / skipped per account and endpoint, each failure's
errcode with its meaning and what to do), :func:`read_run_outcome` reads Postgres and
:func:`report_from_params` is the entry point the DAG's ``report`` task calls.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wechat_datacube.accounts import AccountConfig
from wechat_datacube.backfill_plan import (
    connections_by_database,
    endpoint_windows,
    resolve_accounts,
    resolve_dates,
    resolve_endpoints,
)
from wechat_datacube.dates import BEIJING, beijing_yesterday, iter_days, parse_date
from wechat_datacube.errors import ErrorClass, classify, describe_errcode

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
    for conn, group in connections_by_database(accounts, connect):
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
