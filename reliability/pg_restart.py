"""R8: the PostgreSQL server that holds the data is restarted twice in the middle of a catchup.

The ``pgrestart`` account's daily DAG catches up :data:`~reliability.session.R8_DAYS`
days (6 legacy endpoints) under the scheduler into a database on the suite's own server
(:mod:`reliability.private_pg`; the shared server at 127.0.0.1:5432 and the Airflow
metadata DB on it are never touched). When part of the runs have finished, the server is
stopped and, after :data:`DOWN_SECONDS`, started again — twice, reached deterministically:

1. **clean restart** (``pg_ctl stop -m fast``: every backend is terminated, a shutdown
   checkpoint is written) while tasks are in flight *holding their database connection*:
   the simulator delays every data request by :data:`HOLD_DELAY` s, and the stop waits
   until task backends are connected;
2. **crash** (``pg_ctl stop -m immediate``: no checkpoint, WAL replay at the next start)
   while a task is *inside its write transaction*: the suite holds an EXCLUSIVE lock on
   ``user_read_hour`` so a task has inserted its ``api_response`` row and blocks on the
   DELETE of its window; the crash cuts that transaction.

Meanwhile an observer on another connection reads the row count of every (table, day)
every 100 ms (reconnecting while the server is down; :mod:`reliability.windows`): a count
that is neither 0 nor the whole day is a partial window. Expected: the tasks that met the
outage fail their try and Airflow retries them, every run ends ``success``, the tables
equal the simulator's truth and ``load_log`` says ``loaded``/``empty`` for every
(endpoint, day).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg

from bench.harness import log
from reliability.catchup import run_figures, tables_vs_truth, wait_for
from reliability.session import R8_DAYS, Session
from reliability.windows import WindowObserver, day_counts, load_log_matches, partial_windows

ACCOUNT = "pgrestart"
#: How long the server stays down each time (between pg_ctl stop returning and pg_ctl start).
DOWN_SECONDS = 10.0
#: Delay of every data request while restart 1 is being set up (tasks then sit in their fetch).
HOLD_DELAY = 4.0
LOCK_TABLE = "user_read_hour"  # a literal: it is interpolated into SQL below
#: (mode, finished runs before the stop, how the in-flight work is pinned)
RESTARTS: tuple[tuple[str, int, str], ...] = (("fast", 3, "hold"), ("immediate", 6, "lock"))
WAIT = 120.0

#: What the failed tries' logs say, reduced to a few causes.
_CAUSES = (
    ("Connection refused", "connection refused (server down)"),
    ("terminating connection due to administrator command", "backend terminated by the shutdown"),
    ("AdminShutdown", "backend terminated by the shutdown"),
    ("server closed the connection unexpectedly", "connection lost (server gone)"),
    ("consuming input failed", "connection lost (server gone)"),
    ("the database system is shutting down", "server shutting down"),
    # starting up / in recovery mode / not (yet) accepting connections
    ("the database system is", "server starting up or in crash recovery"),
    ("SSL SYSCALL error", "connection lost (server gone)"),
)


def _finished_runs(s: Session, dag_id: str) -> tuple[int, int]:
    runs = [r for r in s.cluster.dag_runs(dag_id) if r["run_type"] == "scheduled"]
    return sum(r["state"] in ("success", "failed") for r in runs), len(runs)


def _running_tis(s: Session, dag_id: str) -> int:
    return sum(t["state"] == "running" for t in s.cluster.all_task_instances(dag_id, "~"))


def _wait_for(predicate: Callable[[], Any], what: str, timeout: float = WAIT, poll: float = 0.2) -> Any:
    return wait_for(predicate, f"R8: {what}", timeout=timeout, poll=poll)


def _recovery_lines(logfile: Any, offset: int) -> list[str]:
    text = logfile.read_text(errors="replace")[offset:]
    keep = ("was interrupted", "was shut down at", "not properly shut down", "automatic recovery", "redo starts",
            "redo done", "ready to accept")
    lines = [line.split(" LOG:  ", 1)[-1].split(" system usage:")[0].strip() for line in text.splitlines()
             if any(k in line for k in keep)]
    return [re.sub(r" at \d{4}-\d\d-\d\d [\d:]+ UTC", "", line) for line in lines]


def restart(s: Session, mode: str, after_runs: int, pin: str) -> dict[str, Any]:
    """Wait until ``after_runs`` runs finished, pin work in flight, stop the server, start it again."""
    pg = s.private_pg
    dag_id = s.accounts[ACCOUNT].dag_id
    dbname = s.dbname_of(ACCOUNT)
    sim = s.sims[ACCOUNT]
    _wait_for(lambda: _finished_runs(s, dag_id)[0] >= after_runs, f"{after_runs} finished runs", timeout=600,
              poll=0.5)
    locker: psycopg.Connection[Any] | None = None
    pinned = ""
    try:
        if pin == "hold":
            sim.state.set_faults([{"kind": "slow", "delay": HOLD_DELAY, "path": "/datacube/"}])
            _wait_for(lambda: pg.backends(dbname), "task backends on the data database")
            time.sleep(0.5)  # let the others that were about to connect do so
            pinned = f"{len(pg.backends(dbname))} task connection(s) open, their WeChat requests delayed {HOLD_DELAY:.0f} s"
        else:
            locker = psycopg.connect(s.dsn_of(ACCOUNT), application_name="suite-r8-locker")
            locker.execute(f"LOCK TABLE wechat.{LOCK_TABLE} IN EXCLUSIVE MODE")
            blocked = _wait_for(lambda: [b for b in pg.backends(dbname) if b["wait"] == "Lock"],
                                "a task blocked inside its write transaction")
            pinned = "a task inside its write transaction, blocked at: " + " ".join(blocked[0]["query"].split())[:60]
        backends = pg.backends(dbname)
        finished, _ = _finished_runs(s, dag_id)
        running = _running_tis(s, dag_id)
        log_offset = pg.logfile.stat().st_size
        t0 = time.monotonic()
        stop_seconds = pg.stop(mode)
        if locker is not None:
            locker.close()
            locker = None
        sim.state.clear_faults()
        time.sleep(DOWN_SECONDS)
        start_seconds = pg.start()
        down = time.monotonic() - t0
    finally:
        sim.state.clear_faults()
        if locker is not None:
            locker.close()
        if not pg.running:
            pg.start()
    result = {
        "mode": mode,
        "pinned": pinned,
        "runs_finished_at_stop": f"{finished} of {R8_DAYS}",
        "running_tis": running,
        "backends": len(backends),
        "backend_states": dict(Counter(b["wait"] or b["state"] or "?" for b in backends)),
        "stop_seconds": stop_seconds,
        "start_seconds": start_seconds,
        "down_seconds": down,
        "recovery": _recovery_lines(pg.logfile, log_offset),
    }
    log(f"R8 restart ({mode}): {result['backends']} backends cut, down {down:.1f} s, "
        f"start took {start_seconds:.2f} s")
    return result


def _failure_causes(s: Session, dag_id: str, tis: list[dict[str, Any]], limit: int = 40) -> Counter[str]:
    """Why the failed tries failed, from their task logs (first ``limit`` failed tries)."""
    causes: Counter[str] = Counter()
    fetched = 0
    for ti in sorted(tis, key=lambda t: (t["dag_run_id"], t["task_id"])):
        for attempt in range(1, (ti.get("try_number") or 1)):
            if fetched >= limit:
                return causes
            fetched += 1
            try:
                text = s.cluster.task_log(dag_id, ti["dag_run_id"], ti["task_id"], attempt)
            except Exception:  # noqa: BLE001 - a missing log is reported as such
                causes["(log not readable)"] += 1
                continue
            match = re.search(r'"exc_type":\s*"([^"]+)",\s*"exc_value":\s*"((?:[^"\\]|\\.){0,300})', text)
            if not match:
                causes["(no exception in the log)"] += 1
                continue
            exc_type, exc_value = match.groups()
            found = [label for needle, label in _CAUSES if needle in exc_value]
            causes[f"{exc_type}: {found[0]}" if found else f"{exc_type}: {exc_value[:100]}"] += 1
    return causes


def run_r8(s: Session) -> dict[str, Any]:
    account, sim, dsn = s.phase_account(ACCOUNT)
    begin = account.start_date
    end = begin + dt.timedelta(days=R8_DAYS - 1)
    full = day_counts(sim, account.appid, ACCOUNT, begin, end)
    observer = WindowObserver(dsn, [ACCOUNT], begin, end, application_name="suite-r8-observer")
    observer.start()
    started = time.monotonic()
    s.cluster.set_paused(account.dag_id, False)
    try:
        restarts = [restart(s, mode, after, pin) for mode, after, pin in RESTARTS]
        runs = s.cluster.wait_for_runs(account.dag_id, count=R8_DAYS, run_type="scheduled", timeout=900, poll=1.0)
    finally:
        observer.stop()
    seconds = time.monotonic() - started
    tis = s.cluster.all_task_instances(account.dag_id, "~")
    retried = [t for t in tis if (t.get("try_number") or 1) > 1]
    partial = partial_windows(observer.seen, full)
    load_log_ok, load_log_statuses = load_log_matches(dsn, ACCOUNT, begin, end, full)
    with psycopg.connect(dsn) as conn:
        responses = dict(conn.execute(
            "SELECT status, count(*) FROM wechat.api_response WHERE account = %s GROUP BY status", (ACCOUNT,)
        ).fetchall())
    truth = tables_vs_truth(dsn, sim, account.appid, begin, end, account=ACCOUNT)
    result = {
        "begin": begin,
        "end": end,
        "server": f"PostgreSQL {s.private_pg.version()} (pgserver binaries), port {s.private_pg.port}",
        "restarts": restarts,
        **run_figures(runs, tis, seconds),
        "max_try": max((t.get("try_number") or 1) for t in tis),
        "failure_causes": _failure_causes(s, account.dag_id, retried),
        "observer_samples": observer.samples,
        "observer_failed_polls": observer.failed_polls,
        "observer_longest_gap": observer.longest_gap,
        "partial_seen": partial,
        **truth,
        "rows_stored": sum(t["stored"] for t in truth["tables"]),
        "load_log_ok": load_log_ok,
        "load_log_statuses": load_log_statuses,
        "api_responses": responses,
        "data_requests": sum(account.data_calls().values()),
    }
    log(f"R8: {dict(result['run_states'])} in {seconds:.0f} s, {result['airflow_retries']} retries, "
        f"truth {result['truth_equal']}, partial {partial or 'none'}")
    return result
