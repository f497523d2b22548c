"""B1, B2 and B4: the DAGs under a real scheduler (LocalExecutor, 4 task slots, pool of 4).

* B4 — a 30-day catchup of the real daily DAG against the simulator, and of a no-op DAG
  of the same shape (same timetable, start date, catchup, max_active_runs, six tasks in
  the same pool with the same retry settings; each task a BaseOperator whose ``execute``
  returns at once), alternated in the same cluster so drift hits both. EmptyOperator is
  *not* a fair baseline: the scheduler marks it successful without running a process.
* B1 — the real catchups' token-endpoint calls per account (each repetition is its own
  account and AppID) next to the number of task processes that ran.
* B2 — the bulk backfill DAG under the same scheduler: 365 days and 2014-12-01 to the end
  of last year, for accounts with the legacy six and the user, message and interface
  families (:data:`BULK_FAMILIES`), data calls (simulator counters) per endpoint against
  the bench's own arithmetic (:func:`expected_calls`), then the same runs again (expected:
  zero calls). ``run(catchups=False)`` runs B2 alone (``python -m bench --only B2``).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from bench.harness import (
    SHORT_RETRY_DELAY_SECONDS,
    Account,
    Cluster,
    Lab,
    accounts_env,
    fmt_list,
    last_scheduled_day,
    log,
    markdown_table,
    median,
    run_wall_seconds,
    scratch_dag_folder,
    scratch_dir,
    secrets_for,
    section,
    verdict,
    write_accounts_file,
)
from wechat_datacube.dag_settings import DEFAULT_TASK_ARGS, RETRY_DELAY_ENV
from wechat_datacube.endpoints import HISTORY_START, LEGACY, expand_endpoints, get_endpoint
from wechat_datacube.operators import table_asset

CATCHUP_DAYS = 30
MAX_ACTIVE_RUNS = 3  # the accounts file's default
BACKFILL_DAG = "wechat_datacube_backfill"
#: Windows per mapped backfill task: ~18,000 windows in ~120 tasks (each task costs ~2 s of
#: Airflow overhead on this machine; the default 15 would make >1000 tasks).
BULK_WINDOWS_PER_TASK = 150
#: What the B2 accounts pull: the six of B1/B4 plus every family that stands beside them.
BULK_FAMILIES = ("legacy", "user", "message", "interface")
BULK_ENDPOINTS = expand_endpoints(BULK_FAMILIES)
_ONE_DAY = dt.timedelta(days=1)

NOOP_DAGS = '''"""No-op baseline for bench/scheduler.py: the daily DAGs' shape, tasks that do nothing."""
import datetime as dt

from airflow.sdk import DAG, Asset, BaseOperator, CronDataIntervalTimetable


class NoOp(BaseOperator):
    """Runs in a task process like the real operator, then returns at once."""

    def execute(self, context):
        return None


for name in {names!r}:
    with DAG(
        dag_id=f"{prefix}{{name}}",
        schedule=CronDataIntervalTimetable("0 10 * * *", timezone="Asia/Shanghai"),
        start_date=dt.datetime.fromisoformat({start!r}),
        catchup=True,
        max_active_runs={max_active_runs},
    ) as dag:
        for task_id, (asset_name, asset_uri) in {tasks!r}.items():
            # Same outlets as the real tasks: the asset events are Airflow's work, not ours.
            NoOp(task_id=task_id, pool="wechat_api", retries={retries}, outlets=[Asset(name=asset_name, uri=asset_uri)])
    globals()[dag.dag_id] = dag
'''
#: The no-op DAGs are ``<prefix><name>``.
NOOP_DAG_PREFIX = "noop__"


def noop_dag_id(name: str) -> str:
    return f"{NOOP_DAG_PREFIX}{name}"


def noop_dag_file(names: list[str], start: dt.date, max_active_runs: int = MAX_ACTIVE_RUNS) -> str:
    """A DAG file with one no-op DAG per name, each shaped like the daily DAG of an account starting ``start``.

    Shared by B4 (one DAG per repetition) and B6 (as many as there are accounts), so both
    baselines are the same DAG.
    """
    return NOOP_DAGS.format(
        names=names,
        prefix=NOOP_DAG_PREFIX,
        start=dt.datetime.combine(start, dt.time(10), tzinfo=dt.timezone(dt.timedelta(hours=8))).isoformat(),
        max_active_runs=max_active_runs,
        tasks={e: (table_asset("wechat", get_endpoint(e).table).name, table_asset("wechat", get_endpoint(e).table).uri)
               for e in LEGACY},
        retries=DEFAULT_TASK_ARGS["retries"],
    )


@dataclass
class CatchupResult:
    dag_id: str
    kind: str  # "real" or "noop"
    seconds: float
    runs: int
    failed_runs: int
    tasks: int
    token_calls: int | None = None
    data_calls: int | None = None
    #: task_id -> peak RSS (bytes) of each of its task processes
    peak_rss: dict[str, list[int]] = field(default_factory=dict)
    #: median task-instance duration (start to end, seconds)
    task_seconds: float = 0.0


@dataclass
class BackfillResult:
    label: str
    begin: dt.date
    end: dt.date
    expected_calls: int
    calls: int
    seconds: float
    mapped_tasks: int
    state: str
    rerun_calls: int = -1
    rerun_seconds: float = 0.0
    rerun_state: str = ""
    #: endpoint -> (calls, expected) of the first run
    per_endpoint: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: endpoint -> calls of the rerun
    rerun_per_endpoint: dict[str, int] = field(default_factory=dict)


class TaskMemory(threading.Thread):
    """Peak RSS (``VmHWM``) of every task process, by task instance id.

    A task process is titled ``airflow worker -- <task instance id>`` by the task runner;
    VmHWM is the kernel's high-water mark of its resident set, so sampling every 0.2 s
    misses only growth in a process's last fraction of a second.
    """

    def __init__(self) -> None:
        super().__init__(name="task-memory", daemon=True)
        self.peaks: dict[str, int] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.2):
            for proc in psutil.process_iter(["cmdline"]):
                title = " ".join(proc.info.get("cmdline") or [])
                if not title.startswith("airflow worker -- "):
                    continue
                ti_id = title.split(" -- ", 1)[1].strip()
                try:
                    status = Path(f"/proc/{proc.pid}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        peak = int(line.split()[1]) * 1024
                        self.peaks[ti_id] = max(self.peaks.get(ti_id, 0), peak)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def _ceil_div(days: int, span: int) -> int:
    return -(-days // span)


def period_labels(begin: dt.date, end: dt.date, period: str) -> list[dt.date]:
    """Labels of the periods whose last day is in [begin, end]: each day, the Monday of each
    Sunday, the 1st of each month's last day.

    The bench's own arithmetic, written from the official rule (a week or month is served,
    labelled by its first day, once it is over), not taken from ``wechat_datacube.periods``:
    so the measured calls can disagree with the planner.
    """
    labels = []
    day = begin
    while day <= end:
        following = day + _ONE_DAY
        if period == "day":
            labels.append(day)
        elif period == "week" and day.isoweekday() == 7:
            labels.append(day - dt.timedelta(days=6))
        elif period == "month" and following.day == 1:
            labels.append(day.replace(day=1))
        day = following
    return labels


def packed_calls(labels: list[dt.date], span: int) -> int:
    """Calls for ``labels`` (oldest first), each call asking for as many as fit in ``span`` days
    (its first to its last label, both included)."""
    calls, first = 0, None
    for label in labels:
        if first is None or (label - first).days + 1 > span:
            calls, first = calls + 1, label
    return calls


def expected_endpoint_calls(name: str, begin: dt.date, end: dt.date) -> int:
    """Calls one endpoint needs for [begin, end]: ceil(days / span) for a day endpoint (also with
    a lookback: getusersummary's windows are cut from the end, a 1-day range widened, same
    count), the packed labels of the periods ending in the range for a week or month one."""
    spec = get_endpoint(name)
    first = max(begin, spec.first_date)
    if first > end:
        return 0
    if spec.period == "day":
        return _ceil_div((end - first).days + 1, spec.max_span)
    labels = [label for label in period_labels(first, end, spec.period) if label >= spec.first_date]
    return packed_calls(labels, spec.max_span)


def expected_calls(begin: dt.date, end: dt.date, endpoints: tuple[str, ...] = BULK_ENDPOINTS) -> dict[str, int]:
    """Expected calls per endpoint for [begin, end] (see :func:`expected_endpoint_calls`)."""
    return {name: expected_endpoint_calls(name, begin, end) for name in endpoints}


def _catchup(
    cluster: Cluster, dag_id: str, kind: str, account: Account | None, memory: TaskMemory
) -> CatchupResult:
    started = time.time()
    cluster.set_paused(dag_id, False)
    runs = cluster.wait_for_runs(dag_id, count=CATCHUP_DAYS, run_type="scheduled", timeout=1200, poll=1.0)
    seconds = run_wall_seconds(runs, started)
    cluster.set_paused(dag_id, True)
    failed = sum(r["state"] != "success" for r in runs)
    result = CatchupResult(dag_id, kind, seconds, len(runs), failed, len(runs) * len(LEGACY))
    if account is not None:
        result.token_calls = account.token_calls()
        result.data_calls = sum(account.data_calls().values())
    tis = cluster.all_task_instances(dag_id, "~")
    for ti in tis:
        if ti.get("id") in memory.peaks:
            result.peak_rss.setdefault(ti["task_id"], []).append(memory.peaks[ti["id"]])
    durations = [ti["duration"] for ti in tis if ti.get("duration") is not None]
    result.task_seconds = median(durations) if durations else float("nan")
    log(f"  {kind} {dag_id}: {seconds:.1f} s, {len(runs)} runs, {failed} failed, task median {result.task_seconds:.2f} s")
    return result


def _endpoint_order(name: str) -> tuple[int, str]:
    """Registry order of the B2 endpoints; anything else (unexpected) after them."""
    return (BULK_ENDPOINTS.index(name), "") if name in BULK_ENDPOINTS else (len(BULK_ENDPOINTS), name)


def _backfill(
    cluster: Cluster, account: Account, label: str, begin: dt.date, end: dt.date
) -> BackfillResult:
    expected = expected_calls(begin, end)
    conf = {
        "accounts": [account.name],
        "begin_date": begin.isoformat(),
        "end_date": end.isoformat(),
        "windows_per_task": BULK_WINDOWS_PER_TASK,
    }

    def one_run() -> tuple[float, str, int, dict[str, int]]:
        before = account.data_calls()
        started = time.time()
        run = cluster.trigger(BACKFILL_DAG, conf)
        run = cluster.wait_run(BACKFILL_DAG, run["dag_run_id"], timeout=1500)
        seconds = run_wall_seconds([run], started)
        after = account.data_calls()
        # Every datacube path, not only the expected ones: a call to anything else counts too.
        calls = {e: after.get(e, 0) - before.get(e, 0) for e in {*after, *expected}}
        tis = cluster.all_task_instances(BACKFILL_DAG, run["dag_run_id"])
        mapped = sum(1 for t in tis if t["task_id"] == "load" and t.get("map_index", -1) >= 0)
        return seconds, run["state"], mapped, calls

    seconds, state, mapped, calls = one_run()
    result = BackfillResult(label, begin, end, sum(expected.values()), sum(calls.values()), seconds, mapped, state)
    result.per_endpoint = {e: (calls[e], expected.get(e, 0)) for e in sorted(calls, key=_endpoint_order)}
    log(f"  backfill {label}: {result.calls}/{result.expected_calls} calls, {seconds:.0f} s, {mapped} tasks, {state}")
    result.rerun_seconds, result.rerun_state, _, again = one_run()
    result.rerun_calls = sum(again.values())
    result.rerun_per_endpoint = again
    log(f"  backfill {label} rerun: {result.rerun_calls} calls, {result.rerun_seconds:.0f} s")
    return result


def run(repeats: int = 2, *, catchups: bool = True) -> dict[str, Any]:
    """Start one cluster, run B4/B1 (alternating real and no-op catchups) and B2.

    ``catchups=False``: B2 alone (no catchup accounts, no no-op DAGs); B1/B4 and the task
    memory of B5 then have nothing to report.
    """
    last = last_scheduled_day()
    start = last - dt.timedelta(days=CATCHUP_DAYS - 1)
    real_names = [f"real{i + 1}" for i in range(repeats)] if catchups else []
    noop_names = [f"noop{i + 1}" for i in range(repeats)] if catchups else []
    this_year = dt.datetime.now(dt.UTC).year
    bulk_year_end = dt.date(this_year - 1, 12, 31)
    bulk_365 = (last - dt.timedelta(days=364 + 10), last - dt.timedelta(days=10))
    bulk_all = (HISTORY_START, bulk_year_end)

    appids = {name: f"wx_bench_{name}" for name in [*real_names, "bulk365", "bulkall"]}
    secrets = secrets_for(appids.values())
    title = "scheduler benchmarks (B1, B2, B4)" if catchups else "scheduler benchmark B2"
    with Lab() as lab, section(title) as load:
        sim = lab.simulator(secrets)
        databases = {"bench_pg": lab.database("wdc_bench_data")}
        accounts = [
            Account(name, appids[name], secrets[appids[name]], sim, "bench_pg", start,
                    options={"max_active_runs": MAX_ACTIVE_RUNS, "ready_deadline_hour": 0})
            for name in real_names
        ] + [
            Account(name, appids[name], secrets[appids[name]], sim, "bench_pg", bulk_year_end,
                    endpoints=BULK_FAMILIES, options={"ready_deadline_hour": 0})
            for name in ("bulk365", "bulkall")
        ]
        by_name = {a.name: a for a in accounts}
        accounts_file = write_accounts_file(scratch_dir("accounts") / "accounts.yaml", accounts)
        extra_dags = {"noop_dags.py": noop_dag_file(noop_names, start)} if catchups else {}
        env = accounts_env(accounts, accounts_file, databases)
        env[RETRY_DELAY_ENV] = SHORT_RETRY_DELAY_SECONDS
        cluster_started = time.monotonic()
        cluster = lab.cluster(env, dag_folder=scratch_dag_folder(extra_dags))
        for dag_id in [*(by_name[n].dag_id for n in real_names), *(noop_dag_id(n) for n in noop_names), BACKFILL_DAG]:
            cluster.wait_for_dag(dag_id)
        cluster.set_paused(BACKFILL_DAG, False)
        log(f"cluster up in {time.monotonic() - cluster_started:.0f} s")

        results: list[CatchupResult] = []
        memory = TaskMemory()
        memory.start()
        for i in range(len(real_names)):
            pair = [("real", by_name[real_names[i]]), ("noop", None)]
            if i % 2:
                pair.reverse()
            for kind, account in pair:
                dag_id = account.dag_id if account else noop_dag_id(noop_names[i])
                results.append(_catchup(cluster, dag_id, kind, account, memory))
        memory.stop()

        backfills = [
            _backfill(cluster, by_name["bulk365"], "365 days", *bulk_365),
            _backfill(cluster, by_name["bulkall"], "2014-12-01 to last year", *bulk_all),
        ]
        foreign = load.summary()
    return {"catchups": results, "backfills": backfills, "foreign_load": foreign, "start": start, "last": last,
            "repeats": repeats}


def report_b1(results: dict[str, Any]) -> tuple[bool, str]:
    """(met, section text): the Summary takes its verdict from here, so the two cannot disagree."""
    real = [c for c in results["catchups"] if c.kind == "real"]
    rows = [[c.dag_id, c.runs, c.tasks, c.data_calls, c.token_calls, c.tasks, fmt_list([c.seconds])] for c in real]
    met = all(c.token_calls == 1 and c.failed_runs == 0 for c in real)
    return met, f"""
Goal: one token-endpoint call per token lifetime (7200 s) per account. Setting: a
{CATCHUP_DAYS}-day catchup ({results['start']}..{results['last']}) of the daily DAG, six legacy
endpoints, under a real scheduler (LocalExecutor, parallelism 4, pool `wechat_api` of 4
slots, max_active_runs {MAX_ACTIVE_RUNS}); each repetition is a separate account with its own
AppID, so its token calls are counted alone (simulator counters per AppID). "Per-task
client" is what a client that fetches a token in every task process would make: one per
task.

{markdown_table(["DAG", "runs", "task processes", "data calls", "token calls (measured)", "per-task client would make", "catchup wall time (s)"], rows)}

Result: {verdict(met)} — {', '.join(str(c.token_calls) for c in real)} token call(s) per account for
{real[0].tasks if real else 0} tasks each; every catchup finished well inside one token lifetime.
"""


def b4_ratio(catchups: list[CatchupResult]) -> float:
    real = [c.seconds for c in catchups if c.kind == "real"]
    noop = [c.seconds for c in catchups if c.kind == "noop"]
    return median(real) / median(noop)


def report_b4(results: dict[str, Any]) -> str:
    catchups = results["catchups"]
    real = [c for c in catchups if c.kind == "real"]
    noop = [c for c in catchups if c.kind == "noop"]
    ratio = b4_ratio(catchups)
    rows = [[c.dag_id, c.kind, f"{c.seconds:.1f}", c.runs, c.failed_runs, f"{c.task_seconds:.2f}"] for c in catchups]
    per_task = CATCHUP_DAYS * len(LEGACY)
    return f"""
Goal: the real DAG's {CATCHUP_DAYS}-day catchup takes <= 1.25x the wall time of the same DAG
shape with no-op tasks, under the same scheduler settings. Both are measured in the same
cluster (parallelism 4, pool of 4, max_active_runs {MAX_ACTIVE_RUNS}), alternately (real,
no-op, then no-op, real, ...), from unpausing the DAG to the end of its last run (API
timestamps); {len(real)} repetitions each. The no-op DAG has the real one's timetable,
start date, catchup, max_active_runs, pool, retries and asset outlets; each task is a
BaseOperator whose `execute` returns at once, so it runs in a task process like the real
one (EmptyOperator would be marked successful by the scheduler without any process).

{markdown_table(["DAG", "kind", "wall time (s)", "runs", "failed runs", "median task duration (s)"], rows)}

| | median wall time | per task (4 slots) |
|---|---|---|
| real DAG (simulator + Postgres) | {median([c.seconds for c in real]):.1f} s | {median([c.seconds for c in real]) / per_task:.2f} s |
| no-op DAG, same shape | {median([c.seconds for c in noop]):.1f} s | {median([c.seconds for c in noop]) / per_task:.2f} s |
| **ratio** | **{ratio:.2f}x** (goal <= 1.25x) | |

Result: {verdict(ratio <= 1.25)}. The real task's own work (token from the Postgres cache,
one or two HTTP calls, one transaction per window) shows in the median task duration;
most of a task's wall time is Airflow's (process start, DAG parse, API round trips),
which both DAGs pay alike. The DAG processor re-parses files every 30 s here (Airflow's
default `min_file_process_interval`); in a trial run with the test suite's 5 s, under
load from other processes, the catchups took 138 s (real) and 110 s (no-op): 1.25x.
"""


def report_rss(catchups: list[CatchupResult]) -> str:
    """Peak RSS of the task processes of the catchups, real vs no-op, per endpoint."""
    mib = 2**20
    rows = []
    for kind in ("real", "noop"):
        by_task: dict[str, list[int]] = {}
        for c in catchups:
            if c.kind == kind:
                for task, peaks in c.peak_rss.items():
                    by_task.setdefault(task, []).extend(peaks)
        for task in LEGACY:
            peaks = by_task.get(task, [])
            if peaks:
                rows.append([kind, task, len(peaks), f"{median(peaks) / mib:.0f}", f"{max(peaks) / mib:.0f}"])
    return f"""
Sampled during the B4 catchups: the kernel's high-water mark of the resident set (VmHWM)
of every task process (`airflow worker -- <task instance id>`), every 0.2 s. RSS counts
pages shared with the parent after fork (the Airflow libraries), so it overstates what
each extra process costs; the no-op rows are the floor any task has on this deployment.
A process that lives less than one sampling interval can be missed entirely: hence fewer
no-op processes than tasks in the table (a no-op task lives ~0.1 s).

{markdown_table(["DAG", "task", "task processes", "median peak RSS (MiB)", "max peak RSS (MiB)"], rows)}
"""


def report_b2(results: dict[str, Any]) -> tuple[bool, str]:
    """(met, section text)."""
    backfills: list[BackfillResult] = results["backfills"]
    rows = []
    for b in backfills:
        ratio = b.calls / b.expected_calls if b.expected_calls else float("nan")
        rows.append([
            b.label, f"{b.begin}..{b.end}", (b.end - b.begin).days + 1, b.expected_calls, b.calls, f"{ratio:.2f}",
            b.mapped_tasks, f"{b.seconds:.0f}", b.state, b.rerun_calls, f"{b.rerun_seconds:.0f}",
        ])
    endpoints = list(dict.fromkeys(e for b in backfills for e in b.per_endpoint))
    per = []
    for name in endpoints:
        spec = get_endpoint(name) if name in BULK_ENDPOINTS else None
        cells = [f"{c}/{e}" for c, e in (b.per_endpoint.get(name, (0, 0)) for b in backfills)]
        reruns = [b.rerun_per_endpoint.get(name, 0) for b in backfills]
        per.append([name, spec.family if spec else "(not configured)", spec.period if spec else "",
                    spec.max_span if spec else "", *cells, *reruns])  # fmt: skip
    met = all(
        b.calls == b.expected_calls and b.rerun_calls == 0 and b.state == "success"
        and all(c == e for c, e in b.per_endpoint.values())
        for b in backfills
    )
    headers = ["endpoint", "family", "period", "span", *(f"{b.label}: calls/expected" for b in backfills),
               *(f"{b.label}: rerun calls" for b in backfills)]  # fmt: skip
    return met, f"""
Goal: measured data calls ÷ expected calls = 1.00 for every endpoint, and a rerun makes 0
calls. Setting: the bulk backfill DAG (`{BACKFILL_DAG}`) **under the same real scheduler**
(not `dag.test`), `windows_per_task={BULK_WINDOWS_PER_TASK}`, one account per range, each
pulling `{", ".join(BULK_FAMILIES)}` ({len(BULK_ENDPOINTS)} endpoints; B1/B4 keep the legacy
six); calls counted by the simulator per AppID and path. The rerun is the same DAG run conf
again (`reprocess=missing`).

Expected calls are the bench's own arithmetic, not the planner's: ceil(days / span) for a
day endpoint (getusersummary too: its windows are cut from the range's end, same count);
for a week or month endpoint, the periods whose last day (a Sunday, a month's last day)
is in the range, labelled by their Monday / 1st, as many labels per call as fit in the
span (first to last label <= span days: 3 weeks in 15 days, one month in 15).

{markdown_table(["range", "dates", "days", "expected calls", "data calls", "ratio", "mapped tasks", "wall (s)", "state", "rerun calls", "rerun wall (s)"], rows)}

Per endpoint:

{markdown_table(headers, per)}

Result: {verdict(met)}.
"""
