"""Which Celery worker ran a task: each worker's name, as Airflow's ``hostname_callable`` reports it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from wechat_datacube_dev.localrun.worker_identity import HOSTNAME_CALLABLE, WORKER_NAME_ENV, hostname


def test_a_worker_reports_its_own_name_and_anything_else_the_machines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WORKER_NAME_ENV, "celery-worker-2")
    assert hostname() == "celery-worker-2"
    monkeypatch.setenv(WORKER_NAME_ENV, "")
    assert hostname() == socket.getfqdn()
    monkeypatch.delenv(WORKER_NAME_ENV)
    assert hostname() == socket.getfqdn()


def test_airflow_resolves_the_hostname_callable_to_the_workers_name() -> None:
    """What a task process of a worker does: ``[core] hostname_callable`` through Airflow's own lookup."""
    code = "from airflow.utils.net import get_hostname; print(get_hostname())"
    env = {**os.environ, "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE, WORKER_NAME_ENV: "celery-worker-1"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "celery-worker-1"
