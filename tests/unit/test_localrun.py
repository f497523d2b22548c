"""The launcher's pure parts: the catchup window, run progress, the counts table, connection strings,
and the state directory's permissions."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from wechat_datacube_dev.localrun.postgres import ExternalPostgres, airflow_connection, sqlalchemy_url
from wechat_datacube_dev.localrun.processes import ManagedProcess
from wechat_datacube_dev.localrun.report import (
    TableCount,
    catchup_status,
    catchup_window,
    format_counts,
    last_scheduled_day,
)
from wechat_datacube_dev.localrun.state import StateDir, StateError

from wechat_datacube.dates import BEIJING


def _beijing(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BEIJING)


def test_last_scheduled_day_moves_at_ten_beijing() -> None:
    assert last_scheduled_day(_beijing(2026, 3, 10, 9, 59)) == dt.date(2026, 3, 8)
    assert last_scheduled_day(_beijing(2026, 3, 10, 10, 0)) == dt.date(2026, 3, 9)
    # 03:00 UTC on the 10th is 11:00 in Beijing.
    assert last_scheduled_day(dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)) == dt.date(2026, 3, 9)


def test_catchup_window_has_the_requested_number_of_days() -> None:
    first, last = catchup_window(14, _beijing(2026, 3, 10, 12))
    assert (first, last) == (dt.date(2026, 2, 24), dt.date(2026, 3, 9))
    assert (last - first).days + 1 == 14


def _run(day: str, state: str, run_type: str = "scheduled") -> dict[str, str]:
    # data_interval_start is D 10:00 Beijing = D 02:00 UTC, as the REST API returns it.
    return {"dag_run_id": f"{run_type}__{day}", "run_type": run_type, "state": state,
            "data_interval_start": f"{day}T02:00:00Z"}


def test_catchup_status_counts_scheduled_runs_of_the_window_only() -> None:
    runs = [
        _run("2026-03-01", "success"),
        _run("2026-03-02", "running"),
        _run("2026-03-03", "success", run_type="manual"),
        _run("2026-02-28", "success"),  # before the window
    ]
    status = catchup_status(runs, dt.date(2026, 3, 1), dt.date(2026, 3, 3))
    assert status.days == 3
    assert status.succeeded == 1
    assert not status.complete
    assert status.line() == "catchup 2026-03-01..2026-03-03: 1/3 days done (1 success, 1 running, 1 not created yet)"


def test_catchup_status_reports_failed_runs_and_completion() -> None:
    failed = catchup_status([_run("2026-03-01", "failed")], dt.date(2026, 3, 1), dt.date(2026, 3, 1))
    assert [r["dag_run_id"] for r in failed.failed_runs()] == ["scheduled__2026-03-01"]
    done = catchup_status([_run("2026-03-01", "success")], dt.date(2026, 3, 1), dt.date(2026, 3, 1))
    assert done.complete and not done.failed_runs()


def test_format_counts_shows_new_rows_only_against_earlier_counts() -> None:
    now = [TableCount("wechat.user_read", "getuserread", 112, 14, 14)]
    before = [TableCount("wechat.user_read", "getuserread", 100, 13, 13)]
    with_new = format_counts(now, 14, before).splitlines()
    assert with_new[0].split() == ["table", "endpoint", "rows", "new", "days", "with", "rows", "days", "loaded"]
    assert with_new[2].split() == ["wechat.user_read", "getuserread", "112", "+12", "14/14", "14/14"]
    assert format_counts(now, 14).splitlines()[2].split() == ["wechat.user_read", "getuserread", "112", "14/14", "14/14"]


def test_sqlalchemy_url_for_tcp_and_for_a_unix_socket() -> None:
    tcp = {"host": "db.internal", "port": "5433", "user": "etl", "password": "p@ss/word", "dbname": "meta"}
    assert sqlalchemy_url(tcp) == "postgresql+psycopg://etl:p%40ss%2Fword@db.internal:5433/meta"
    socket = {"host": "/work/.local/pg", "user": "postgres", "dbname": "meta"}
    assert sqlalchemy_url(socket) == "postgresql+psycopg://postgres@/meta?host=%2Fwork%2F.local%2Fpg"


def test_airflow_connection_keeps_libpq_options_as_extras() -> None:
    conn = json.loads(airflow_connection(
        {"host": "db", "port": "5432", "user": "etl", "password": "x", "dbname": "wechat", "sslmode": "require"}
    ))
    assert conn == {"conn_type": "postgres", "host": "db", "port": 5432, "login": "etl", "password": "x",
                    "schema": "wechat", "extra": {"sslmode": "require"}}


def test_external_server_url_names_the_admin_database_and_never_puts_the_password_in_psql() -> None:
    server = ExternalPostgres("postgresql://etl:secret@db.internal:5433/maintenance")
    assert server.admin_db == "maintenance"
    assert server.params("wechat_datacube")["dbname"] == "wechat_datacube"
    command = server.psql_command("wechat_datacube")
    assert command[0] == "psql" and "secret" not in " ".join(command)
    assert "dbname=wechat_datacube" in command[1]


# --- .local/ is the user's alone --------------------------------------------------------------

#: What the api-server does at its first start: write the generated password to a file
#: in AIRFLOW_HOME and print it to its log.
WRITES_A_PASSWORD = "import json, sys; json.dump({'admin': 'pw'}, open(sys.argv[1], 'w')); print('password pw')"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def shared_umask() -> Iterator[None]:
    """The usual umask (022), under which files are world-readable unless made private."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_state_directory_and_the_files_in_it_are_private(tmp_path: Path, shared_umask: None) -> None:
    state = StateDir(tmp_path / ".local")
    state.acquire()
    try:
        state.ensure_accounts_file(name="demo", wechat_conn_id="w", postgres_conn_id="p", start=dt.date(2026, 1, 1))
        state.secrets()
        state.write_connection({"dbname": "x"})
        api_log = state.airflow_home / "api-server.log"
        writer = ManagedProcess.start(
            "api-server", [sys.executable, "-c", WRITES_A_PASSWORD, str(state.password_file)],
            env=os.environ, log_path=api_log,
        )  # fmt: skip
        assert writer.popen.wait(timeout=30) == 0
        assert state.airflow_password("admin") == "pw" and "password pw" in api_log.read_text()

        assert mode(state.root) == 0o700
        private = [state.password_file, api_log, state.accounts_file, state.connection_file, state.root / "launcher.json",
                   state.root / "secrets.json"]
        assert {p.name: mode(p) for p in private} == {p.name: 0o600 for p in private}
    finally:
        state.release()


def test_an_existing_state_directory_is_made_private(tmp_path: Path, shared_umask: None) -> None:
    root = tmp_path / ".local"
    root.mkdir(mode=0o755)
    StateDir(root).acquire()
    assert mode(root) == 0o700


# --- make airflow: the airflow CLI on the running stack ------------------------------------------

SECRETS = {"fernet_key": "k" * 43 + "=", "jwt_secret": "jwt"}


def _stack_settings(state: StateDir) -> dict[str, str]:
    """What a started stack records: the cluster's settings with the stack's on top."""
    from wechat_datacube_dev.localrun.airflow_cluster import AirflowCluster
    from wechat_datacube_dev.localrun.stack import LocalStack, StackConfig

    stack = LocalStack(StackConfig(state.root))
    return AirflowCluster(state.airflow_home, "postgresql+psycopg://meta", stack.airflow_env(SECRETS)).settings


def test_the_local_stack_reads_naive_dates_as_beijing_and_keeps_connections_out_of_the_environment(
    tmp_path: Path,
) -> None:
    settings = _stack_settings(StateDir(tmp_path / ".local"))
    assert settings["AIRFLOW__CORE__DEFAULT_TIMEZONE"] == "Asia/Shanghai"
    assert settings["AIRFLOW_HOME"] == str(tmp_path / ".local" / "airflow")
    # Connections are rows in the metadata DB: a variable would shadow them (and a UI edit would do nothing).
    assert [k for k in settings if k.startswith("AIRFLOW_CONN_")] == []
    # Airflow 3 removed [webserver] default_ui_timezone: the UI shows the browser's zone.
    from airflow.cli.commands.config_command import CONFIGS_CHANGES, ConfigParameter

    removed = {c.config for c in CONFIGS_CHANGES if c.was_removed and not c.renamed_to}
    assert ConfigParameter("webserver", "default_ui_timezone") in removed
    assert not any("DEFAULT_UI_TIMEZONE" in k for k in settings)


def test_the_demo_connections_are_written_in_the_import_format() -> None:
    from wechat_datacube_dev.localrun.stack import PG_CONN_ID, WECHAT_CONN_ID, demo_connections

    conns = demo_connections("http://127.0.0.1:4321", {"host": "/sock", "user": "postgres", "dbname": "wechat_datacube"})
    assert set(conns) == {WECHAT_CONN_ID, PG_CONN_ID}
    assert conns[WECHAT_CONN_ID]["host"] == "http://127.0.0.1:4321" and conns[WECHAT_CONN_ID]["conn_type"] == "wechat"
    assert json.loads(conns[WECHAT_CONN_ID]["extra"]) == {"token_mode": "stable"}
    assert conns[PG_CONN_ID]["schema"] == "wechat_datacube" and conns[PG_CONN_ID]["host"] == "/sock"


def test_airflow_command_fails_clearly_when_nothing_was_ever_started(tmp_path: Path) -> None:
    from wechat_datacube_dev.localrun.commands import airflow_command

    with pytest.raises(StateError, match="no local stack was ever started in .*make run"):
        airflow_command(StateDir(tmp_path / ".local"), ["dags", "list"])


def _fake_launcher() -> subprocess.Popen[bytes]:
    """A live process whose command line looks like the launcher's (how a launcher is recognised)."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-m", "wechat_datacube_dev.localrun"])


def _record_launcher(state: StateDir, launcher_pid: int, env_pid: int) -> None:
    state.write_airflow_env(_stack_settings(state))
    recorded = json.loads(state.airflow_env_file.read_text())
    state.airflow_env_file.write_text(json.dumps({**recorded, "launcher_pid": env_pid}))
    (state.root / "launcher.json").write_text(json.dumps({"pid": launcher_pid, "groups": {}}))


def test_airflow_command_tells_a_stopped_stack_from_a_starting_one(tmp_path: Path) -> None:
    from wechat_datacube_dev.localrun.commands import airflow_command

    state = StateDir(tmp_path / ".local")
    state.write_airflow_env(_stack_settings(state))  # an earlier run's settings; no launcher now
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
    assert mode(state.airflow_env_file) == 0o600


@pytest.mark.parametrize(
    ("argv", "launcher", "cli"),
    [
        (["airflow", "dags", "list", "-o", "json"], ["airflow"], ["dags", "list", "-o", "json"]),
        (["--state-dir", "airflow", "airflow", "--help"], ["--state-dir", "airflow", "airflow"], ["--help"]),
        (["airflow"], ["airflow"], []),
        (["psql", "-c", "SELECT 1"], ["psql", "-c", "SELECT 1"], None),
    ],
)
def test_everything_after_the_airflow_command_goes_to_the_cli(
    argv: list[str], launcher: list[str], cli: list[str] | None
) -> None:
    from wechat_datacube_dev.localrun.__main__ import split_airflow_args

    assert split_airflow_args(argv) == (launcher, cli)


def test_make_airflow_without_a_stack_exits_2_with_the_reason(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wechat_datacube_dev.localrun", "--state-dir", str(tmp_path / "never"), "airflow", "dags",
         "list"], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "no local stack was ever started" in result.stderr and "make run" in result.stderr
