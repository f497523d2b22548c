"""What the local stack reports: the catchup window, its progress, and rows per table.

The daily DAG's run at D+1 10:00 Beijing covers business day D, so "the last 14 days"
are the 14 business days up to the newest one whose run time has passed. Progress is
read from the REST API (scheduled runs by business day); row counts straight from the
data database, per typed table of the endpoints the demo account is configured for, with
the load log's view of which dates are done. A week or month table is judged by the
periods that *ended* in the catchup (labelled by their Monday / 1st): those are what its
daily runs fetch (:mod:`wechat_datacube.periods`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from wechat_datacube.dates import BEIJING
from wechat_datacube.endpoints import get_endpoint
from wechat_datacube.load_status import DONE
from wechat_datacube.periods import earliest_label, labels_ending_between

#: Beijing hour of the daily run (dag_factory.DAILY_CRON = "0 10 * * *"); not imported, as
#: dag_factory imports Airflow and the launcher process must not.
DAILY_RUN_HOUR = 10


def last_scheduled_day(now: dt.datetime | None = None) -> dt.date:
    """The newest business day whose daily run time (D+1 10:00 Beijing) has passed at ``now``."""
    local = (now or dt.datetime.now(dt.UTC)).astimezone(BEIJING)
    return local.date() - dt.timedelta(days=1 if local.hour >= DAILY_RUN_HOUR else 2)


def catchup_window(days: int, now: dt.datetime | None = None) -> tuple[dt.date, dt.date]:
    """First and last business day of a catchup of ``days`` days ending at the last scheduled day."""
    last = last_scheduled_day(now)
    return last - dt.timedelta(days=days - 1), last


def business_day(run: dict[str, Any]) -> dt.date | None:
    """The Beijing business day a scheduled run covers (its data interval's start)."""
    start = run.get("data_interval_start")
    if not start:
        return None
    return dt.datetime.fromisoformat(start).astimezone(BEIJING).date()


@dataclass
class CatchupStatus:
    """Scheduled runs of the expected business days, by state."""

    first: dt.date
    last: dt.date
    runs: dict[dt.date, dict[str, Any]] = field(default_factory=dict)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def states(self) -> Counter[str]:
        return Counter(run["state"] for run in self.runs.values())

    @property
    def succeeded(self) -> int:
        return self.states()["success"]

    def failed_runs(self) -> list[dict[str, Any]]:
        return [run for _, run in sorted(self.runs.items()) if run["state"] == "failed"]

    @property
    def complete(self) -> bool:
        return self.succeeded == self.days

    def line(self) -> str:
        states = self.states()
        others = ", ".join(f"{n} {s}" for s, n in sorted(states.items()) if s != "success")
        waiting = self.days - len(self.runs)
        parts = [f"{states['success']} success"] + ([others] if others else [])
        if waiting:
            parts.append(f"{waiting} not created yet")
        return f"catchup {self.first}..{self.last}: {self.succeeded}/{self.days} days done ({', '.join(parts)})"


def catchup_status(dag_runs: list[dict[str, Any]], first: dt.date, last: dt.date) -> CatchupStatus:
    """Pick the scheduled runs covering ``first..last`` out of a DAG's runs (REST API dicts)."""
    status = CatchupStatus(first, last)
    for run in dag_runs:
        day = business_day(run)
        if run.get("run_type") == "scheduled" and day is not None and first <= day <= last:
            status.runs[day] = run
    return status


@dataclass(frozen=True)
class TableCount:
    """One typed table: rows of the account, and of the dates a catchup stores, those with rows and those done."""

    table: str
    endpoint: str
    rows: int
    days_with_rows: int
    days_loaded: int
    #: Dates the catchup stores: each business day, or the labels of the weeks / months that ended in it.
    expected: int


def expected_dates(endpoint: str, first: dt.date, last: dt.date) -> list[dt.date]:
    """The ref_dates the daily runs of business days ``first..last`` store for ``endpoint``."""
    spec = get_endpoint(endpoint)
    return [d for d in labels_ending_between(first, last, spec.period) if d >= spec.first_date]


def table_counts(
    conn_params: dict[str, Any],
    account: str,
    first: dt.date,
    last: dt.date,
    *,
    endpoints: tuple[str, ...],
    schema: str = "wechat",
) -> list[TableCount]:
    """Per endpoint: all rows of ``account``, and of its :func:`expected_dates` the ones with rows
    and the ones the load log calls done (:data:`~wechat_datacube.load_status.DONE`). Zeros for a table not created yet."""
    out: list[TableCount] = []
    with psycopg.connect(**conn_params, autocommit=True) as conn:

        def exists(table: str) -> bool:
            return bool(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.{table}",)).fetchone()[0])

        done: set[tuple[str, dt.date]] = set()
        if exists("load_log"):
            done = set(conn.execute(
                sql.SQL(
                    "SELECT endpoint, ref_date FROM {}.load_log WHERE account = %s AND ref_date BETWEEN %s AND %s "
                    "AND status = ANY(%s)"
                ).format(sql.Identifier(schema)),
                (account, earliest_label(first), last, sorted(DONE)),
            ).fetchall())  # fmt: skip
        for name in endpoints:
            spec = get_endpoint(name)
            wanted = expected_dates(name, first, last)
            total = with_rows = 0
            if exists(spec.table):  # not before the first load (nor, for a new family, before its migration)
                total, with_rows = conn.execute(
                    sql.SQL(
                        "SELECT count(*), count(DISTINCT ref_date) FILTER (WHERE ref_date = ANY(%s)) "
                        "FROM {} WHERE account = %s"
                    ).format(sql.Identifier(schema, spec.table)),
                    (wanted, account),
                ).fetchone()
            loaded = sum((name, day) in done for day in wanted)
            out.append(TableCount(f"{schema}.{spec.table}", name, total, with_rows, loaded, len(wanted)))
    return out


def format_counts(counts: list[TableCount], before: list[TableCount] | None = None) -> str:
    """A fixed-width table; ``before`` (counts taken earlier) adds a column of rows added since."""
    previous = {c.table: c.rows for c in before or []}
    table_width = max([28, *(len(c.table) for c in counts)])
    endpoint_width = max([18, *(len(c.endpoint) for c in counts)])
    new_header = f" {'new':>7}" if before is not None else ""
    header = (f"{'table':<{table_width}} {'endpoint':<{endpoint_width}} {'rows':>8}{new_header} "
              f"{'dates with rows':>16} {'dates loaded':>13}")  # fmt: skip
    lines = [header, "-" * len(header)]
    for c in counts:
        new = f" {c.rows - previous.get(c.table, 0):>+7}" if before is not None else ""
        lines.append(
            f"{c.table:<{table_width}} {c.endpoint:<{endpoint_width}} {c.rows:>8}{new} "
            f"{f'{c.days_with_rows}/{c.expected}':>16} {f'{c.days_loaded}/{c.expected}':>13}"
        )
    if any(get_endpoint(c.endpoint).period != "day" for c in counts):
        lines.append("(week / month tables: the dates are the Mondays / 1sts of the periods that ended in the catchup)")
    return "\n".join(lines)
