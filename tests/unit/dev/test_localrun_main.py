"""The launcher's command line: what goes to the airflow CLI, and ``make airflow`` without a stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


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
