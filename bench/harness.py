"""What the benchmark and reliability suites share: real services, machine facts, reports.

Both suites measure the pipeline as deployed — a real Airflow cluster
(:class:`tests.fixtures.airflow.AirflowCluster`: api-server, scheduler, dag-processor,
LocalExecutor, PostgreSQL metadata DB), the WeChat simulator over real HTTP and real
PostgreSQL data databases — so this module only wires those pieces together for a whole
session (the pytest fixtures do the same per test) and adds what a published figure
needs: the machine it ran on, medians, the CPU other processes took meanwhile, and a
Markdown writer.

Import this module before anything imports Airflow: it points ``AIRFLOW_HOME`` at a
scratch directory and sets a Fernet key, so the driver process never touches a user's
``~/airflow`` and cached tokens are encrypted as in production.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _path in (str(REPO), str(REPO / "plugins")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

_SCRATCH = Path(tempfile.mkdtemp(prefix="wdc-suite-"))
if not os.environ.get("WDC_KEEP_SCRATCH"):  # set it to keep logs and homes for a post-mortem
    atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
os.environ.setdefault("AIRFLOW_HOME", str(_SCRATCH / "airflow-home"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(REPO / "plugins"))
if "AIRFLOW__CORE__FERNET_KEY" not in os.environ:
    from cryptography.fernet import Fernet

    os.environ["AIRFLOW__CORE__FERNET_KEY"] = Fernet.generate_key().decode()

import psutil  # noqa: E402  (an Airflow dependency)
import psycopg  # noqa: E402
import yaml  # noqa: E402
from wechat_datacube_dev.connections import connection_env_var, wechat_connection_env  # noqa: E402
from wechat_datacube_dev.localrun.airflow_cluster import CelerySetup  # noqa: E402
from wechat_datacube_dev.localrun.redis_broker import RedisBroker, broker_from_env  # noqa: E402
from wechat_datacube_dev.localrun.report import last_scheduled_day  # noqa: E402,F401  (re-exported)
from wechat_datacube_dev.simulator import SimulatorServer  # noqa: E402

from tests.fixtures.airflow import AirflowCluster  # noqa: E402
from tests.fixtures.postgres import ADMIN_DSN, _create_db, _drop_db  # noqa: E402
from tests.fixtures.simulator import make_simulator_config  # noqa: E402
from wechat_datacube.dag_settings import DAILY_DAG_PREFIX  # noqa: E402

#: Retry delay the suites give the DAGs' tasks (dag_factory.RETRY_DELAY_ENV): seconds, not minutes.
SHORT_RETRY_DELAY_SECONDS = "2"


def scratch_dir(name: str) -> Path:
    """A fresh directory under this session's scratch area."""
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_SCRATCH))
    return path


def log(message: str) -> None:
    """Progress on stderr (the figures go to the report)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- numbers ---------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def fmt_list(values: Iterable[float], digits: int = 1) -> str:
    return ", ".join(f"{v:.{digits}f}" for v in values)


# --- machine and contention ------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _pg_version() -> str:
    with psycopg.connect(ADMIN_DSN) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def _git_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
    except OSError:
        return "unknown"
    return rev.strip() + (" + uncommitted changes" if dirty.strip() else "")


def machine() -> dict[str, str]:
    """Facts a reader needs to judge the figures."""
    memory = psutil.virtual_memory().total / 2**30
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus (nproc)": str(os.cpu_count()),
        "cpu model": _cpu_model(),
        "memory": f"{memory:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "apache-airflow": importlib.metadata.version("apache-airflow"),
        "apache-airflow-task-sdk": importlib.metadata.version("apache-airflow-task-sdk"),
        "postgresql server": _pg_version(),
        "psycopg": importlib.metadata.version("psycopg"),
        "commit": _git_revision(),
        "load average at start (1/5/15 min)": load,
    }


def machine_table(facts: dict[str, str]) -> str:
    return markdown_table(["", ""], [[k, v] for k, v in facts.items()])


class ForeignLoad:
    """Samples, in the background, the CPU used by processes that are not ours.

    "Ours" is this process and its descendants (the Airflow cluster, task processes,
    simulator threads). PostgreSQL's backends cannot be told apart and are left out.
    Another engineer's test suite on the same two cores shows up here, so a slow figure
    can be read against it.
    """

    def __init__(self, interval: float = 2.0) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="foreign-load", daemon=True)
        self._procs: dict[int, psutil.Process] = {}

    def _sample(self) -> float:
        me = psutil.Process()
        mine = {me.pid} | {p.pid for p in me.children(recursive=True)}
        total = 0.0
        seen = set()
        for proc in psutil.process_iter(["name"]):
            seen.add(proc.pid)
            cached = self._procs.setdefault(proc.pid, proc)
            try:
                percent = cached.cpu_percent(None)
            except psutil.Error:
                continue
            name = proc.info.get("name") or ""
            if proc.pid in mine or name.startswith("postgres"):
                continue
            total += percent
        for pid in set(self._procs) - seen:
            self._procs.pop(pid, None)
        return total

    def _run(self) -> None:
        self._sample()  # primes cpu_percent
        while not self._stop.wait(self.interval):
            try:
                self.samples.append(self._sample())
            except Exception:  # noqa: BLE001 - a monitor must never break a measurement
                pass

    def __enter__(self) -> ForeignLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def summary(self) -> str:
        if not self.samples:
            return "not sampled"
        return (
            f"median {median(self.samples):.0f}% / max {max(self.samples):.0f}% of one core "
            f"({len(self.samples)} samples)"
        )


# --- reports ---------------------------------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |")
    return "\n".join(lines)


@dataclass
class Report:
    """A Markdown document built section by section, written at the end (and on failure)."""

    title: str
    intro: str
    sections: list[str] = field(default_factory=list)

    def add(self, heading: str, body: str) -> None:
        self.sections.append(f"## {heading}\n\n{body.strip()}\n")

    def render(self) -> str:
        return f"# {self.title}\n\n{self.intro.strip()}\n\n" + "\n".join(self.sections)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render(), encoding="utf-8")


def read_report(path: Path) -> tuple[str, dict[str, str]]:
    """(intro, heading -> body) of a report :class:`Report` wrote; empty if there is none.

    For partial runs (``python -m bench --only``, ``python -m reliability --phases``), which
    rewrite their own sections and keep the others.
    """
    if not path.exists():
        return "", {}
    parts = re.split(r"^## ", path.read_text(encoding="utf-8"), flags=re.M)
    intro = re.sub(r"^# .*\n", "", parts[0]).strip()
    return intro, {p.split("\n", 1)[0].strip(): p.split("\n", 1)[1].strip() if "\n" in p else "" for p in parts[1:]}


def table_rows(markdown: str) -> dict[str, list[str]]:
    """First cell -> cells of each row of a Markdown table (header and rule included)."""
    rows = {}
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells
    return rows


def verdict(met: bool) -> str:
    return "**met**" if met else "**MISSED**"


# --- simulator accounts, databases, the cluster ----------------------------------------


@dataclass
class Account:
    """One pipeline account: an entry of the accounts file and its ``wechat`` connection."""

    name: str
    appid: str
    secret: str
    sim: SimulatorServer
    pg_conn_id: str
    start_date: dt.date
    endpoints: Sequence[str] = ("legacy",)
    #: More accounts-file fields (max_active_runs, schema, ready_deadline_hour, ...).
    options: dict[str, Any] = field(default_factory=dict)
    #: Connection extras (token_mode, read_timeout, ...).
    conn_extra: dict[str, Any] = field(default_factory=dict)

    @property
    def conn_id(self) -> str:
        return f"wechat_{self.name}"

    @property
    def dag_id(self) -> str:
        return f"{DAILY_DAG_PREFIX}{self.name}"

    def entry(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "wechat_conn_id": self.conn_id,
            "postgres_conn_id": self.pg_conn_id,
            "start_date": self.start_date.isoformat(),
            "endpoints": list(self.endpoints),
            **self.options,
        }

    def env(self) -> dict[str, str]:
        return dict([wechat_connection_env(self.conn_id, self.sim.base_url, self.appid, self.secret, **self.conn_extra)])

    def token_calls(self) -> int:
        """Requests this account's AppID made to any token endpoint (simulator counters)."""
        paths = self.sim.state.counters()["appids"].get(self.appid, {})
        return sum(n for p, n in paths.items() if p.startswith("/cgi-bin/"))

    def data_calls(self) -> dict[str, int]:
        paths = self.sim.state.counters()["appids"].get(self.appid, {})
        return {p.removeprefix("/datacube/"): n for p, n in paths.items() if p.startswith("/datacube/")}


def write_accounts_file(path: Path, accounts: Sequence[Account]) -> Path:
    path.write_text(yaml.safe_dump({"accounts": [a.entry() for a in accounts]}, sort_keys=False))
    return path


def secrets_for(appids: Iterable[str]) -> dict[str, str]:
    """A made-up app secret per AppID (long and random-looking, so a leak is unmistakable)."""
    import hashlib

    return {a: "sec-" + hashlib.sha256(f"suite|{a}".encode()).hexdigest()[:32] for a in appids}


def scratch_dag_folder(extra_files: dict[str, str] | None = None) -> Path:
    """The repo's DAG files (symlinked, so the real code is parsed) plus generated ones."""
    folder = scratch_dir("dags")
    for source in sorted((REPO / "dags").glob("*.py")):
        (folder / source.name).symlink_to(source)
    for name, text in (extra_files or {}).items():
        (folder / name).write_text(text)
    return folder


class Cluster(AirflowCluster):
    """The test suite's cluster plus what sessions need: every task instance of a run, task logs."""

    def all_task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run, mapped ones included (paged)."""
        out: list[dict[str, Any]] = []
        while True:
            page = self.api(
                "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100, "offset": len(out)}
            )["task_instances"]
            out.extend(page)
            if len(page) < 100:
                return out

    def set_paused_prefix(self, prefix: str, paused: bool) -> int:
        """(Un)pause every DAG whose id contains ``prefix`` in one API call (one UPDATE): how many.

        Fifty DAGs unpaused one request at a time would start a measurement over a second
        or two; this starts them all at the same instant. ``dag_id_pattern`` is a substring
        match (callers check the count): Airflow 3.3's PATCH /dags matches nothing when it
        is absent, even with ``dag_id_prefix_pattern``.
        """
        body = self.api("PATCH", "/dags", params={"dag_id_pattern": prefix, "limit": 1000},
                        json={"is_paused": paused})  # fmt: skip
        return int(body["total_entries"])

    def runs_of(self, dag_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Every run of the DAGs ``dag_ids`` (one batch request per 100 runs)."""
        return self._batch("/dags/~/dagRuns/list", {"dag_ids": list(dag_ids)}, "dag_runs")

    def task_instances_of(self, dag_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Every task instance of every run of the DAGs ``dag_ids`` (batch requests)."""
        return self._batch("/dags/~/dagRuns/~/taskInstances/list", {"dag_ids": list(dag_ids)}, "task_instances")

    def _batch(self, path: str, body: dict[str, Any], key: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            page = self.api("POST", path, json={**body, "page_offset": len(out), "page_limit": 100})[key]
            out.extend(page)
            if len(page) < 100:
                return out

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """The task's log of one try, as text."""
        response = self.session.get(
            f"{self.base_url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"map_index": map_index, "full_content": True},
            headers={"Accept": "application/json"},
            timeout=30,
        )
        response.raise_for_status()
        content = response.json().get("content")
        if isinstance(content, list):
            return "\n".join(
                json.dumps(item, ensure_ascii=False) if not isinstance(item, str) else item for item in content
            )
        return str(content)


@dataclass
class Lab:
    """Owns everything a session starts and tears it all down, in reverse order."""

    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def simulator(self, accounts: dict[str, str], **overrides: Any) -> SimulatorServer:
        """A simulator that knows ``accounts`` (appid -> secret); data published at 00:00 Beijing."""
        overrides.setdefault("ready_hour", 0)
        server = SimulatorServer(make_simulator_config(accounts=accounts, **overrides)).start()
        self.stack.callback(server.stop)
        return server

    def database(self, prefix: str) -> str:
        """A fresh PostgreSQL database (dropped at the end); returns its DSN."""
        name, dsn = _create_db(prefix)
        self.stack.callback(_drop_db, name)
        return dsn

    def redis_broker(self) -> RedisBroker:
        """The Redis broker for Celery clusters (named, local or embedded: ``redis_broker.broker_from_env``)."""
        broker = broker_from_env(os.environ, scratch_dir("redis"))
        self.stack.callback(broker.stop)
        return broker

    def cluster(
        self,
        env: dict[str, str],
        *,
        dag_folder: Path,
        parallelism: int = 4,
        celery: CelerySetup | None = None,
        pool_slots: int = 4,
    ) -> Cluster:
        """A running cluster on ``dag_folder``; DAGs start paused so each measurement starts on cue.

        ``celery``: CeleryExecutor with its workers (``CelerySetup``) instead of LocalExecutor.
        ``pool_slots``: size of the ``wechat_api`` pool.
        """
        cluster_env = {
            "AIRFLOW__CORE__DAGS_FOLDER": str(dag_folder),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            # Airflow's default: the test fixture's 5 s re-parses every file all the time,
            # which would bill the DAG processor's CPU to every measurement.
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            "AIRFLOW__CORE__FERNET_KEY": os.environ["AIRFLOW__CORE__FERNET_KEY"],
            **env,
        }
        cluster = Cluster(scratch_dir("airflow-home"), cluster_env, parallelism=parallelism, celery=celery)
        cluster.pool_slots = pool_slots
        self.stack.callback(cluster.stop)
        cluster.start()
        return cluster


def accounts_env(accounts: Sequence[Account], accounts_file: Path, databases: dict[str, str]) -> dict[str, str]:
    """Environment for a cluster: the accounts file, every wechat connection, every data database."""
    env = {"WECHAT_DATACUBE_ACCOUNTS": str(accounts_file)}
    for account in accounts:
        env.update(account.env())
    for conn_id, dsn in databases.items():
        env[connection_env_var(conn_id)] = dsn
    return env


def run_wall_seconds(runs: Sequence[dict[str, Any]], started: float) -> float:
    """Seconds from ``started`` (epoch) until the last of ``runs`` ended (API timestamps)."""
    ends = [dt.datetime.fromisoformat(r["end_date"]).timestamp() for r in runs if r.get("end_date")]
    return max(ends) - started


@contextlib.contextmanager
def section(name: str) -> Iterator[ForeignLoad]:
    log(f"{name}: start")
    started = time.monotonic()
    with ForeignLoad() as load:
        yield load
    log(f"{name}: done in {time.monotonic() - started:.0f} s; other processes' CPU {load.summary()}")
