"""``make demo`` and ``make run`` as a user runs them: the launcher as a subprocess, real everything.

The launcher (``python -m wechat_datacube.localrun``) runs against the test PostgreSQL
server (``WECHAT_DATACUBE_PG_URL``, databases with a unique prefix, dropped afterwards)
and a free port; one state directory serves the whole module, as ``.local/`` does:

1. ``demo`` on a fresh state directory catches up 14 days, exits 0 and prints counts
   that match the database, which matches the simulator's truth;
2. ``run`` in the background reuses that state: the UI answers, the REST API (after a
   login with the password the launcher printed) lists the demo DAG and its runs
   succeeded, and SIGINT (Ctrl-C) stops every process group it started;
3. ``demo`` again exits 0 and adds no rows: same counts, same content.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import requests

from tests.fixtures.airflow import free_port
from tests.fixtures.postgres import ADMIN_DSN, _drop_db, _dsn_for
from tests.fixtures.truth import count_rows, stored_rows, table_checksums, truth_rows
from wechat_datacube.endpoints import LEGACY, get_endpoint
from wechat_datacube.localrun.processes import group_alive
from wechat_datacube.localrun.report import catchup_window
from wechat_datacube.localrun.stack import DAG_ID, DEMO_ACCOUNT
from wechat_datacube.simulator import DEMO_APPID, SimulatorConfig, SimulatorServer

pytestmark = pytest.mark.scheduler

DAYS = 14
ROW = re.compile(
    r"^(?P<table>wechat\.\w+)\s+(?P<endpoint>\w+)\s+(?P<rows>\d+)(?:\s+(?P<new>[+-]\d+))?\s+"
    r"(?P<with_rows>\d+)/(?P<days>\d+)\s+(?P<loaded>\d+)/\d+$"
)


@dataclass
class Launcher:
    state_dir: Path
    db_prefix: str
    port: int

    @property
    def data_dsn(self) -> str:
        return _dsn_for(self.db_prefix)

    def args(self, command: str, *extra: str) -> list[str]:
        return [
            sys.executable, "-m", "wechat_datacube.localrun", "--state-dir", str(self.state_dir), command,
            "--port", str(self.port), "--db-prefix", self.db_prefix, "--days", str(DAYS), *extra,
        ]  # fmt: skip

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "WECHAT_DATACUBE_PG_URL": ADMIN_DSN}

    def demo(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.args("demo", "--timeout", "900"), env=self.env, capture_output=True, text=True, timeout=1200
        )


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    prefix = f"wdc_localrun_{uuid.uuid4().hex[:8]}"
    yield Launcher(tmp_path_factory.mktemp("local-state"), prefix, free_port())
    _drop_db(f"{prefix}_airflow")
    _drop_db(prefix)


def printed_counts(stdout: str) -> dict[str, dict[str, str]]:
    return {m["table"]: m.groupdict() for line in stdout.splitlines() if (m := ROW.match(line.strip()))}


def assert_counts_match_database(counts: dict[str, dict[str, str]], dsn: str) -> None:
    assert sorted(counts) == sorted(f"wechat.{get_endpoint(e).table}" for e in LEGACY)
    for table, row in counts.items():
        assert int(row["rows"]) == count_rows(dsn, table.split(".")[1]) > 0, table
        assert (row["loaded"], row["days"]) == (str(DAYS), str(DAYS)), table


def test_demo_catches_up_fourteen_days_and_prints_counts(launcher: Launcher) -> None:
    result = launcher.demo()

    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "DEMO OK" in result.stdout
    assert f"{DAYS}/{DAYS} daily runs of {DAG_ID} succeeded" in result.stdout
    counts = printed_counts(result.stdout)
    assert_counts_match_database(counts, launcher.data_dsn)
    assert all(int(row["new"]) == int(row["rows"]) for row in counts.values())  # all loaded by this demo
    # What was stored is exactly what the simulator serves for those days.
    first, last = catchup_window(DAYS)
    truth_source = SimulatorServer(SimulatorConfig(ready_hour=0))  # same seed: same data; never started
    for endpoint in LEGACY:
        stored = stored_rows(launcher.data_dsn, endpoint, first, last, account=DEMO_ACCOUNT)
        truth = truth_rows(truth_source, DEMO_APPID, endpoint, first, last, account=DEMO_ACCOUNT)
        assert stored == truth, endpoint
    # No secret in what a user sees or in the stored responses.
    assert "demo-app-secret" not in result.stdout + result.stderr
    with psycopg.connect(launcher.data_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM wechat.api_response WHERE payload::text LIKE '%access_token%'")\
            .fetchone()[0] == 0
    # The state directory is private: the admin password, and the api-server log that prints it.
    home = launcher.state_dir / "airflow"
    assert stat.S_IMODE(launcher.state_dir.stat().st_mode) == 0o700
    for secret in (home / "simple_auth_manager_passwords.json.generated", home / "api-server.log"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret


def _wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float) -> str:
    """Read the launcher's output until ``needle``; return all of it."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            seen.append(line)
            if needle in line:
                return "".join(seen)
            continue
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"launcher never printed {needle!r}:\n{''.join(seen)[-6000:]}")


def test_run_in_background_serves_ui_and_api_and_stops_on_ctrl_c(launcher: Launcher) -> None:
    proc = subprocess.Popen(
        launcher.args("run"), env=launcher.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        out = _wait_for_line(proc, "Press Ctrl-C", timeout=300)
        base = f"http://127.0.0.1:{launcher.port}"
        password = re.search(r"login: admin / (\S+)", out)
        assert password, out

        ui = requests.get(f"{base}/", timeout=10)
        assert ui.status_code == 200 and "<html" in ui.text.lower()
        assert requests.get(f"{base}/api/v2/dags", timeout=10).status_code == 401  # the login is needed
        token = requests.post(
            f"{base}/auth/token", json={"username": "admin", "password": password[1]}, timeout=10
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        dags = requests.get(f"{base}/api/v2/dags", headers=auth, timeout=10).json()["dags"]
        assert DAG_ID in {d["dag_id"] for d in dags}
        runs = requests.get(f"{base}/api/v2/dags/{DAG_ID}/dagRuns", headers=auth, params={"limit": 100}, timeout=10)
        scheduled = [r for r in runs.json()["dag_runs"] if r["run_type"] == "scheduled"]
        assert len(scheduled) == DAYS and {r["state"] for r in scheduled} == {"success"}
        _wait_for_line(proc, f"{DAYS}/{DAYS} days done", timeout=60)

        groups = json.loads((launcher.state_dir / "launcher.json").read_text())["groups"]
        assert set(groups) == {"api-server", "scheduler", "dag-processor", "triggerer"}
        assert all(group_alive(pgid) for pgid in groups.values())

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not any(group_alive(pgid) for pgid in groups.values())
    assert not (launcher.state_dir / "launcher.json").exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/", timeout=5)


def test_second_demo_reuses_the_state_and_adds_no_rows(launcher: Launcher) -> None:
    before = table_checksums(launcher.data_dsn)
    started = dt.datetime.now(dt.UTC)

    result = launcher.demo()

    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    counts = printed_counts(result.stdout)
    assert_counts_match_database(counts, launcher.data_dsn)
    assert {row["new"] for row in counts.values()} == {"+0"}
    assert table_checksums(launcher.data_dsn) == before
    assert "created database" not in result.stdout  # the databases were reused
    assert dt.datetime.now(dt.UTC) - started < dt.timedelta(minutes=5)
