"""``make airflow`` on the running stack (and its refusals when none runs); how ``run`` and ``demo`` end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from wechat_datacube_dev.localrun import CheckoutNotFoundError
from wechat_datacube_dev.localrun.airflow_cluster import ClusterError
from wechat_datacube_dev.localrun.stack import StackError
from wechat_datacube_dev.localrun.state import StateDir, StateError

from tests.fixtures.localrun import file_mode, stack_settings


def test_airflow_command_fails_clearly_when_nothing_was_ever_started(tmp_path: Path) -> None:
    from wechat_datacube_dev.localrun.commands import airflow_command

    with pytest.raises(StateError, match="no local stack was ever started in .*make run"):
        airflow_command(StateDir(tmp_path / ".local"), ["dags", "list"])


def _fake_launcher() -> subprocess.Popen[bytes]:
    """A live process whose command line looks like the launcher's (how a launcher is recognised)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-m", "wechat_datacube_dev.localrun"])


def _record_launcher(state: StateDir, launcher_pid: int, env_pid: int) -> None:
    state.write_airflow_env(stack_settings(state))
    recorded = json.loads(state.airflow_env_file.read_text())
    state.airflow_env_file.write_text(json.dumps({**recorded, "launcher_pid": env_pid}))
    (state.root / "launcher.json").write_text(json.dumps({"pid": launcher_pid, "groups": {}}))


def test_airflow_command_tells_a_stopped_stack_from_a_starting_one(tmp_path: Path) -> None:
    from wechat_datacube_dev.localrun.commands import airflow_command

    state = StateDir(tmp_path / ".local")
    state.write_airflow_env(stack_settings(state))  # an earlier run's settings; no launcher now
    with pytest.raises(StateError, match="is not running"):
        airflow_command(state, ["dags", "list"])
    launcher = _fake_launcher()
    try:
        _record_launcher(state, launcher.pid, env_pid=launcher.pid + 100_000)  # the file is an earlier run's
        with pytest.raises(StateError, match="still starting"):
            airflow_command(state, ["dags", "list"])
    finally:
        launcher.kill()
        launcher.wait()
    with pytest.raises(StateError, match="is not running"):  # the launcher died
        airflow_command(state, ["dags", "list"])


def test_airflow_command_runs_the_cli_with_the_running_stacks_settings(tmp_path: Path) -> None:
    from wechat_datacube_dev.localrun.airflow_cluster import AIRFLOW_BIN
    from wechat_datacube_dev.localrun.commands import airflow_command

    state = StateDir(tmp_path / ".local")
    launcher = _fake_launcher()
    try:
        _record_launcher(state, launcher.pid, env_pid=launcher.pid)
        caller = {"PATH": "/usr/bin", "AIRFLOW_HOME": "/elsewhere", "AIRFLOW_CONN_WECHAT_DEMO": "postgres://shadow"}
        argv, env = airflow_command(state, ["connections", "list", "-o", "json"], caller)
    finally:
        launcher.kill()
        launcher.wait()
    assert argv == [AIRFLOW_BIN, "connections", "list", "-o", "json"]
    assert env["PATH"] == "/usr/bin" and env["AIRFLOW_HOME"] == str(state.airflow_home)
    assert env["AIRFLOW__CORE__DEFAULT_TIMEZONE"] == "Asia/Shanghai"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg://meta"
    assert "AIRFLOW_CONN_WECHAT_DEMO" not in env  # would shadow the stack's connection
    assert file_mode(state.airflow_env_file) == 0o600


class _Stack:
    """Stands in for a LocalStack: only its stop is called on the way out."""

    stopped = False

    def stop(self) -> None:
        self.stopped = True


@pytest.mark.parametrize(
    ("error", "status", "said"),
    [
        (None, 0, None),
        (KeyboardInterrupt(), 0, "interrupted: stopping everything"),
        (CheckoutNotFoundError("no checkout here"), 2, "ERROR: no checkout here"),
        (StackError("port 8080 is taken"), 2, "ERROR: port 8080 is taken"),
        (StateError("state directory in use"), 2, "ERROR: state directory in use"),
        (ClusterError("scheduler exited"), 1, "DEMO FAILED: scheduler exited"),
    ],
)
def test_every_way_run_and_demo_end_stops_the_stack_and_says_why(
    error: BaseException | None, status: int, said: str | None
) -> None:
    from wechat_datacube_dev.localrun.commands import _supervised

    lines: list[str] = []
    stack = _Stack()

    def body() -> int:
        if error is not None:
            raise error
        return 0

    code = _supervised(stack, lines.append, body, interrupted=("\ninterrupted: stopping everything ...", 0),  # type: ignore[arg-type]
                       failure="DEMO FAILED")  # fmt: skip
    assert code == status
    assert stack.stopped and lines[-1] == "stopped."
    said_before_stopping = lines[:-1]
    if said is None:
        assert said_before_stopping == []
    else:
        assert len(said_before_stopping) == 1 and said in said_before_stopping[0]


def test_the_demo_judges_each_table_by_the_dates_it_owes() -> None:
    from wechat_datacube_dev.localrun.commands import demo_problem
    from wechat_datacube_dev.localrun.report import TableCount

    daily = TableCount("wechat.user_summary", "getusersummary", 150, 14, 14, 14)
    # No month ended in the catchup: an empty month table owes nothing.
    month = TableCount("wechat.upstream_msg_month", "getupstreammsgmonth", 0, 0, 0, 0)
    assert demo_problem([daily, month]) is None
    # An empty week is done (load_log 'empty') without rows, but the table must hold rows of some period.
    assert demo_problem([daily, TableCount("wechat.upstream_msg_week", "getupstreammsgweek", 5, 1, 2, 2)]) is None
    half_week = TableCount("wechat.upstream_msg_week", "getupstreammsgweek", 5, 1, 1, 2)
    assert demo_problem([daily, half_week]) == "tables without rows -; dates not loaded in ['wechat.upstream_msg_week']"
    no_rows = TableCount("wechat.interface_summary", "getinterfacesummary", 0, 0, 14, 14)
    assert demo_problem([no_rows, daily]) == "tables without rows ['wechat.interface_summary']; dates not loaded in -"
