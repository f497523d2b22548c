"""The local stack's Airflow settings and the connections it keeps in the metadata DB."""

from __future__ import annotations

import json
from pathlib import Path

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
