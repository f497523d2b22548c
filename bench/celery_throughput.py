"""B6: one day for 50 accounts on CeleryExecutor (2 workers), against no-op DAGs of the same shape.

The question is whether the pipeline's own work (token from the Postgres cache, an HTTP
call to the simulator, one transaction per window) is a small part of a distributed
deployment's throughput, or whether it, not Airflow, sets the pace. So the real daily
DAGs of 50 accounts (50 DAGs x 6 legacy endpoints = 300 task instances) run one
scheduled day each on a Celery cluster — Redis broker, metadata DB as result backend, two
named workers — and then 50 no-op DAGs of the same shape (bench/scheduler.py's B4
baseline: same timetable, start date, pool, retries and asset outlets; each task a
BaseOperator that returns at once, in a task process like the real one) run on the same
cluster, same settings.

Fair and cheap by construction:

* every DAG starts on the last scheduled day, so it has exactly one scheduled run;
* every DAG is created paused; a batch starts with one API call that unpauses all 50 of
  its DAGs at once (one UPDATE), and its wall time runs from that call to the ``end_date``
  of its last run (API timestamps, :func:`bench.harness.run_wall_seconds`);
* both batches share the cluster, the DAG folder (both files parsed throughout), the pool,
  the parallelism and the workers' concurrency; with ``repeats`` > 1 they alternate
  (real, no-op, no-op, real, ...), each repetition on DAGs of its own;
* then a LocalExecutor cluster with the same parallelism, pool and DAG folder runs 50 other
  accounts' real DAGs: the single-machine figure for comparison.

The real batches are checked, not just timed: every run and task instance succeeded, the
Celery task instances ran on both workers, every account's rows equal the simulator's
truth, and each account made exactly one token call.

``python -m bench.celery_throughput`` runs B6 alone and prints its section; ``make bench``
runs it after the scheduler benchmarks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wechat_datacube_dev.localrun.airflow_cluster import CelerySetup
from wechat_datacube_dev.localrun.redis_broker import private_queue
from wechat_datacube_dev.simulator import SimulatorServer

from bench.harness import (
    Account,
    Cluster,
    Lab,
    accounts_env,
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
from bench.scheduler import NOOP_DAG_PREFIX, noop_dag_file, noop_dag_id
from tests.fixtures.truth import stored_rows, truth_rows
from wechat_datacube.dag_settings import DAILY_DAG_PREFIX
from wechat_datacube.endpoints import LEGACY

GOAL = 1.25
GOAL_TEXT = f"<= {GOAL}x no-op DAGs"
ACCOUNTS = 50
WORKERS = 2
CONCURRENCY = 2
#: Task slots: the ``wechat_api`` pool and WORKERS x CONCURRENCY are both 4 — as many task
#: processes as 2 cores bear — and so is the scheduler's parallelism by default.
POOL_SLOTS = WORKERS * CONCURRENCY
PARALLELISM = POOL_SLOTS
BATCH_TIMEOUT = 1200
CELERY = "CeleryExecutor"
LOCAL = "LocalExecutor"


@dataclass
class Batch:
    """One measured batch: ``dags`` DAGs, one scheduled run each, unpaused at once."""

    executor: str
    kind: str  # "real" or "noop"
    dags: int
    seconds: float
    runs: int
    failed_runs: int
    tasks: int
    failed_tasks: int
    #: hostname -> task instances it ran
    hosts: dict[str, int]
    #: median task-instance duration (start to end, seconds)
    task_seconds: float
    # Real batches only: what the run did to the simulator and the data database.
    token_calls: list[int] = field(default_factory=list)
    data_calls: int = 0
    rows_stored: int = 0
    #: "account endpoint: n stored vs m true" for every (account, endpoint) that differs
    mismatches: list[str] = field(default_factory=list)

    @property
    def per_minute(self) -> float:
        return self.tasks / self.seconds * 60

    def ok(self, workers: Sequence[str] = ()) -> bool:
        """Every run and task succeeded; real: truth stored, one token per account; Celery: every worker used."""
        good = self.failed_runs == 0 and self.failed_tasks == 0 and self.runs == self.dags
        good = good and self.tasks == self.dags * len(LEGACY)
        if self.kind == "real":
            good = good and not self.mismatches and self.token_calls == [1] * self.dags
        if workers:
            good = good and set(self.hosts) == set(workers)
        return good


def _wait_for_batch(cluster: Cluster, dag_ids: Sequence[str], timeout: float = BATCH_TIMEOUT) -> list[dict[str, Any]]:
    """Every run of ``dag_ids`` once each DAG has one and all are finished (one request per second)."""
    deadline = time.monotonic() + timeout
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        cluster.check_alive()
        runs = cluster.runs_of(dag_ids)
        if len({r["dag_id"] for r in runs}) == len(dag_ids) and all(r["state"] in ("success", "failed") for r in runs):
            return runs
        time.sleep(1.0)
    pending = Counter(r["state"] for r in runs)
    raise RuntimeError(f"batch of {len(dag_ids)} DAGs not finished in {timeout:.0f} s: {dict(pending)}")


def _check_real(batch: Batch, accounts: Sequence[Account], sim: SimulatorServer, dsn: str, day: dt.date) -> None:
    """Fill in the real batch's token calls, data calls and stored rows against the simulator's truth."""
    for account in accounts:
        batch.token_calls.append(account.token_calls())
        batch.data_calls += sum(account.data_calls().values())
        for endpoint in LEGACY:
            stored = stored_rows(dsn, endpoint, day, day, account=account.name)
            truth = truth_rows(sim, account.appid, endpoint, day, day, account=account.name)
            batch.rows_stored += len(stored)
            if stored != truth:
                batch.mismatches.append(f"{account.name} {endpoint}: {len(stored)} stored vs {len(truth)} true")


def _measure(cluster: Cluster, executor: str, kind: str, prefix: str, dag_ids: Sequence[str]) -> Batch:
    """Unpause every DAG of ``prefix`` at once; wall time to the end of the last of their runs."""
    started = time.time()
    unpaused = cluster.set_paused_prefix(prefix, False)
    if unpaused != len(dag_ids):
        raise RuntimeError(f"{prefix}*: unpaused {unpaused} DAGs, expected {len(dag_ids)}")
    runs = _wait_for_batch(cluster, dag_ids)
    seconds = run_wall_seconds(runs, started)
    cluster.set_paused_prefix(prefix, True)
    tis = cluster.task_instances_of(dag_ids)
    durations = [ti["duration"] for ti in tis if ti.get("duration") is not None]
    batch = Batch(
        executor=executor,
        kind=kind,
        dags=len(dag_ids),
        seconds=seconds,
        runs=len(runs),
        failed_runs=sum(r["state"] != "success" for r in runs),
        tasks=len(tis),
        failed_tasks=sum(ti["state"] != "success" for ti in tis),
        hosts=dict(Counter(ti.get("hostname") or "?" for ti in tis)),
        task_seconds=median(durations) if durations else float("nan"),
    )
    log(f"  {executor} {kind}: {seconds:.1f} s for {batch.tasks} task instances ({batch.per_minute:.0f}/min), "
        f"{batch.failed_runs} failed runs, hosts {batch.hosts}")  # fmt: skip
    return batch


def _accounts(prefix: str, count: int, sim: SimulatorServer, secrets: dict[str, str], day: dt.date) -> list[Account]:
    names = [f"{prefix}{i:02d}" for i in range(1, count + 1)]
    return [
        Account(name, f"wx_{name}", secrets[f"wx_{name}"], sim, "b6_pg", day, options={"ready_deadline_hour": 0})
        for name in names
    ]


def _cluster_run(
    lab: Lab,
    accounts: list[Account],
    noop_names: list[str],
    dsn: str,
    *,
    celery: CelerySetup | None,
    order: Sequence[tuple[str, int]],
    parallelism: int,
) -> list[Batch]:
    """Start a cluster for ``accounts`` (+ the no-op DAGs), wait for all DAGs, measure ``order``'s batches.

    ``order``: (kind, repetition) pairs; repetition i is the i-th slice of ``accounts`` / ``noop_names``.
    """
    executor = CELERY if celery else LOCAL
    repeats = 1 + max(i for _, i in order)
    per_batch = len(accounts) // repeats
    day = accounts[0].start_date
    accounts_file = write_accounts_file(scratch_dir("accounts") / "accounts.yaml", accounts)
    env = accounts_env(accounts, accounts_file, {"b6_pg": dsn})
    folder = scratch_dag_folder({"noop_dags.py": noop_dag_file(noop_names, day, max_active_runs=1)})
    started = time.monotonic()
    cluster = lab.cluster(env, dag_folder=folder, parallelism=parallelism, celery=celery, pool_slots=POOL_SLOTS)
    for dag_id in [*(a.dag_id for a in accounts), *(noop_dag_id(n) for n in noop_names)]:
        cluster.wait_for_dag(dag_id)
    log(f"{executor} cluster up, {len(accounts) + len(noop_names)} DAGs parsed, in {time.monotonic() - started:.0f} s")
    batches = []
    for kind, i in order:
        if kind == "real":
            chosen = accounts[i * per_batch:(i + 1) * per_batch]
            prefix = f"{DAILY_DAG_PREFIX}{chosen[0].name[:-2]}"
            batch = _measure(cluster, executor, kind, prefix, [a.dag_id for a in chosen])
            _check_real(batch, chosen, chosen[0].sim, dsn, day)
        else:
            chosen_noop = noop_names[i * per_batch:(i + 1) * per_batch]
            prefix = f"{NOOP_DAG_PREFIX}{chosen_noop[0][:-2]}"
            batch = _measure(cluster, executor, kind, prefix, [noop_dag_id(n) for n in chosen_noop])
        batches.append(batch)
    return batches


def run(
    accounts: int = ACCOUNTS, repeats: int = 1, local_noop: bool = False, parallelism: int = PARALLELISM
) -> dict[str, Any]:
    """B6 on a Celery cluster (real and no-op batches, alternated), then the LocalExecutor figure.

    ``repeats``: batches of each kind on Celery, each on DAGs of its own (account names
    ``b6c<r>NN``, no-op ``b6n<r>NN``). ``local_noop``: also a no-op batch on LocalExecutor.
    ``parallelism``: the scheduler's, on both clusters (the pool stays at POOL_SLOTS).
    """
    day = last_scheduled_day()
    celery_prefixes = [f"b6c{r + 1}n" for r in range(repeats)]
    appids = [f"wx_{p}{i:02d}" for p in [*celery_prefixes, "b6ln"] for i in range(1, accounts + 1)]
    secrets = secrets_for(appids)
    order = []
    for r in range(repeats):
        pair = [("real", r), ("noop", r)]
        order.extend(reversed(pair) if r % 2 else pair)
    with Lab() as lab:
        sim = lab.simulator(secrets)
        dsn = lab.database("wdc_b6_data")
        broker = lab.redis_broker()
        celery = CelerySetup(broker.url, private_queue("wdc-b6"), workers=WORKERS, concurrency=CONCURRENCY)
        celery_accounts = [a for p in celery_prefixes for a in _accounts(p, accounts, sim, secrets, day)]
        noop_names = [f"b6n{r + 1}n{i:02d}" for r in range(repeats) for i in range(1, accounts + 1)]
        with Lab() as celery_lab, section("B6 on Celery") as load:
            batches = _cluster_run(celery_lab, celery_accounts, noop_names, dsn, celery=celery, order=order,
                                   parallelism=parallelism)
            celery_load = load.summary()
        local_accounts = _accounts("b6ln", accounts, sim, secrets, day)
        local_noop_names = noop_names[:accounts]
        local_order = [("real", 0), *([("noop", 0)] if local_noop else [])]
        with Lab() as local_lab, section("B6 on LocalExecutor") as load:
            batches += _cluster_run(local_lab, local_accounts, local_noop_names, dsn, celery=None, order=local_order,
                                    parallelism=parallelism)
            local_load = load.summary()
    return {
        "batches": batches,
        "day": day,
        "accounts": accounts,
        "repeats": repeats,
        "parallelism": parallelism,
        "workers": celery.worker_names(),
        "broker": broker.description,
        "foreign_load": {CELERY: celery_load, LOCAL: local_load},
    }


def _of(result: dict[str, Any], executor: str, kind: str) -> list[Batch]:
    return [b for b in result["batches"] if b.executor == executor and b.kind == kind]


def ratio(result: dict[str, Any]) -> float:
    """Median Celery real wall time / median Celery no-op wall time."""
    real = [b.seconds for b in _of(result, CELERY, "real")]
    noop = [b.seconds for b in _of(result, CELERY, "noop")]
    return median(real) / median(noop)


def summary(result: dict[str, Any]) -> str:
    """The Summary table's cell: verdict, ratio and the Celery real throughput."""
    met, _ = report(result)
    real = _of(result, CELERY, "real")
    return f"{verdict(met)} ({ratio(result):.2f}x; {median([b.per_minute for b in real]):.0f} TI/min)"


def report(result: dict[str, Any]) -> tuple[bool, str]:
    """(met, section text): the goal is the ratio and a correct real run on both workers."""
    workers = result["workers"]
    celery_batches = [b for b in result["batches"] if b.executor == CELERY]
    correct = all(b.ok(workers) for b in celery_batches) and all(
        b.ok() for b in result["batches"] if b.executor == LOCAL
    )
    r = ratio(result)
    met = r <= GOAL and correct
    rows = []
    for b in result["batches"]:
        hosts = ", ".join(f"{h}: {n}" for h, n in sorted(b.hosts.items()))
        rows.append([
            b.executor, b.dags, b.kind, b.tasks, f"{b.seconds:.1f}", f"{b.per_minute:.0f}",
            f"{b.runs - b.failed_runs}/{b.runs}", f"{b.task_seconds:.2f}", hosts,
        ])  # fmt: skip
    checks = []
    for b in result["batches"]:
        if b.kind != "real":
            continue
        tokens = Counter(b.token_calls)
        checks.append([
            b.executor, f"{b.tasks - b.failed_tasks}/{b.tasks}", b.data_calls, b.rows_stored,
            f"{b.dags * len(LEGACY) - len(b.mismatches)}/{b.dags * len(LEGACY)}",
            ", ".join(f"{n} call(s): {k} accounts" for n, k in sorted(tokens.items())),
        ])  # fmt: skip
    mismatches = [m for b in result["batches"] for m in b.mismatches][:10]
    real = median([b.seconds for b in _of(result, CELERY, "real")])
    noop = median([b.seconds for b in _of(result, CELERY, "noop")])
    local = _of(result, LOCAL, "real")
    n = result["accounts"]
    repeats = result["repeats"]
    local_text = ""
    if local:
        lb = local[0]
        local_text = (
            f" The same {lb.tasks} real task instances on LocalExecutor (same parallelism, pool and DAG folder, "
            f"a fresh cluster): {lb.seconds:.1f} s, {lb.per_minute:.0f} task instances per minute "
            f"({real / lb.seconds:.2f}x its wall time on Celery)."
        )
    return met, f"""
Goal: one scheduled day for {n} accounts ({n} daily DAGs x {len(LEGACY)} legacy endpoints =
{n * len(LEGACY)} task instances) on CeleryExecutor with {len(workers)} workers takes <= {GOAL}x the
wall time of {n} no-op DAGs of the same shape on the same cluster. Setting: Redis broker
({result['broker']}), the metadata DB as result backend, workers {', '.join(workers)} with
concurrency {CONCURRENCY} each, scheduler parallelism {result["parallelism"]}, pool `wechat_api` of
{POOL_SLOTS} slots — the same for both kinds. Every DAG starts on {result['day']} (the last
scheduled day), so it has exactly one scheduled run; all DAGs are created paused, a batch's
{n} DAGs are unpaused by one API call, and its wall time runs from that call to the end of
its last run. The no-op DAGs are B4's baseline ({n} of them, in one file as the real ones
are): same timetable, start date, pool, retries and asset outlets, each task a BaseOperator
that returns at once in a task process. Both DAG files are in the folder throughout, so the
DAG processor's work is the same during both batches. {repeats} batch(es) of each kind
{"(alternated: real, no-op, no-op, real, ...; each on DAGs of its own)" if repeats > 1 else "(real first, on the freshly started cluster: any warm-up cost falls on the real DAGs)"}.

{markdown_table(["executor", "DAGs", "kind", "task instances", "wall time (s)", "task instances / min", "runs succeeded", "median task duration (s)", "task instances per host"], rows)}

| | wall time | task instances / min |
|---|---|---|
| real DAGs on Celery | {real:.1f} s | {n * len(LEGACY) / real * 60:.0f} |
| no-op DAGs on Celery | {noop:.1f} s | {n * len(LEGACY) / noop * 60:.0f} |
| **ratio** | **{r:.2f}x** (goal <= {GOAL}x) | |

Checks of the real runs (rows compared with the simulator's truth per account and endpoint;
token calls counted by the simulator per AppID, the workers sharing each token through the
Postgres cache):

{markdown_table(["executor", "task instances succeeded", "data calls", "rows stored", "(account, endpoint) equal to truth", "token calls per account"], checks)}
{("First mismatches: " + "; ".join(mismatches)) if mismatches else ""}

Result: {verdict(met)} — ratio {r:.2f}x; every real run {"correct" if correct else "NOT correct (see the checks)"},
task instances on {", ".join(sorted({h for b in celery_batches for h in b.hosts}))}.{local_text}

Other processes' CPU meanwhile: Celery part {result['foreign_load'][CELERY]}; LocalExecutor part
{result['foreign_load'][LOCAL]}.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=ACCOUNTS)
    parser.add_argument("--repeats", type=int, default=1, help="Celery batches of each kind (alternated)")
    parser.add_argument("--local-noop", action="store_true", help="also a no-op batch on LocalExecutor")
    parser.add_argument("--parallelism", type=int, default=PARALLELISM)
    args = parser.parse_args()
    result = run(args.accounts, args.repeats, args.local_noop, args.parallelism)
    met, text = report(result)
    print(text)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
