"""R3: ``kill -9`` of the task process at several points of a window's life, then the retry.

The ``crash`` account's DAG has one task (``getuserreadhour``: ~190 rows a day). Each
point is reached deterministically, not by luck:

* **during the fetch** — the simulator delays the answer (``slow`` fault); the task is
  killed while its request is in flight;
* **between windows** — a three-day range: the first window is committed, the second
  request is delayed, the task is killed;
* **mid-write, before the typed rows** — the suite holds an EXCLUSIVE lock on the typed
  table: the task's transaction has inserted its ``api_response`` row and blocks on the
  DELETE of the window;
* **mid-write, after the typed rows** — the lock is on ``load_log``: the task has deleted
  the window's rows and COPYed the new ones (uncommitted) and blocks on the load_log upsert;
  done on a fresh date and on a date loaded before (the old rows must stay visible).

The blocked backend is found in ``pg_stat_activity``; its client port leads to the task
process (psutil), whose title must be ``airflow worker -- <task instance id>``; that
process gets SIGKILL. Meanwhile an observer reads the window's row count every 20 ms from
another connection: every count it ever sees must be 0 or the whole day (or, for a date
loaded before, the whole day only). Then the lock is released, Airflow retries the task,
and the stored day must equal the simulator's truth.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import psutil
import psycopg

from bench.harness import log
from reliability.session import Session
from tests.fixtures.truth import stored_rows, truth_rows

ENDPOINT = "getuserreadhour"
TABLE = "user_read_hour"  # plain literals: they are also interpolated into SQL below
WAIT = 90.0


class Observer(threading.Thread):
    """Polls per-day row counts of the crash account's table; records every distinct count seen."""

    def __init__(self, dsn: str, begin: dt.date, end: dt.date) -> None:
        super().__init__(name="crash-observer", daemon=True)
        self.dsn, self.begin, self.end = dsn, begin, end
        self.seen: dict[dt.date, set[int]] = defaultdict(set)
        #: the counts of the latest poll
        self.latest: dict[dt.date, int] = {}
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._halt.is_set():
                rows = dict(conn.execute(
                    f"SELECT ref_date, count(*) FROM wechat.{TABLE} WHERE account = 'crash' "
                    "AND ref_date BETWEEN %s AND %s GROUP BY ref_date",
                    (self.begin, self.end),
                ).fetchall())
                day = self.begin
                while day <= self.end:
                    self.seen[day].add(rows.get(day, 0))
                    self.latest[day] = rows.get(day, 0)
                    day += dt.timedelta(days=1)
                self.samples += 1
                time.sleep(0.02)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


@dataclass
class Point:
    name: str
    begin: dt.date
    end: dt.date
    lock: str | None = None  # table locked to hold the task mid-write
    delay_after: int | None = None  # delay the (n+1)-th data request instead
    preload: bool = False
    killed: dict[str, Any] = field(default_factory=dict)


def _worker_pid_for_port(port: int) -> int | None:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.pid and conn.pid != os.getpid():
            return conn.pid
    return None


def _worker_pid_talking_to(port: int) -> int | None:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.raddr and conn.raddr.port == port and conn.pid and conn.pid != os.getpid() \
                and conn.status == psutil.CONN_ESTABLISHED:
            return conn.pid
    return None


def _title(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return "?"


def _wait_for(predicate: Any, what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def _blocked_backend(admin: psycopg.Connection[Any], dbname: str) -> tuple[int, str] | None:
    row = admin.execute(
        "SELECT client_port, query FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' "
        "AND state = 'active'",
        (dbname,),
    ).fetchone()
    return (row[0], row[1]) if row else None


def _run_day(s: Session, begin: dt.date, end: dt.date) -> dict[str, Any]:
    dag_id = s.accounts["crash"].dag_id
    conf = {"begin_date": begin.isoformat(), "end_date": end.isoformat(), "endpoints": [ENDPOINT]}
    return s.cluster.trigger(dag_id, conf)


def kill_at(s: Session, point: Point, admin: psycopg.Connection[Any]) -> dict[str, Any]:
    sim = s.sims["crash"]
    dsn = s.dsn_of("crash")
    dbname = s.dbname_of("crash")
    dag_id = s.accounts["crash"].dag_id
    if point.preload:
        pre = s.cluster.wait_run(dag_id, _run_day(s, point.begin, point.end)["dag_run_id"], timeout=300)
        assert pre["state"] == "success", pre
    full = {
        day: len(truth_rows(sim, s.accounts["crash"].appid, ENDPOINT, day, day, account="crash"))
        for day in (point.begin + dt.timedelta(days=i) for i in range((point.end - point.begin).days + 1))
    }
    observer = Observer(dsn, point.begin, point.end)
    observer.start()
    locker = psycopg.connect(dsn)
    try:
        if point.lock:
            locker.execute(f"LOCK TABLE wechat.{point.lock} IN EXCLUSIVE MODE")
        else:
            sim.state.set_faults([{"kind": "slow", "delay": 60, "path": f"/datacube/{ENDPOINT}", "count": 1,
                                   "after": point.delay_after or 0}])
        run = _run_day(s, point.begin, point.end)
        if point.lock:
            port, query = _wait_for(lambda: _blocked_backend(admin, dbname), "the task to block on the lock")
            pid = _wait_for(lambda: _worker_pid_for_port(port), "the blocked backend's client process")
            where = " ".join(query.split())[:60]
        else:
            _wait_for(lambda: any(r["fired"] for r in sim.state.faults()), "the delayed request")
            pid = _wait_for(lambda: _worker_pid_talking_to(sim.port), "the task process talking to the simulator")
            where = "HTTP request in flight"
        title = _title(pid)
        time.sleep(0.1)  # let the observer poll the state the task is stuck in
        visible_at_kill = dict(observer.latest)
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        time.sleep(1.0)
        locker.rollback()  # releases the lock; the dead task's backend then finds its client gone
        sim.state.clear_faults()
        final = s.cluster.wait_run(dag_id, run["dag_run_id"], timeout=300)
    finally:
        locker.close()
        sim.state.clear_faults()
    observer.stop()
    tis = s.cluster.task_instances(dag_id, final["dag_run_id"])
    ti = next(t for t in tis if t["task_id"] == ENDPOINT)
    stored_ok = all(
        stored_rows(dsn, ENDPOINT, d, d, account="crash") == truth_rows(sim, s.accounts["crash"].appid, ENDPOINT, d, d,
                                                                        account="crash")
        for d in full
    )
    allowed = {d: ({n} if point.preload else {0, n}) for d, n in full.items()}
    partial = {d.isoformat(): sorted(observer.seen[d] - allowed[d]) for d in full if observer.seen[d] - allowed[d]}
    result = {
        "point": point.name,
        "dates": f"{point.begin}..{point.end}",
        "blocked_at": where,
        "process": title.split(" -- ")[0] if title else "?",
        "is_task_process": title.startswith("airflow worker -- "),
        "observations": observer.samples,
        "counts_seen": {d.isoformat(): sorted(v) for d, v in observer.seen.items()},
        "full_day": full,
        "visible_at_kill": {d.isoformat(): n for d, n in visible_at_kill.items()},
        "partial_seen": partial,
        "run_state": final["state"],
        "tries": ti["try_number"],
        "recovered_in": time.monotonic() - killed_at,
        "final_equals_truth": stored_ok,
    }
    log(f"R3 {point.name}: killed pid {pid} ({where}); run {final['state']} after {ti['try_number']} tries; "
        f"partial {partial or 'none'}")
    return result


def run_r3(s: Session) -> list[dict[str, Any]]:
    base = s.last - dt.timedelta(days=40)
    points = [
        Point("during the fetch (request in flight)", base, base),
        Point("between windows (day 1 committed, day 2 in flight)", base + dt.timedelta(days=2),
              base + dt.timedelta(days=4), delay_after=1),
        Point("mid-write: api_response inserted, blocked before the typed rows", base + dt.timedelta(days=6),
              base + dt.timedelta(days=6), lock=TABLE),
        Point("mid-write: typed rows replaced, blocked before load_log / commit", base + dt.timedelta(days=8),
              base + dt.timedelta(days=8), lock="load_log"),
        Point("mid-write over a loaded day: typed rows replaced, not committed", base + dt.timedelta(days=10),
              base + dt.timedelta(days=10), lock="load_log", preload=True),
    ]
    from tests.fixtures.postgres import ADMIN_DSN
    from wechat_datacube.storage.migrations import migrate

    with psycopg.connect(s.dsn_of("crash")) as conn:  # the observer reads the tables before any task ran
        migrate(conn, "wechat")
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        return [kill_at(s, p, admin) for p in points]
