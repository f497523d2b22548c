"""The local stack's services with ``--executor celery``: the broker starts with them and stops with them.

Real PostgreSQL (the test server, databases with a unique prefix, dropped afterwards), the
real simulator and a real embedded Redis; Airflow itself is not started (tests/dags/test_celery.py
runs the Celery cluster). The
"local Redis" is a port where nothing answers, so the embedded broker starts without
touching the machine's own Redis.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from wechat_datacube_dev.localrun import redis_broker, stack
from wechat_datacube_dev.localrun.airflow_cluster import free_port
from wechat_datacube_dev.localrun.postgres import PG_URL_ENV
from wechat_datacube_dev.localrun.processes import group_alive
from wechat_datacube_dev.localrun.redis_broker import REDIS_URL_ENV, EmbeddedRedis, answers_ping
from wechat_datacube_dev.localrun.stack import LocalStack, StackConfig

from tests.fixtures.postgres import ADMIN_DSN, _drop_db


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StackConfig]:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    monkeypatch.setattr(stack, "broker_from_env", functools.partial(redis_broker.broker_from_env, local_url=nowhere))
    prefix = f"wdc_stack_broker_{uuid.uuid4().hex[:8]}"
    yield StackConfig(tmp_path / ".local", port=free_port(), db_prefix=prefix, env={PG_URL_ENV: ADMIN_DSN})
    _drop_db(f"{prefix}_airflow")
    _drop_db(prefix)


def test_celery_services_start_an_embedded_broker_recorded_for_cleanup_and_stop_it(config: StackConfig) -> None:
    config.executor = "celery"
    said: list[str] = []
    local = LocalStack(config, said.append)
    try:
        local.start_services()
        broker = local.broker
        assert isinstance(broker, EmbeddedRedis) and answers_ping(broker.url)
        assert broker.work_dir == local.state.redis_dir
        recorded = json.loads((local.state.root / "launcher.json").read_text())["groups"]
        assert recorded == broker.process_groups() and group_alive(recorded["redis"])
        assert f"broker:    {broker.description}" in said
        setup = local.celery_setup()
        assert setup is not None and setup.broker_url == broker.url and setup.workers == 2
    finally:
        local.stop()
    assert local.broker is None and not answers_ping(broker.url) and not group_alive(recorded["redis"])
    assert not (local.state.root / "launcher.json").exists()


def test_a_named_broker_that_does_not_answer_stops_the_start_with_a_message(config: StackConfig) -> None:
    config.executor = "celery"
    config.env = {**config.env, REDIS_URL_ENV: f"redis://:pw@127.0.0.1:{free_port()}/0"}
    local = LocalStack(config, lambda line: None)
    try:
        with pytest.raises(stack.StackError, match=f"{REDIS_URL_ENV}: no Redis answers") as refused:
            local.start_services()
        assert "pw@" not in str(refused.value)
    finally:
        local.stop()


def test_the_default_stack_starts_no_broker(config: StackConfig) -> None:
    said: list[str] = []
    local = LocalStack(config, said.append)
    try:
        local.start_services()
        assert local.broker is None and local.celery_setup() is None
        assert json.loads((local.state.root / "launcher.json").read_text())["groups"] == {}
        assert not any(line.startswith("broker:") for line in said)
        assert not local.state.redis_dir.exists()
    finally:
        local.stop()
