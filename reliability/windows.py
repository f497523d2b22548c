"""Is any window ever seen half-written? The check of the phases that cut tasks mid-write (R8, R11).

A window is one (account, table, day). Its full row count comes from the simulator's
truth (:func:`day_counts`); an observer on a connection of its own reads every window's
count every 100 ms while the phase runs (:class:`WindowObserver`, reconnecting when the
server goes away, as in R8). A count that is neither 0 nor the full day is a partial
window (:func:`partial_windows`): the reader saw a write that was cut half-way. At the
end, ``load_log`` must say ``loaded``/``empty`` with the true row count for every
(endpoint, day) (:func:`load_log_matches`).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import psycopg
from wechat_datacube_dev.simulator import SimulatorServer

from reliability.catchup import read_load_log
from tests.fixtures.truth import truth_dicts
from wechat_datacube.endpoints import LEGACY, get_endpoint

#: (account, table, day)
Window = tuple[str, str, dt.date]


def _days(begin: dt.date, end: dt.date) -> list[dt.date]:
    return [begin + dt.timedelta(days=i) for i in range((end - begin).days + 1)]


def day_counts(sim: SimulatorServer, appid: str, account: str, begin: dt.date, end: dt.date) -> dict[Window, int]:
    """The full row count of every legacy window of ``account`` in [begin, end], from the simulator's truth."""
    full: dict[Window, int] = {}
    for endpoint in LEGACY:
        spec = get_endpoint(endpoint)
        per_day = Counter(r[spec.date_column] for r in truth_dicts(sim, appid, endpoint, begin, end, account=account))
        for day in _days(begin, end):
            full[(account, spec.table, day)] = per_day.get(day, 0)
    return full


class WindowObserver(threading.Thread):
    """Per-window row counts of ``accounts`` every 100 ms from its own connection; survives outages.

    ``application_name`` lets a phase tell this connection from the tasks' (R8 counts backends).
    """

    def __init__(self, dsn: str, accounts: Sequence[str], begin: dt.date, end: dt.date, application_name: str) -> None:
        super().__init__(name=application_name, daemon=True)
        self.dsn, self.accounts, self.begin, self.end = dsn, list(accounts), begin, end
        self.application_name = application_name
        self.seen: dict[Window, set[int]] = defaultdict(set)
        self.samples = 0
        self.failed_polls = 0
        self.longest_gap = 0.0
        self._halt = threading.Event()

    def _poll(self, conn: psycopg.Connection[Any]) -> None:
        for endpoint in LEGACY:
            table = get_endpoint(endpoint).table
            try:
                rows = {(a, d): n for a, d, n in conn.execute(
                    f"SELECT account, ref_date, count(*) FROM wechat.{table} WHERE account = ANY(%s) "
                    "AND ref_date BETWEEN %s AND %s GROUP BY account, ref_date",
                    (self.accounts, self.begin, self.end),
                ).fetchall()}
            except psycopg.errors.UndefinedTable:  # before the first task created the schema
                rows = {}
            for account in self.accounts:
                for day in _days(self.begin, self.end):
                    self.seen[(account, table, day)].add(rows.get((account, day), 0))

    def run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        last_ok = time.monotonic()
        while not self._halt.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=2,
                                           application_name=self.application_name)
                self._poll(conn)
                now = time.monotonic()
                self.longest_gap = max(self.longest_gap, now - last_ok)
                last_ok = now
                self.samples += 1
            except psycopg.Error:
                self.failed_polls += 1
                if conn is not None:
                    conn.close()
                conn = None
            time.sleep(0.1)
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


def partial_windows(seen: dict[Window, set[int]], full: dict[Window, int]) -> dict[str, list[int]]:
    """``"account table day"`` -> the counts seen that were neither 0 nor the full day; {} if none."""
    return {f"{account} {table} {day}": sorted(counts - {0, full[(account, table, day)]})
            for (account, table, day), counts in seen.items() if counts - {0, full[(account, table, day)]}}


def load_log_matches(
    dsn: str, account: str, begin: dt.date, end: dt.date, full: dict[Window, int]
) -> tuple[bool, Counter[str]]:
    """Whether ``load_log`` has every (endpoint, day), ``loaded``/``empty`` with the true count; and its statuses."""
    load_log = read_load_log(dsn, account, begin, end)
    expected = {(e, d) for e in LEGACY for d in _days(begin, end)}
    ok = set(load_log) == expected and all(
        st in ("loaded", "empty") and n == full[(account, get_endpoint(e).table, d)] for (e, d), (st, n) in load_log.items()
    )
    return ok, Counter(st for st, _ in load_log.values())
