"""Parse time of dags/ versus an EmptyOperator baseline of the same shape.

For 1 and 50 configured accounts, this builds a baseline DAG file that creates the same
number of DAGs with the same number of tasks (EmptyOperator, same schedule), then times
``DagBag`` loading each file in a fresh interpreter per sample (Airflow itself imported
and the Airflow modules the file names pre-imported before the clock starts, as the DAG
processor does), alternating the two so drift hits both.
One discarded warm-up sample each writes the byte-code caches, as a deployment has them.
Prints medians and the ratio; the goal is <= 1.5x.

    python bench/parse_time.py [--samples 9]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

from wechat_datacube.endpoints import LEGACY  # noqa: E402

SAMPLE = """
import importlib, sys, time
import airflow.sdk  # noqa: F401  (the DAG processor has Airflow loaded already)
from airflow.dag_processing.dagbag import DagBag
from airflow.utils.file import iter_airflow_imports
# As the DAG processor does (parsing_pre_import_modules): Airflow modules a file imports
# are imported before the file is parsed.
for module in iter_airflow_imports(sys.argv[1]):
    importlib.import_module(module)
t = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
elapsed = time.perf_counter() - t
assert not bag.import_errors, bag.import_errors
print("RESULT", elapsed, len(bag.dags), sum(len(d.tasks) for d in bag.dags.values()))
"""

BASELINE = '''"""Baseline airflow DAG file: same DAG/task count, EmptyOperator tasks."""
import datetime as dt
from airflow.sdk import DAG, CronDataIntervalTimetable
from airflow.providers.standard.operators.empty import EmptyOperator

for i in range({accounts}):
    with DAG(
        dag_id=f"baseline_{{i}}",
        schedule=CronDataIntervalTimetable("0 10 * * *", timezone="Asia/Shanghai"),
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        catchup=True,
    ) as dag:
        for name in {tasks!r}:
            EmptyOperator(task_id=name)
    globals()[dag.dag_id] = dag
'''


def accounts_yaml(n: int) -> str:
    lines = ["accounts:"]
    for i in range(n):
        lines.append(
            f"  - {{name: acct{i:03d}, wechat_conn_id: wechat_{i}, postgres_conn_id: wechat_pg, "
            "start_date: 2026-01-01, endpoints: [legacy]}"
        )
    return "\n".join(lines) + "\n"


def sample(path: Path, env: dict[str, str]) -> tuple[float, int, int]:
    stdout = subprocess.run(
        [sys.executable, "-c", SAMPLE, str(path)], env=env, capture_output=True, text=True, check=True
    ).stdout
    line = next(x for x in stdout.splitlines() if x.startswith("RESULT "))
    _, elapsed, dags, tasks = line.split()
    return float(elapsed), int(dags), int(tasks)


def measure(accounts: int, samples: int, workdir: Path) -> dict[str, float]:
    accounts_file = workdir / f"accounts_{accounts}.yaml"
    accounts_file.write_text(accounts_yaml(accounts))
    baseline_dir = workdir / f"baseline_{accounts}"
    baseline_dir.mkdir()
    baseline = baseline_dir / "baseline_dags.py"
    baseline.write_text(BASELINE.format(accounts=accounts, tasks=list(LEGACY)))
    # Deployed code runs from byte-compiled modules (pip and the Airflow image compile them);
    # some shells set PYTHONDONTWRITEBYTECODE, which would bill the compiler to our side only.
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        "WECHAT_DATACUBE_ACCOUNTS": str(accounts_file),
        "AIRFLOW_HOME": str(workdir / "home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(REPO / "plugins"),
    }
    ours, base = [], []
    sample(REPO / "dags" / "wechat_datacube_daily.py", env)  # warm-up: writes the .pyc files
    sample(baseline, env)
    for _ in range(samples):
        t, dags, tasks = sample(REPO / "dags" / "wechat_datacube_daily.py", env)
        assert (dags, tasks) == (accounts, accounts * len(LEGACY)), (dags, tasks)
        ours.append(t)
        t, dags, tasks = sample(baseline, env)
        assert (dags, tasks) == (accounts, accounts * len(LEGACY)), (dags, tasks)
        base.append(t)
    ours_median, base_median = statistics.median(ours), statistics.median(base)
    return {"accounts": accounts, "ours_s": ours_median, "baseline_s": base_median, "ratio": ours_median / base_median}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [measure(n, args.samples, Path(tmp)) for n in (1, 50)]
    print(f"parse time, median of {args.samples} fresh-interpreter samples (DagBag load, Airflow pre-imported)")
    print(f"{'accounts':>8} {'dags/ (s)':>10} {'baseline (s)':>13} {'ratio':>6}  goal <= 1.5")
    for r in results:
        print(f"{r['accounts']:>8} {r['ours_s']:>10.4f} {r['baseline_s']:>13.4f} {r['ratio']:>6.2f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
