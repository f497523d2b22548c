"""B3: parse time of the whole ``dags/`` folder versus an EmptyOperator baseline of the same shape.

For 1 and 50 configured accounts this writes a baseline folder with one file per file of
``dags/``, each creating the same DAGs with the same tasks, schedules and params but
EmptyOperator tasks:

* ``baseline_daily.py`` — one DAG per account, six tasks, the daily timetable;
* ``baseline_backfill.py`` — one manual DAG with the same six params and a
  plan → load (mapped over plan's output) → report chain.

The DAG processor parses each file in its own process, with Airflow already imported and
the Airflow modules the file names pre-imported (``parsing_pre_import_modules``). So each
sample times ``DagBag`` loading one file in a fresh interpreter prepared the same way, and
a folder's parse time is the sum over its files. Ours and the baseline alternate, so drift
hits both; one discarded warm-up per file writes the byte-code caches, as a deployment
has them. Prints medians and the ratio; the goal is <= 1.5x.

    python bench/parse_time.py [--samples 9]
"""

from __future__ import annotations

import argparse
import ast
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

GOAL = 1.5

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

BASELINE_DAILY = '''"""Baseline of dags/wechat_datacube_daily.py: same DAG/task count, EmptyOperator tasks."""
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

BASELINE_BACKFILL = '''"""Baseline of dags/wechat_datacube_backfill.py: same tasks and params, EmptyOperator tasks."""
import datetime as dt
from airflow.sdk import DAG, Param
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG(
    dag_id="baseline_backfill",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    params={{
        "accounts": Param([], type="array", items={{"type": "string"}}),
        "begin_date": Param(None, type=["null", "string"], format="date"),
        "end_date": Param(None, type=["null", "string"], format="date"),
        "endpoints": Param([], type="array", items={{"type": "string", "enum": {endpoints!r}}}),
        "reprocess": Param("missing", type="string", enum=["missing", "all"]),
        "windows_per_task": Param(15, type="integer", minimum=1),
    }},
) as dag:
    plan = EmptyOperator(task_id="plan")
    load = EmptyOperator.partial(task_id="load").expand_kwargs(plan.output)
    report = EmptyOperator(task_id="report", trigger_rule="all_done")
    load >> report
'''


#: file of dags/ -> the baseline file of the same shape
BASELINE_OF = {"wechat_datacube_daily.py": "baseline_daily.py", "wechat_datacube_backfill.py": "baseline_backfill.py"}


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


def folder_sample(files: list[Path], env: dict[str, str], per_file: dict[str, list[float]] | None = None
                  ) -> tuple[float, int, int]:
    """One parse of every file of a folder, each in its own interpreter: (seconds summed, DAGs, tasks)."""
    total, dags, tasks = 0.0, 0, 0
    for path in files:
        t, d, n = sample(path, env)
        total, dags, tasks = total + t, dags + d, tasks + n
        if per_file is not None:
            per_file.setdefault(path.name, []).append(t)
    return total, dags, tasks


def baseline_folder(accounts: int, workdir: Path) -> list[Path]:
    folder = workdir / f"baseline_{accounts}"
    folder.mkdir()
    (folder / "baseline_daily.py").write_text(BASELINE_DAILY.format(accounts=accounts, tasks=list(LEGACY)))
    (folder / "baseline_backfill.py").write_text(
        BASELINE_BACKFILL.format(endpoints=["legacy", "replacement", *LEGACY])
    )
    return sorted(folder.glob("*.py"))


def measure(accounts: int, samples: int, workdir: Path) -> dict[str, float]:
    accounts_file = workdir / f"accounts_{accounts}.yaml"
    accounts_file.write_text(accounts_yaml(accounts))
    ours_files = sorted((REPO / "dags").glob("*.py"))
    base_files = baseline_folder(accounts, workdir)
    # Deployed code runs from byte-compiled modules (pip and the Airflow image compile them);
    # some shells set PYTHONDONTWRITEBYTECODE, which would bill the compiler to our side only.
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        "WECHAT_DATACUBE_ACCOUNTS": str(accounts_file),
        "AIRFLOW_HOME": str(workdir / "home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(REPO / "plugins"),
    }
    folder_sample(ours_files, env)  # warm-up: writes the .pyc files
    folder_sample(base_files, env)
    ours, base = [], []
    ours_files_t: dict[str, list[float]] = {}
    base_files_t: dict[str, list[float]] = {}
    shape = (accounts + 1, accounts * len(LEGACY) + 3)  # the daily DAGs + the backfill DAG
    for _ in range(samples):
        t, dags, tasks = folder_sample(ours_files, env, ours_files_t)
        assert (dags, tasks) == shape, (dags, tasks)
        ours.append(t)
        t, dags, tasks = folder_sample(base_files, env, base_files_t)
        assert (dags, tasks) == shape, (dags, tasks)
        base.append(t)
    ours_median, base_median = statistics.median(ours), statistics.median(base)
    return {
        "accounts": accounts,
        "dags": shape[0],
        "tasks": shape[1],
        "ours_s": ours_median,
        "baseline_s": base_median,
        "ratio": ours_median / base_median,
        "ours_samples": ours,
        "baseline_samples": base,
        # file of dags/ -> (its median, the median of the baseline file standing for it)
        "per_file": {
            name: (statistics.median(ours_files_t[name]), statistics.median(base_files_t[base_name]))
            for name, base_name in BASELINE_OF.items()
        },
    }


IMPORT_SAMPLE = """
import importlib, sys, time
import airflow.sdk  # noqa: F401
from airflow.dag_processing.dagbag import DagBag  # noqa: F401
from airflow.utils.file import iter_airflow_imports
for module in iter_airflow_imports(sys.argv[1]):
    importlib.import_module(module)
t = time.perf_counter()
for module in sys.argv[2:]:
    importlib.import_module(module)
print("RESULT", time.perf_counter() - t)
"""


def package_imports(path: Path) -> list[str]:
    """The ``wechat_datacube`` modules a DAG file imports at its top level, in order."""
    tree = ast.parse(path.read_text())
    names = [a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names]
    names += [n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.module]
    return [m for m in names if m.split(".")[0] == "wechat_datacube"]


def fixed_costs(samples: int, workdir: Path) -> dict[str, float]:
    """Per file of ``dags/``: median seconds to import the package modules it names.

    Prepared like a parse sample (fresh interpreter, Airflow and the file's Airflow imports
    loaded), so this is exactly what a parse of that file pays and its baseline does not.
    """
    env = {
        **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
        "AIRFLOW_HOME": str(workdir / "home"),
        "PYTHONPATH": str(REPO / "plugins"),
    }
    out = {}
    for path in sorted((REPO / "dags").glob("*.py")):
        times = []
        for _ in range(samples):
            stdout = subprocess.run(
                [sys.executable, "-c", IMPORT_SAMPLE, str(path), *package_imports(path)],
                env=env, capture_output=True, text=True, check=True,
            ).stdout
            times.append(float(next(x for x in stdout.splitlines() if x.startswith("RESULT ")).split()[1]))
        out[path.name] = statistics.median(times)
    return out


def run(samples: int, sizes: tuple[int, ...] = (1, 50)) -> dict[str, object]:
    """Folder parse times for each size, and the fixed import costs behind them."""
    with tempfile.TemporaryDirectory() as tmp:
        return {
            "sizes": [measure(n, samples, Path(tmp)) for n in sizes],
            "fixed": fixed_costs(samples, Path(tmp)),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=9)
    args = parser.parse_args()
    results = run(args.samples)
    print(f"parse time of dags/, median of {args.samples} samples (per file: fresh interpreter, DagBag load)")
    print(f"{'accounts':>8} {'dags/ (s)':>10} {'baseline (s)':>13} {'ratio':>6}  goal <= {GOAL}")
    for r in results["sizes"]:
        print(f"{r['accounts']:>8} {r['ours_s']:>10.4f} {r['baseline_s']:>13.4f} {r['ratio']:>6.2f}")
    for name, seconds in results["fixed"].items():
        print(f"package modules imported by {name}: {seconds * 1000:.1f} ms")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
