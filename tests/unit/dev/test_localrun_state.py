"""``.local/`` is the user's alone: the state directory and the files in it are private."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from wechat_datacube_dev.localrun.processes import ManagedProcess
from wechat_datacube_dev.localrun.state import StateDir

from tests.fixtures.localrun import file_mode

#: What the api-server does at its first start: write the generated password to a file
#: in AIRFLOW_HOME and print it to its log.
WRITES_A_PASSWORD = "import json, sys; json.dump({'admin': 'pw'}, open(sys.argv[1], 'w')); print('password pw')"


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

        assert file_mode(state.root) == 0o700
        private = [state.password_file, api_log, state.accounts_file, state.connection_file, state.root / "launcher.json",
                   state.root / "secrets.json"]
        assert {p.name: file_mode(p) for p in private} == {p.name: 0o600 for p in private}
    finally:
        state.release()


def test_an_existing_state_directory_is_made_private(tmp_path: Path, shared_umask: None) -> None:
    root = tmp_path / ".local"
    root.mkdir(mode=0o755)
    StateDir(root).acquire()
    assert file_mode(root) == 0o700
