"""What the local stack reports: the catchup window, its progress, and rows per table.

The daily DAG's run at D+1 10:00 Beijing covers business day D, so "the last 14 days"
are the 14 business days up to the newest one whose run time has passed. Progress is
read from the REST API (scheduled runs by business day); row counts straight from the
data database, per typed table, with the load log's view of which days are done.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from wechat_datacube.dates import BEIJING
from wechat_datacube.endpoints import LEGACY, get_endpoint
from wechat_datacube.load_status import DONE

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
    """One typed table: rows of the account, days with rows and days done in the window."""

    table: str
    endpoint: str
    rows: int
    days_with_rows: int
    days_loaded: int


def table_counts(
    conn_params: dict[str, Any],
    account: str,
    first: dt.date,
    last: dt.date,
    *,
    schema: str = "wechat",
    endpoints: tuple[str, ...] = LEGACY,
) -> list[TableCount]:
    """Per endpoint: all rows of ``account``, and within ``first..last`` the days with rows and
    the days the load log calls done (:data:`~wechat_datacube.load_status.DONE`). Zeros before the first load."""
    out: list[TableCount] = []
    with psycopg.connect(**conn_params, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.load_log",)).fetchone()[0]
        loaded: dict[str, int] = {}
        if exists:
            rows = conn.execute(
                sql.SQL(
                    "SELECT endpoint, count(*) FROM {}.load_log WHERE account = %s AND ref_date BETWEEN %s AND %s "
                    "AND status = ANY(%s) GROUP BY endpoint"
                ).format(sql.Identifier(schema)),
                (account, first, last, sorted(DONE)),
            ).fetchall()
            loaded = dict(rows)
        for name in endpoints:
            spec = get_endpoint(name)
            total = days = 0
            if exists:
                total, days = conn.execute(
                    sql.SQL(
                        "SELECT count(*), count(DISTINCT ref_date) FILTER (WHERE ref_date BETWEEN %s AND %s) "
                        "FROM {} WHERE account = %s"
                    ).format(sql.Identifier(schema, spec.table)),
                    (first, last, account),
                ).fetchone()
            out.append(TableCount(f"{schema}.{spec.table}", name, total, days, loaded.get(name, 0)))
    return out


def format_counts(counts: list[TableCount], days: int, before: list[TableCount] | None = None) -> str:
    """A fixed-width table; ``before`` (counts taken earlier) adds a column of rows added since."""
    previous = {c.table: c.rows for c in before or []}
    new_header = f" {'new':>7}" if before is not None else ""
    header = f"{'table':<28} {'endpoint':<18} {'rows':>8}{new_header} {'days with rows':>15} {'days loaded':>12}"
    lines = [header, "-" * len(header)]
    for c in counts:
        new = f" {c.rows - previous.get(c.table, 0):>+7}" if before is not None else ""
        lines.append(
            f"{c.table:<28} {c.endpoint:<18} {c.rows:>8}{new} "
            f"{f'{c.days_with_rows}/{days}':>15} {f'{c.days_loaded}/{days}':>12}"
        )
    return "\n".join(lines)
