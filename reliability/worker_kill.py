"""R11: a Celery worker is SIGKILLed while it runs tasks mid-write (issue 16's "R8").

The session's cluster runs LocalExecutor, so this phase starts a Celery cluster of its
own in the suite's :class:`~bench.harness.Lab`: CeleryExecutor on the lab's Redis broker
(a private queue), two workers ``celery-worker-1`` and ``celery-worker-2`` of 2 slots
each, the metadata DB as result backend. Two accounts of its own (``wkill1``, ``wkill2``,
one simulator, one data database) catch up :data:`DAYS` days each (6 legacy endpoints).

The kill is reached deterministically, not by luck: before the catchup starts, the suite
holds an EXCLUSIVE lock on ``user_read_hour``, so every task of that endpoint inserts its
``api_response`` row and then blocks on the DELETE of its window, inside its write
transaction. Once ``celery-worker-1`` has all its slots running and each of them is such a
blocked task (their backends wait on the lock; the backends' client ports belong to
processes under that worker), the worker's whole process tree is frozen (SIGSTOP) and
killed (SIGKILL): the worker's own process group *and* the task-runner processes, which
the Airflow 3 task supervisor puts into process groups of their own — a machine that
dies takes those too. One second later the lock is released, so the other worker
carries on.

The scheduler notices the dead worker's task instances by their missing heartbeats
(``[scheduler] task_instance_heartbeat_timeout`` set to :data:`HEARTBEAT_TIMEOUT` s here;
default 300) and retries them; meanwhile only ``celery-worker-2`` consumes the queue.
``celery-worker-1`` is started again once its task instances were taken over and at
least :data:`MIN_DOWN_SECONDS` after the kill. An observer reads every window's row count
every 100 ms (:mod:`reliability.windows`).

Expected: every run ends ``success``; each task instance that was running on the killed
worker has a later try (try_number > its killed try) that succeeded (on the other worker,
or on the restarted one: the tries' hostnames say which); the tables equal the
simulator's truth; no window is ever seen partial; ``load_log`` complete; one token call
per account, shared by both workers through the Postgres token cache.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import psutil
import psycopg
from psycopg.conninfo import conninfo_to_dict
from wechat_datacube_dev.localrun.airflow_cluster import CelerySetup
from wechat_datacube_dev.localrun.redis_broker import private_queue

from bench.harness import (
    SHORT_RETRY_DELAY_SECONDS,
    Account,
    Cluster,
    accounts_env,
    log,
    scratch_dag_folder,
    secrets_for,
    write_accounts_file,
)
from reliability.catchup import run_figures, tables_vs_truth, wait_for
from reliability.session import Session
from reliability.windows import WindowObserver, day_counts, load_log_matches, partial_windows
from tests.fixtures.postgres import ADMIN_DSN
from wechat_datacube.dag_settings import RETRY_DELAY_ENV
from wechat_datacube.storage.migrations import migrate

ACCOUNTS = ("wkill1", "wkill2")
PG_CONN_ID = "wkill_pg"
#: Days each account catches up.
DAYS = 5
WORKERS = 2
CONCURRENCY = 2
#: Seconds without a heartbeat after which the scheduler fails (and retries) a running task instance.
HEARTBEAT_TIMEOUT = 20
#: How often the scheduler looks for such task instances (default 10 s).
HEARTBEAT_CHECK_INTERVAL = 5
#: The killed worker stays down at least this long (and until its task instances were taken over).
MIN_DOWN_SECONDS = 30.0
LOCK_TABLE = "user_read_hour"  # a literal: it is interpolated into SQL below
VICTIM = "celery-worker-1"
WAIT = 300.0


def _wait_for(predicate: Callable[[], Any], what: str, timeout: float = WAIT, poll: float = 0.5) -> Any:
    return wait_for(predicate, f"R11: {what}", timeout=timeout, poll=poll)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _at(stamp: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(stamp) if stamp else None


def _start_cluster(s: Session) -> tuple[Cluster, list[Account], str, str]:
    """The phase's Celery cluster, accounts and data database; registered on the session for R6's scan."""
    lab = s.lab
    last = s.last
    begin = last - dt.timedelta(days=DAYS - 1)
    appids = {name: f"wx_rel_{name}" for name in ACCOUNTS}
    secrets = secrets_for(appids.values())
    sim = lab.simulator({appids[n]: secrets[appids[n]] for n in ACCOUNTS})
    dsn = lab.database("wdc_rel_wkill")
    accounts = [Account(name, appids[name], secrets[appids[name]], sim, PG_CONN_ID, begin,
                        options={"ready_deadline_hour": 0}) for name in ACCOUNTS]
    run_dir = s.run_dir / "r11"
    run_dir.mkdir(exist_ok=True)
    env = accounts_env(accounts, write_accounts_file(run_dir / "accounts.yaml", accounts), {PG_CONN_ID: dsn})
    env[RETRY_DELAY_ENV] = SHORT_RETRY_DELAY_SECONDS
    env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] = str(HEARTBEAT_TIMEOUT)
    env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL"] = str(HEARTBEAT_CHECK_INTERVAL)
    broker = lab.redis_broker()
    celery = CelerySetup(broker_url=broker.url, queue=private_queue(), workers=WORKERS, concurrency=CONCURRENCY)
    cluster = lab.cluster(env, dag_folder=scratch_dag_folder(), celery=celery)
    for account in accounts:
        cluster.wait_for_dag(account.dag_id)
        s.accounts[account.name] = account
        s.secrets[account.name] = account.secret
    s.sims["wkill"] = sim
    s.dsns[PG_CONN_ID] = dsn
    s.more_clusters.append(cluster)
    log(f"R11 Celery cluster up: {cluster.base_url}, broker {broker.description}, queue {celery.queue}")
    return cluster, accounts, dsn, broker.description


def _all_tis(cluster: Cluster, accounts: list[Account]) -> list[dict[str, Any]]:
    return [ti for a in accounts for ti in cluster.all_task_instances(a.dag_id, "~")]


def _tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants (those still alive)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _blocked_ports(admin: psycopg.Connection[Any], dbname: str) -> set[int]:
    """Client ports of the backends of ``dbname`` that wait on a lock (the pinned tasks)."""
    return {port for (port,) in admin.execute(
        "SELECT client_port FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' "
        "AND state = 'active'", (dbname,),
    ).fetchall()}


def _victim_pinned(cluster: Cluster, accounts: list[Account], admin: psycopg.Connection[Any],
                   dbname: str) -> dict[str, Any] | None:
    """The victim's running task instances once all its slots hold a task blocked inside its write; else None."""
    running = [ti for ti in _all_tis(cluster, accounts) if ti["state"] == "running"]
    mine = [ti for ti in running if ti["hostname"] == VICTIM]
    if len(mine) < CONCURRENCY:
        return None
    blocked = _blocked_ports(admin, dbname)
    tree = _tree(cluster.procs[VICTIM].pid)
    pinned = set()
    for proc in tree:
        with contextlib.suppress(psutil.Error):
            pinned |= {c.laddr.port for c in proc.net_connections(kind="tcp") if c.laddr and c.laddr.port in blocked}
    if len(pinned) < CONCURRENCY:
        return None
    return {"tis": mine, "running_elsewhere": [ti for ti in running if ti["hostname"] != VICTIM],
            "blocked_backends": len(blocked), "blocked_of_victim": len(pinned)}


def _kill_tree(cluster: Cluster, name: str) -> dict[str, Any]:
    """Kill the worker's whole process tree (``AirflowCluster.kill_component``), noting when."""
    killed_at = _utcnow()
    started = time.monotonic()
    figures = cluster.kill_component(name)
    # Every group but the worker's own is a task runner's (the supervisor starts each in one of its own).
    return {"killed_at": killed_at, "kill_started": started, "outside_worker_group": figures["groups"] - 1, **figures}


def _restart_worker(cluster: Cluster, name: str) -> None:
    """Start the worker again and wait until this start says ``ready``."""
    cluster.start_component(name)
    cluster.wait_for_worker(name, timeout=120)


def _ti_path(ti: dict[str, Any]) -> str:
    return f"/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}"


def _taken_over(cluster: Cluster, pending: dict[str, dict[str, Any]], detected: dict[str, float],
                since: float) -> bool:
    """Record when each killed task instance left ``running`` in its killed try; True once all have."""
    for key, ti in list(pending.items()):
        now_ti = cluster.api("GET", _ti_path(ti))
        if now_ti["state"] != "running" or now_ti["try_number"] != ti["try_number"]:
            detected[key] = time.monotonic() - since
            del pending[key]
    return not pending


def _key(ti: dict[str, Any]) -> str:
    return f"{ti['dag_id']}/{ti['dag_run_id']}/{ti['task_id']}"


def _heartbeat_events(cluster: Cluster, accounts: list[Account]) -> list[dict[str, Any]]:
    """The scheduler's ``heartbeat timeout`` audit-log entries of the phase's DAGs."""
    out = []
    for account in accounts:
        out += cluster.api("GET", "/eventLogs", params={"event": "heartbeat timeout", "dag_id": account.dag_id,
                                                        "limit": 100})["event_logs"]
    return out


def _follow_up(cluster: Cluster, ti: dict[str, Any], killed_at: dt.datetime, detected_after: float | None,
               events: list[dict[str, Any]]) -> dict[str, Any]:
    """What became of one killed task instance: its tries after the kill, where and when they ran."""
    final = cluster.api("GET", _ti_path(ti))
    tries = cluster.api("GET", _ti_path(ti) + "/tries")["task_instances"]
    later = [t for t in tries if t["try_number"] > ti["try_number"]]
    if final["try_number"] > ti["try_number"] and all(t["try_number"] != final["try_number"] for t in later):
        later.append(final)  # the current try is not always in the history yet
    killed_try = next((t for t in tries if t["try_number"] == ti["try_number"]), {})
    event = next((e for e in events if (e["run_id"], e["task_id"]) == (ti["dag_run_id"], ti["task_id"])), None)
    ended = _at(final.get("end_date"))
    return {
        "dag_id": ti["dag_id"],
        "account": ti["dag_id"].split("__", 1)[-1],
        "run": ti["dag_run_id"],
        "logical_date": (ti.get("logical_date") or "")[:10],
        "task_id": ti["task_id"],
        "killed_try": ti["try_number"],
        "killed_try_state": killed_try.get("state"),
        "detected_after": detected_after,
        "heartbeat_event_after": ((_at(event["when"]) - killed_at).total_seconds() if event else None),
        "final_state": final["state"],
        "final_try": final["try_number"],
        "later_tries": [(t["try_number"], t["state"], t["hostname"]) for t in sorted(later, key=lambda t: t["try_number"])],
        "final_hostname": final["hostname"],
        "recovered_after": (ended - killed_at).total_seconds() if ended and final["state"] == "success" else None,
    }


def run_r11(s: Session) -> dict[str, Any]:
    cluster, accounts, dsn, broker = _start_cluster(s)
    sim = accounts[0].sim
    begin, end = accounts[0].start_date, s.last
    dbname = conninfo_to_dict(dsn)["dbname"]
    full: dict[Any, int] = {}
    for account in accounts:
        full |= day_counts(sim, account.appid, account.name, begin, end)
    with psycopg.connect(dsn) as conn:  # the observer and the lock need the tables before any task ran
        migrate(conn, "wechat")
    observer = WindowObserver(dsn, ACCOUNTS, begin, end, application_name="suite-r11-observer")
    observer.start()
    locker = psycopg.connect(dsn, application_name="suite-r11-locker")
    started = time.monotonic()
    try:
        locker.execute(f"LOCK TABLE wechat.{LOCK_TABLE} IN EXCLUSIVE MODE")
        for account in accounts:
            cluster.set_paused(account.dag_id, False)
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            pinned = _wait_for(lambda: _victim_pinned(cluster, accounts, admin, dbname),
                               f"{VICTIM} to run {CONCURRENCY} tasks blocked inside their write")
        runs_before = [r for a in accounts for r in cluster.dag_runs(a.dag_id)]
        finished_at_kill = sum(r["state"] in ("success", "failed") for r in runs_before)
        kill = _kill_tree(cluster, VICTIM)
        log(f"R11: killed {VICTIM} ({kill['processes']} processes in {kill['groups']} groups) running "
            f"{[(t['dag_id'].split('__')[-1], t['task_id'], t['logical_date'][:10]) for t in pinned['tis']]}")
        time.sleep(1.0)
        locker.rollback()  # the other worker's blocked tasks go on; the dead tasks' transactions abort
    finally:
        locker.close()
    killed = pinned["tis"]
    pending = {_key(t): t for t in killed}
    detected: dict[str, float] = {}
    _wait_for(lambda: _taken_over(cluster, pending, detected, kill["kill_started"])
              and time.monotonic() - kill["kill_started"] >= MIN_DOWN_SECONDS,
              "the killed task instances to be taken over", timeout=WAIT, poll=1.0)
    restart_began = time.monotonic()
    _restart_worker(cluster, VICTIM)
    restarted_at = _utcnow()
    down = time.monotonic() - kill["kill_started"]
    restart_seconds = time.monotonic() - restart_began
    log(f"R11: {VICTIM} back after {down:.0f} s (ready in {restart_seconds:.1f} s)")
    try:
        runs = [r for a in accounts
                for r in cluster.wait_for_runs(a.dag_id, count=DAYS, run_type="scheduled", timeout=900, poll=1.0)]
    finally:
        observer.stop()
    seconds = time.monotonic() - started
    tis = _all_tis(cluster, accounts)
    events = _heartbeat_events(cluster, accounts)
    follow = [_follow_up(cluster, t, kill["killed_at"], detected.get(_key(t)), events) for t in killed]
    after_restart = [t for t in tis if t["hostname"] == VICTIM and (_at(t.get("start_date")) or restarted_at)
                     > restarted_at]
    per_account = {}
    for account in accounts:
        truth = tables_vs_truth(dsn, sim, account.appid, begin, end, account=account.name)
        load_log_ok, statuses = load_log_matches(dsn, account.name, begin, end, full)
        per_account[account.name] = {
            **truth,
            "rows_stored": sum(t["stored"] for t in truth["tables"]),
            "load_log_ok": load_log_ok,
            "load_log_statuses": statuses,
            "token_calls": account.token_calls(),
        }
    with psycopg.connect(dsn) as conn:
        responses = dict(conn.execute(
            "SELECT status, count(*) FROM wechat.api_response WHERE account = ANY(%s) GROUP BY status",
            (list(ACCOUNTS),),
        ).fetchall())
    result = {
        "begin": begin,
        "end": end,
        "accounts": list(ACCOUNTS),
        "broker": broker,
        "workers": list(cluster.worker_names),
        "concurrency": CONCURRENCY,
        "heartbeat_timeout": HEARTBEAT_TIMEOUT,
        "heartbeat_check_interval": HEARTBEAT_CHECK_INTERVAL,
        "runs_finished_at_kill": f"{finished_at_kill} of {len(accounts) * DAYS}",
        "running_elsewhere_at_kill": [(t["hostname"], t["task_id"]) for t in pinned["running_elsewhere"]],
        "blocked_backends_at_kill": pinned["blocked_backends"],
        "kill": {k: v for k, v in kill.items() if k != "kill_started"},
        "killed": follow,
        "heartbeat_events": len(events),
        "down_seconds": down,
        "restart_seconds": restart_seconds,
        "victim_tis_after_restart": len(after_restart),
        **run_figures(runs, tis, seconds),
        "hostnames": Counter(t["hostname"] for t in tis),
        "observer_samples": observer.samples,
        "partial_seen": partial_windows(observer.seen, full),
        "per_account": per_account,
        "truth_equal": all(a["truth_equal"] for a in per_account.values()),
        "api_responses": responses,
    }
    log(f"R11: {dict(result['run_states'])} in {seconds:.0f} s; killed {len(follow)} TIs -> "
        f"{[(f['task_id'], f['final_state'], f['final_try'], f['final_hostname']) for f in follow]}; "
        f"truth {result['truth_equal']}, partial {result['partial_seen'] or 'none'}")
    return result
