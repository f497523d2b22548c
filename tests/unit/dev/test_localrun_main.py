"""The launcher's command line: what goes to the airflow CLI, and ``make airflow`` without a stack."""

from __future__ import annotations

import os
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


@pytest.mark.parametrize("command", ["run", "demo"])
def test_executor_is_local_unless_asked_for_celery(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from wechat_datacube_dev.localrun.__main__ import ENV_EXECUTOR, build_parser, stack_config

    monkeypatch.delenv(ENV_EXECUTOR, raising=False)
    assert build_parser().parse_args([command]).executor == "local"
    args = build_parser().parse_args([command, "--executor", "celery"])
    assert stack_config(args, Path("/tmp/state")).executor == "celery"
    monkeypatch.setenv(ENV_EXECUTOR, "celery")  # like the other options, from the environment too
    assert build_parser().parse_args([command]).executor == "celery"
    assert build_parser().parse_args([command, "--executor", "local"]).executor == "local"


def test_an_unknown_executor_is_refused_from_the_command_line_and_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from wechat_datacube_dev.localrun.__main__ import ENV_EXECUTOR, build_parser, main

    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["run", "--executor", "kubernetes"])
    assert refused.value.code == 2 and "invalid choice: 'kubernetes'" in capsys.readouterr().err
    monkeypatch.setenv(ENV_EXECUTOR, "Celery")
    with pytest.raises(SystemExit) as refused:
        main(["demo"])
    assert refused.value.code == 2 and f"{ENV_EXECUTOR} must be one of local, celery" in capsys.readouterr().err


def test_the_launcher_offers_the_executors_the_stack_knows() -> None:
    from wechat_datacube_dev.localrun.__main__ import EXECUTORS
    from wechat_datacube_dev.localrun.stack import EXECUTORS as STACK_EXECUTORS

    assert EXECUTORS == STACK_EXECUTORS


def test_make_run_and_demo_pass_the_executor_local_by_default() -> None:
    from wechat_datacube_dev.localrun.__main__ import ENV_EXECUTOR

    repo = Path(__file__).resolve().parents[3]
    env = {k: v for k, v in os.environ.items() if k not in (ENV_EXECUTOR, "EXECUTOR")}

    def dry_run(*args: str) -> list[str]:
        command = ["make", "-n", "run", "demo", *args]
        result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return [line for line in result.stdout.splitlines() if "wechat_datacube_dev.localrun" in line]

    assert [line.split("localrun ", 1)[1] for line in dry_run()] == ["run --executor local", "demo --executor local"]
    assert [line.split("localrun ", 1)[1] for line in dry_run("EXECUTOR=celery")] == [
        "run --executor celery", "demo --executor celery"
    ]  # fmt: skip
