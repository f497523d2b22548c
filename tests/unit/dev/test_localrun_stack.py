"""The local stack's Airflow settings (LocalExecutor, or CeleryExecutor with ``--executor celery``), the
connections it keeps in the metadata DB, and the banner's executor lines."""

from __future__ import annotations

import json
from pathlib import Path

from wechat_datacube_dev.localrun.stack import LocalStack, StackConfig
from wechat_datacube_dev.localrun.state import StateDir

from tests.fixtures.localrun import stack_settings


def test_the_local_stack_reads_naive_dates_as_beijing_and_keeps_connections_out_of_the_environment(
    tmp_path: Path,
) -> None:
    settings = stack_settings(StateDir(tmp_path / ".local"))
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


class _Broker:
    """A started broker as the stack sees it (URL, description, process groups); never contacted here."""

    url = "redis://:broker-pw@127.0.0.1:6379/0"
    description = "Redis at redis://127.0.0.1:6379/0 (local server)"

    def __init__(self, groups: dict[str, int] | None = None) -> None:
        self.groups = groups or {}

    def process_groups(self) -> dict[str, int]:
        return self.groups

    def stop(self) -> None:
        """Nothing to stop."""


META = "postgresql+psycopg://airflow@db.example/wdc_airflow"


def celery_stack(root: Path) -> LocalStack:
    stack = LocalStack(StackConfig(root, executor="celery"))
    stack.broker = _Broker()
    return stack


def test_the_celery_stack_runs_celery_executor_on_its_broker_with_two_named_workers(tmp_path: Path) -> None:
    from wechat_datacube_dev.localrun.airflow_cluster import ALL_COMPONENTS, celery_settings
    from wechat_datacube_dev.localrun.worker_identity import HOSTNAME_CALLABLE

    stack = celery_stack(tmp_path / ".local")
    cluster = stack.make_cluster(META)
    settings = cluster.settings
    expected = celery_settings(_Broker.url, META)
    assert {k: settings[k] for k in expected} == expected
    assert expected["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql://airflow@db.example/wdc_airflow"
    assert cluster.worker_names == ("celery-worker-1", "celery-worker-2")
    assert cluster.components == (*ALL_COMPONENTS, "celery-worker-1", "celery-worker-2")
    assert settings["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == HOSTNAME_CALLABLE
    # A queue of this stack's own: a test cluster on the same Redis never takes its tasks.
    queue = settings["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]
    assert queue.startswith("wdc-") and queue != "default"
    assert stack.make_cluster(META).settings["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] != queue
    # The stack's own settings still apply on top.
    assert settings["AIRFLOW__CORE__DEFAULT_TIMEZONE"] == "Asia/Shanghai"


def test_the_default_stack_stays_on_local_executor_without_a_broker(tmp_path: Path) -> None:
    stack = LocalStack(StackConfig(tmp_path / ".local"))
    assert stack.config.executor == "local" and stack.celery_setup() is None
    cluster = stack.make_cluster(META)
    assert cluster.settings["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert [k for k in cluster.settings if k.startswith("AIRFLOW__CELERY__")] == []
    assert cluster.worker_names == ()


def test_the_broker_and_the_workers_are_recorded_for_cleanup_after_a_crash(tmp_path: Path) -> None:
    stack = celery_stack(tmp_path / ".local")
    stack.broker = _Broker({"redis": 4242})
    stack.state.acquire()
    try:
        stack._record_groups({"scheduler": 11, "celery-worker-1": 12, "celery-worker-2": 13})
        recorded = json.loads((stack.state.root / "launcher.json").read_text())["groups"]
    finally:
        stack.state.release()
    assert recorded == {"redis": 4242, "scheduler": 11, "celery-worker-1": 12, "celery-worker-2": 13}


def test_the_banner_names_the_executor_workers_and_broker_but_no_password(tmp_path: Path) -> None:
    from wechat_datacube_dev.localrun.commands import executor_lines

    stack = celery_stack(tmp_path / ".local")
    stack.cluster = stack.make_cluster(META)
    text = "\n".join(executor_lines(stack))
    assert "CeleryExecutor: 2 workers celery-worker-1, celery-worker-2 (2 task slots each)" in text
    assert f"queue {stack.cluster.settings['AIRFLOW__OPERATORS__DEFAULT_QUEUE']}" in text
    assert "Broker       Redis at redis://127.0.0.1:6379/0 (local server)" in text
    assert "broker-pw" not in text

    local = LocalStack(StackConfig(tmp_path / "other"))
    local.cluster = local.make_cluster(META)
    assert [line.split()[:2] for line in executor_lines(local)] == [["Executor", "LocalExecutor"]]


def test_the_demo_account_pulls_every_family_beside_legacy_and_a_kept_file_keeps_its_own_list(tmp_path: Path) -> None:
    import datetime as dt

    from wechat_datacube.endpoints import FAMILIES, LEGACY

    stack = LocalStack(StackConfig(tmp_path / ".local"))
    start = dt.date(2026, 3, 1)
    assert stack.state.ensure_accounts_file(name="demo", wechat_conn_id="wechat_demo", postgres_conn_id="wechat_pg",
                                            start=start)  # fmt: skip
    first, endpoints = stack._configured_account()  # read back through the pipeline's own accounts loader
    assert first == start
    assert endpoints == tuple(e for f in ("legacy", "user", "message", "interface") for e in FAMILIES[f])
    assert len(endpoints) == 17
    # An accounts file of an earlier run (legacy only) is kept, and what it says is what is reported.
    text = stack.state.accounts_file.read_text()
    stack.state.accounts_file.write_text(text.replace("endpoints: [legacy, user, message, interface]", "endpoints: [legacy]"))
    assert stack._configured_account() == (start, LEGACY)
    assert not stack.state.ensure_accounts_file(name="demo", wechat_conn_id="w", postgres_conn_id="p", start=start)
