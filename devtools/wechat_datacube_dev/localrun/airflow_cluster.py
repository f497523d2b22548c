"""A real Airflow deployment on this machine: components as subprocesses, driven by CLI and REST.

Used by ``make run`` / ``make demo`` and by the test and benchmark suites
(``tests/fixtures/airflow.py``), so the way Airflow is started, waited for and stopped
exists once. LocalExecutor on a PostgreSQL metadata database, exactly as a small
deployment runs it: ``airflow db migrate`` and the ``wechat_api`` pool first, then the
components (api-server, scheduler, dag-processor, optionally triggerer), each in its own
process group (:mod:`.processes`) with its output in ``<home>/<component>.log``.

With a :class:`CelerySetup` the same deployment runs CeleryExecutor instead, as the
docker-compose file does: a Redis broker, the metadata database as result backend
(:func:`celery_settings`, the one place these settings are spelled for local clusters;
a test holds docker-compose.yaml to them) and N ``airflow celery worker`` components,
``celery-worker-1`` .. ``celery-worker-N``, each its own process group with its own
name (:mod:`.worker_identity`) and log-server port.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from wechat_datacube_dev.localrun import repo_root
from wechat_datacube_dev.localrun.processes import ManagedProcess, stop_processes
from wechat_datacube_dev.localrun.worker_identity import HOSTNAME_CALLABLE, WORKER_NAME_ENV

AIRFLOW_BIN = str(Path(sys.executable).with_name("airflow"))
DEFAULT_COMPONENTS: tuple[str, ...] = ("api-server", "scheduler", "dag-processor")
ALL_COMPONENTS: tuple[str, ...] = (*DEFAULT_COMPONENTS, "triggerer")
FINISHED = ("success", "failed")


CELERY_EXECUTOR = "CeleryExecutor"
WORKER_PREFIX = "celery-worker-"


def result_backend_url(sql_alchemy_conn: str) -> str:
    """Celery's database result backend on the metadata DB: ``db+postgresql://...`` (psycopg2), as compose has it."""
    scheme, rest = sql_alchemy_conn.split("://", 1)
    if not scheme.startswith("postgresql"):
        raise ValueError(f"the Celery result backend needs a PostgreSQL metadata DB, not {scheme}://")
    return f"db+postgresql://{rest}"


def celery_settings(broker_url: str, sql_alchemy_conn: str) -> dict[str, str]:
    """Executor, broker and result backend of a Celery deployment: docker-compose.yaml sets the same three."""
    return {
        "AIRFLOW__CORE__EXECUTOR": CELERY_EXECUTOR,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend_url(sql_alchemy_conn),
    }


@dataclass(frozen=True)
class CelerySetup:
    """CeleryExecutor with ``workers`` workers of ``concurrency`` task slots each, on ``queue`` of ``broker_url``."""

    broker_url: str
    #: A queue of this cluster's own (``redis_broker.private_queue``): clusters sharing a Redis stay apart.
    queue: str
    workers: int = 2
    concurrency: int = 2

    def worker_names(self) -> tuple[str, ...]:
        return tuple(f"{WORKER_PREFIX}{n}" for n in range(1, self.workers + 1))


class ClusterError(RuntimeError):
    """A component died, did not come up, or an API call failed; the message says which and why."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, port)) == 0


class AirflowCluster:
    """api-server + scheduler + dag-processor (+ triggerer) on a Postgres metadata DB, LocalExecutor.

    ``extra_env`` is applied last and may override any default, e.g. the auth setup:
    by default every request is an admin (``simple_auth_manager_all_admins``, what tests
    want); ``make run`` turns that off and logs in with :meth:`login`.
    """

    def __init__(
        self,
        home: Path,
        sql_alchemy_conn: str,
        extra_env: Mapping[str, str] | None = None,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        parallelism: int = 4,
        pool_slots: int = 4,
        components: Sequence[str] = DEFAULT_COMPONENTS,
        celery: CelerySetup | None = None,
    ) -> None:
        self.home = home
        self.celery = celery
        self.port = port or free_port()
        self.base_url = f"http://{host}:{self.port}"
        self.pool_slots = pool_slots
        self.components = tuple(components) + (celery.worker_names() if celery else ())
        root = repo_root()
        #: What this deployment sets on top of the caller's environment: all a CLI needs to
        #: reach it (``make airflow`` runs the ``airflow`` command with these).
        self.settings: dict[str, str] = {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_alchemy_conn,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__HOST": host,
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
            # Log servers of other deployments on this machine must not clash with ours.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            **(self._celery_env(celery, sql_alchemy_conn) if celery else {}),
            **(extra_env or {}),
        }
        self.env: dict[str, str] = {**os.environ, **self.settings}
        self.procs: dict[str, ManagedProcess] = {}
        #: Where each component's log stood when it was last started (logs are appended to across restarts).
        self._log_starts: dict[str, int] = {}
        self.session = requests.Session()

    @staticmethod
    def _celery_env(celery: CelerySetup, sql_alchemy_conn: str) -> dict[str, str]:
        return {
            **celery_settings(celery.broker_url, sql_alchemy_conn),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": celery.queue,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(celery.concurrency),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE,
        }

    @property
    def worker_names(self) -> tuple[str, ...]:
        """The Celery workers' names (also the hostnames their task instances record); () on LocalExecutor."""
        return self.celery.worker_names() if self.celery else ()

    # -- lifecycle ----------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>`` against this deployment."""
        result = subprocess.run([AIRFLOW_BIN, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise ClusterError(f"airflow {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
        return result

    def prepare(self) -> None:
        """Migrate the metadata DB and create the API pool (idempotent: a second start reuses both)."""
        from wechat_datacube.dag_settings import API_POOL  # imports Airflow: not at module import

        self.home.mkdir(parents=True, exist_ok=True)
        self.cli("db", "migrate", timeout=900)
        self.cli("pools", "set", API_POOL, str(self.pool_slots), "WeChat API calls (one slot per concurrent call)")

    def start(self) -> None:
        """Prepare, then launch."""
        self.prepare()
        self.launch()

    def launch(self, on_spawned: Callable[[dict[str, int]], None] | None = None) -> None:
        """Start every component and wait until the API answers.

        ``on_spawned`` gets {component: process-group id} as soon as all are spawned, before
        the wait, so a caller can record them even if it is killed while waiting.
        """
        for name in self.components:
            self.start_component(name)
        if on_spawned is not None:
            on_spawned({name: proc.pid for name, proc in self.procs.items()})
        self._wait_for_api()
        for name in self.worker_names:
            self.wait_for_worker(name)

    def wait_for_worker(self, name: str, timeout: float = 120) -> None:
        """Wait until Celery worker ``name`` consumes from the broker: its log since this start says ``ready``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            text = self.log_since_start(name)
            if f"{name}@" in text and " ready." in text:
                return
            time.sleep(0.5)
        raise ClusterError(f"Celery worker {name} not ready in {timeout:.0f} s:\n{self.procs[name].log_tail()}")

    def kill_component(self, name: str) -> dict[str, int]:
        """Kill component ``name`` as a crashed machine would: its whole process tree at once, then forget it.

        Airflow's task runner puts each task process in a process group of its own, so the
        component's group alone would leave its tasks running, orphaned. The whole tree is
        frozen first (SIGSTOP: no part can react to another's death — report a state,
        heartbeat, commit), then every group in it gets SIGKILL. :meth:`start_component`
        brings the component back. Returns {"processes", "groups", "survivors"}.
        """
        import psutil  # an Airflow dependency; only needed here

        proc = self.procs.pop(name)
        try:
            tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        groups = set()
        for member in tree:
            with contextlib.suppress(ProcessLookupError):
                groups.add(os.getpgid(member.pid))
        for signum in (signal.SIGSTOP, signal.SIGKILL):
            for group in groups | {proc.pid}:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signum)
        proc.popen.wait(timeout=30)
        _, alive = psutil.wait_procs(tree, timeout=10)
        return {"processes": len(tree), "groups": len(groups), "survivors": len(alive)}

    def start_component(self, name: str) -> ManagedProcess:
        """(Re)start one component in a process group of its own; its log is appended to."""
        args = [AIRFLOW_BIN, name]
        env = self.env
        if name == "api-server":
            args += ["--port", str(self.port), "--host", self.env["AIRFLOW__API__HOST"]]
        elif name in self.worker_names:
            assert self.celery is not None
            args = [AIRFLOW_BIN, "celery", "worker", "--celery-hostname", f"{name}@%h", "--queues", self.celery.queue,
                    "--concurrency", str(self.celery.concurrency)]  # fmt: skip
            # Its own name for the task instances it runs, its own port for serving their logs.
            env = {**self.env, WORKER_NAME_ENV: name, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
        log_path = self.home / f"{name}.log"
        self._log_starts[name] = log_path.stat().st_size if log_path.exists() else 0
        self.procs[name] = ManagedProcess.start(name, args, env=env, log_path=log_path)
        return self.procs[name]

    def log_since_start(self, name: str) -> str:
        """What component ``name`` has logged since it was last started."""
        with self.procs[name].log_path.open("rb") as log:
            log.seek(self._log_starts.get(name, 0))
            return log.read().decode(errors="replace")

    def _wait_for_api(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if self.session.get(f"{self.base_url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise ClusterError(f"api-server did not come up in {timeout:.0f} s:\n{self.log_tail('api-server')}")

    def check_alive(self) -> None:
        """Raise if a component has exited (with the end of its log)."""
        for name, proc in self.procs.items():
            if not proc.running():
                raise ClusterError(f"{name} exited with {proc.popen.returncode}:\n{proc.log_tail()}")

    def log_tail(self, name: str, chars: int = 4000) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def stop(self) -> None:
        """Stop every component's whole process group (SIGTERM, then SIGKILL after 30 s)."""
        # Scheduler first, so no new task is started while the API server goes away.
        order = sorted(self.procs.values(), key=lambda p: p.name != "scheduler")
        stop_processes(order, grace=30)
        self.session.close()

    # -- REST ---------------------------------------------------------------------

    def login(self, username: str, password: str) -> None:
        """Get a JWT from the simple auth manager and send it with every later API call."""
        response = self.session.post(
            f"{self.base_url}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        if response.status_code >= 400:
            raise ClusterError(f"login as {username!r} failed: {response.status_code} {response.text[:500]}")
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=30, **kwargs)
        if response.status_code >= 400:
            raise ClusterError(f"{method} {path} -> {response.status_code}: {response.text[:2000]}")
        return response.json() if response.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 240) -> dict[str, Any]:
        """Wait until the DAG processor has serialized ``dag_id``; raise with the import errors if not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            response = self.session.get(f"{self.base_url}/api/v2/dags/{dag_id}", timeout=10)
            if response.status_code == 200:
                return response.json()
            time.sleep(2)
        errors = self.session.get(f"{self.base_url}/api/v2/importErrors", timeout=10).text
        raise ClusterError(
            f"DAG {dag_id} never appeared; import errors: {errors[:3000]}\n{self.log_tail('dag-processor')}"
        )

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 1000, "order_by": "logical_date"})["dag_runs"]

    def wait_for_runs(
        self, dag_id: str, *, count: int, timeout: float = 600, run_type: str | None = None, poll: float = 3.0
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` runs (of ``run_type``) exist and all of them are finished.

        ``poll``: seconds between checks (the benchmarks measure wall time with 1 s).
        """
        deadline = time.monotonic() + timeout
        runs: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            self.check_alive()
            runs = [r for r in self.dag_runs(dag_id) if run_type is None or r["run_type"] == run_type]
            if len(runs) >= count and all(r["state"] in FINISHED for r in runs):
                return runs
            time.sleep(poll)
        states = json.dumps([(r["run_id"], r["state"]) for r in runs])
        raise ClusterError(f"runs of {dag_id} not finished in {timeout}s: {states}\n{self.log_tail('scheduler')}")

    def trigger(self, dag_id: str, conf: dict[str, Any], logical_date: str | None = None) -> dict[str, Any]:
        """Create a run of ``dag_id`` through the REST API (no ``logical_date``: a run without one); the run."""
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": logical_date, "conf": conf})

    def wait_run(self, dag_id: str, run_id: str, *, timeout: float = 600, poll: float = 1.0) -> dict[str, Any]:
        """Wait until run ``run_id`` has finished (success or failed) and return it; ClusterError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            run = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in FINISHED:
                return run
            time.sleep(poll)
        raise ClusterError(f"run {dag_id}/{run_id} did not finish in {timeout:.0f} s\n{self.log_tail('scheduler')}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})[
            "task_instances"
        ]
