"""The launcher's pure parts: the catchup window, run progress, the counts table, connection strings,
and the state directory's permissions."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wechat_datacube.errors import BEIJING
from wechat_datacube.localrun.postgres import ExternalPostgres, airflow_connection, sqlalchemy_url
from wechat_datacube.localrun.processes import ManagedProcess
from wechat_datacube.localrun.report import (
    TableCount,
    catchup_status,
    catchup_window,
    format_counts,
    last_scheduled_day,
)
from wechat_datacube.localrun.state import StateDir


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
