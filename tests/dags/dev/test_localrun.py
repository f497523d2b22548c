"""``make demo`` and ``make run`` as a user runs them: the launcher as a subprocess, real everything.

The launcher (``python -m wechat_datacube_dev.localrun``) runs against the test PostgreSQL
server (``WECHAT_DATACUBE_PG_URL``, databases with a unique prefix, dropped afterwards)
and a free port; one state directory serves the whole module, as ``.local/`` does:

1. ``demo`` on a fresh state directory catches up 14 days, exits 0 and prints counts
   that match the database, which matches the simulator's truth;
2. ``run`` in the background reuses that state: the UI answers, the REST API (after a
   login with the password the launcher printed) lists the demo DAG and its runs
   succeeded; the connections are rows of the metadata DB (REST, the Test button), not
   environment variables; ``make airflow``'s entry point runs the CLI on the stack
   (``connections list``, ``dags list``, ``default_timezone``, naive backfill dates read
   as Beijing's); the README's REST examples, run as written, trigger both DAGs; and
   SIGINT (Ctrl-C) stops every process group it started, after which ``make airflow``
   says the stack is not running;
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
from typing import Any

import psycopg
import pytest
import requests
from wechat_datacube_dev.checksums import table_checksums
from wechat_datacube_dev.localrun.processes import group_alive
from wechat_datacube_dev.localrun.report import catchup_window, expected_dates
from wechat_datacube_dev.localrun.stack import DAG_ID, DEMO_ACCOUNT
from wechat_datacube_dev.localrun.state import DEMO_ENDPOINTS
from wechat_datacube_dev.simulator import DEMO_APPID, DEMO_SECRET, SimulatorConfig, SimulatorServer

from tests.fixtures.airflow import free_port
from tests.fixtures.postgres import ADMIN_DSN, _drop_db, _dsn_for
from tests.fixtures.truth import count_rows, stored_rows, truth_rows
from wechat_datacube.endpoints import LEGACY, expand_endpoints, get_endpoint

pytestmark = pytest.mark.scheduler

DAYS = 14
#: What the demo account pulls: the legacy six, and the user, message and interface families.
ENDPOINTS = expand_endpoints(DEMO_ENDPOINTS)
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
            sys.executable, "-m", "wechat_datacube_dev.localrun", "--state-dir", str(self.state_dir), command,
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
    """Every table's printed rows are the database's; every date it owes (a day, or a week / month
    that ended in the catchup) was loaded."""
    assert set(ENDPOINTS) >= set(LEGACY) and len(ENDPOINTS) == 17
    assert sorted(counts) == sorted(f"wechat.{get_endpoint(e).table}" for e in ENDPOINTS)
    first, last = catchup_window(DAYS)
    for endpoint in ENDPOINTS:
        table = f"wechat.{get_endpoint(endpoint).table}"
        row, owed = counts[table], len(expected_dates(endpoint, first, last))
        assert int(row["rows"]) == count_rows(dsn, table.split(".")[1]), table
        assert (row["loaded"], row["days"]) == (str(owed), str(owed)), table
        assert int(row["rows"]) > 0 or owed == 0, table
    assert counts["wechat.upstream_msg_week"]["days"] == "2"  # 14 days always end two weeks


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
    for endpoint in ENDPOINTS:
        owed = expected_dates(endpoint, first, last)
        if not owed:
            continue  # a month table when no month ended in the fourteen days
        stored = stored_rows(launcher.data_dsn, endpoint, owed[0], last, account=DEMO_ACCOUNT)
        truth = truth_rows(truth_source, DEMO_APPID, endpoint, owed[0], owed[-1], account=DEMO_ACCOUNT)
        assert stored and stored == truth, endpoint
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


@dataclass
class Running:
    """``make run`` in the background (its own session), as a person leaves it in a terminal."""

    proc: subprocess.Popen[str]
    banner: str
    base: str
    password: str
    launcher: Launcher

    def token(self) -> str:
        response = requests.post(
            f"{self.base}/auth/token", json={"username": "admin", "password": self.password}, timeout=10
        )
        assert response.status_code == 201, response.text
        return response.json()["access_token"]

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.base}/api/v2{path}", headers=headers, timeout=30, **kwargs)

    def airflow(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``make airflow ARGS="<args>"``: the launcher's ``airflow`` command on this state directory."""
        command = [sys.executable, "-m", "wechat_datacube_dev.localrun", "--state-dir", str(self.launcher.state_dir),
                   "airflow", *args]  # fmt: skip
        return subprocess.run(command, env=self.launcher.env, capture_output=True, text=True, timeout=300)

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}").json()
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(2)
        raise AssertionError(f"{dag_id} {run_id} did not finish in {timeout} s: {run}")


@pytest.fixture(scope="module")
def running(launcher: Launcher) -> Iterator[Running]:
    """Started by the first test that asks, stopped with Ctrl-C by ``test_ctrl_c_stops_...`` (killed if not)."""
    proc = subprocess.Popen(
        launcher.args("run"), env=launcher.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        out = _wait_for_line(proc, "Press Ctrl-C", timeout=300)
        password = re.search(r"login: admin / (\S+)", out)
        assert password, out
        yield Running(proc, out, f"http://127.0.0.1:{launcher.port}", password[1], launcher)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_run_in_background_serves_ui_and_api(running: Running) -> None:
    base = running.base
    ui = requests.get(f"{base}/", timeout=10)
    assert ui.status_code == 200 and "<html" in ui.text.lower()
    assert requests.get(f"{base}/api/v2/dags", timeout=10).status_code == 401  # the login is needed
    dags = running.api("GET", "/dags").json()["dags"]
    assert DAG_ID in {d["dag_id"] for d in dags}
    runs = running.api("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 100})
    scheduled = [r for r in runs.json()["dag_runs"] if r["run_type"] == "scheduled"]
    assert len(scheduled) == DAYS and {r["state"] for r in scheduled} == {"success"}
    _wait_for_line(running.proc, f"{DAYS}/{DAYS} days done", timeout=60)
    assert 'make airflow ARGS="dags list"' in running.banner


def test_connections_are_rows_of_the_metadata_db_not_environment_variables(running: Running) -> None:
    """Listed under Admin -> Connections (the REST API behind it) and not shadowed by AIRFLOW_CONN_*."""
    listed = {c["connection_id"]: c for c in running.api("GET", "/connections").json()["connections"]}
    assert {"wechat_demo", "wechat_pg"} <= set(listed)
    assert listed["wechat_demo"]["conn_type"] == "wechat" and listed["wechat_demo"]["login"] == DEMO_APPID
    assert listed["wechat_pg"]["conn_type"] == "postgres" and listed["wechat_pg"]["schema"] == running.launcher.db_prefix
    recorded = json.loads((running.launcher.state_dir / "airflow-env.json").read_text())["env"]
    assert [k for k in recorded if k.startswith("AIRFLOW_CONN_")] == []
    assert recorded["AIRFLOW__CORE__DEFAULT_TIMEZONE"] == "Asia/Shanghai"

    # The Test button (enabled on the local stack) asks the simulator with the stored row's secret.
    # An edit of the row takes effect at once: nothing shadows it, and no cached token answers for it.
    def test_button() -> dict[str, Any]:
        response = running.api("POST", "/connections/test", json={"connection_id": "wechat_demo", "conn_type": "wechat"})
        assert response.status_code == 200, response.text
        return response.json()

    def set_password(password: str) -> None:
        response = running.api(
            "PATCH", "/connections/wechat_demo", params={"update_mask": "password"},
            json={"connection_id": "wechat_demo", "conn_type": "wechat", "password": password},
        )  # fmt: skip
        assert response.status_code == 200, response.text

    assert test_button()["status"] is True
    set_password("a-wrong-secret")
    try:
        refused = test_button()
        assert refused["status"] is False and "errcode 40125" in refused["message"], refused
    finally:
        set_password(DEMO_SECRET)
    assert test_button()["status"] is True


def _json_output(stdout: str) -> Any:
    """The JSON an ``airflow ... -o json`` printed (Airflow may log a warning to stdout before it)."""
    return json.loads(next(line for line in stdout.splitlines() if line.startswith(("[", "{"))))


def test_make_airflow_runs_the_cli_on_the_running_stack(running: Running) -> None:
    connections = running.airflow("connections", "list", "-o", "json")
    assert connections.returncode == 0, connections.stderr[-3000:]
    by_id = {c["conn_id"]: c for c in _json_output(connections.stdout)}
    assert {"wechat_demo": "wechat", "wechat_pg": "postgres"}.items() <= {k: c["conn_type"] for k, c in by_id.items()}.items()
    demo = running.airflow("connections", "get", "wechat_demo", "-o", "json")
    assert demo.returncode == 0, demo.stderr[-3000:]
    simulator_port = _json_output(demo.stdout)[0]["host"].rsplit(":", 1)[1]
    assert requests.get(f"http://127.0.0.1:{simulator_port}/_sim/health", timeout=5).ok  # this run's simulator

    dags = running.airflow("dags", "list", "-o", "json")
    assert dags.returncode == 0, dags.stderr[-3000:]
    assert {DAG_ID, "wechat_datacube_backfill"} <= {d["dag_id"] for d in _json_output(dags.stdout)}

    timezone = running.airflow("config", "get-value", "core", "default_timezone")
    assert timezone.returncode == 0 and timezone.stdout.strip() == "Asia/Shanghai", timezone.stderr[-2000:]


def _dry_run(running: Running, start: str, end: str) -> list[str]:
    """Logical dates ``airflow backfill create --dry-run`` would run for [start, end] (naive: default_timezone)."""
    result = running.airflow(
        "backfill", "create", "--dag-id", DAG_ID, "--from-date", start, "--to-date", end, "--dry-run",
        "--reprocess-behavior", "completed",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return re.findall(r"(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)\+00:00", result.stdout)


def test_naive_cli_dates_are_beijing_dates(running: Running) -> None:
    """[core] default_timezone = Asia/Shanghai: what the README's backfill example relies on."""
    first, _ = catchup_window(DAYS)
    day = first.isoformat()
    # 09:00..11:00 Beijing holds the day's run (10:00 Beijing = 02:00 UTC); read as UTC it would hold none.
    assert _dry_run(running, f"{day}T09:00", f"{day}T11:00") == [f"{day} 02:00:00"]
    third = (first + dt.timedelta(days=2)).isoformat()
    assert len(_dry_run(running, day, f"{third}T10:00")) == 3  # the README's --to-date <last day>T10:00
    assert len(_dry_run(running, day, third)) == 2  # a bare --to-date is that day's midnight


README_REST = Path(__file__).resolve().parents[3] / "README.md"


def _readme_rest_blocks() -> list[str]:
    """The shell blocks of the README's section "Trigger from the REST API"."""
    text = README_REST.read_text()
    section = text.split("## Trigger from the REST API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, re.DOTALL)


def _readme_body(block: str) -> dict[str, Any]:
    body = re.search(r"-d '(\{.*\})'", block, re.DOTALL)
    assert body, block
    return json.loads(body[1])


def _shell(script: str, **env: str) -> str:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], env={**os.environ, **env}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, script + result.stdout + result.stderr
    return result.stdout


def test_the_readme_rest_examples_trigger_both_dags(running: Running) -> None:
    """The README's curl commands, run as written (the password filled in, the port this test's):
    the token request, a daily DAG run without a logical date and a backfill DAG run with its params."""
    token_block, *trigger_blocks = _readme_rest_blocks()
    assert "/auth/token" in token_block and len(trigger_blocks) == 2
    triggers = {re.search(r"/dags/(\w+)/dagRuns", b)[1]: b for b in trigger_blocks}  # type: ignore[index]
    assert set(triggers) == {DAG_ID, "wechat_datacube_backfill"}
    readme_url = "http://127.0.0.1:8080"
    assert f"AIRFLOW={readme_url}\n" in token_block
    script = token_block.replace(f"AIRFLOW={readme_url}", f"AIRFLOW={running.base}")
    script = script.replace("<the password make run printed>", running.password)
    token = _shell(script + '\necho "$TOKEN"\n').strip()
    assert token.count(".") == 2  # a JWT

    # Airflow 3 wants the field: a body without "logical_date" is refused.
    missing = running.api("POST", f"/dags/{DAG_ID}/dagRuns", json={"conf": _readme_body(triggers[DAG_ID])["conf"]})
    assert missing.status_code == 422 and "logical_date" in missing.text

    created = {}
    for dag_id, block in triggers.items():
        answer = json.loads(_shell(block, AIRFLOW=running.base, TOKEN=token))
        body = _readme_body(block)
        assert answer["dag_id"] == dag_id and answer["logical_date"] is None, answer
        assert answer["conf"] == body["conf"] and answer["state"] == "queued", answer
        created[dag_id] = answer["dag_run_id"]

    daily = running.wait_run(DAG_ID, created[DAG_ID])
    states = {t["task_id"]: t["state"] for t in running.api(
        "GET", f"/dags/{DAG_ID}/dagRuns/{created[DAG_ID]}/taskInstances").json()["task_instances"]}
    assert daily["state"] == "success", states
    assert states["getusershare"] == states["getuserread"] == "success"
    assert {states[e] for e in ENDPOINTS if e not in ("getusershare", "getuserread")} == {"skipped"}

    backfill = running.wait_run("wechat_datacube_backfill", created["wechat_datacube_backfill"])
    assert backfill["state"] == "success"
    conf = _readme_body(triggers["wechat_datacube_backfill"])["conf"]
    begin, end = dt.date.fromisoformat(conf["begin_date"]), dt.date.fromisoformat(conf["end_date"])
    stored = stored_rows(running.launcher.data_dsn, "getusershare", begin, end, account=DEMO_ACCOUNT)
    truth_source = SimulatorServer(SimulatorConfig(ready_hour=0))
    assert stored == truth_rows(truth_source, DEMO_APPID, "getusershare", begin, end, account=DEMO_ACCOUNT) != []


def test_ctrl_c_stops_every_process_group_and_make_airflow_says_so(running: Running) -> None:
    groups = json.loads((running.launcher.state_dir / "launcher.json").read_text())["groups"]
    assert set(groups) == {"api-server", "scheduler", "dag-processor", "triggerer"}
    assert all(group_alive(pgid) for pgid in groups.values())

    running.proc.send_signal(signal.SIGINT)
    assert running.proc.wait(timeout=120) == 0
    assert not any(group_alive(pgid) for pgid in groups.values())
    assert not (running.launcher.state_dir / "launcher.json").exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{running.base}/", timeout=5)
    stopped = running.airflow("dags", "list")
    assert stopped.returncode == 2 and "is not running" in stopped.stderr, stopped.stderr


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
