"""A broken accounts file as a running Airflow shows it: REST API v2, which the UI reads.

A real cluster (api-server, dag-processor, scheduler; Postgres metadata DB) parses the
repo's DAG folder with an accounts file holding one good account and broken ones. The
broken accounts are in the DAG list (tagged ``config-error``, described), the good
account's DAG is active, there is no import error that would have made it stale, and
triggering a broken account's DAG fails with the message. Then the file stops being YAML
at all: one DAG names the file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.airflow import AirflowCluster
from wechat_datacube.dag_settings import DAILY_DAG_PREFIX

pytestmark = pytest.mark.scheduler

GOOD = f"{DAILY_DAG_PREFIX}ui_good"
BROKEN = f"{DAILY_DAG_PREFIX}ui_broken"
NAMELESS = f"{DAILY_DAG_PREFIX}invalid-entry-3"
FILE_ERROR = f"{DAILY_DAG_PREFIX}accounts-file-error"
ACCOUNTS = (
    "accounts:\n"
    # A start date in the future: the good DAG is active but runs nothing meanwhile.
    "  - {name: ui_good, wechat_conn_id: wechat_x, postgres_conn_id: pg_x, start_date: 2099-01-01, endpoints: [legacy]}\n"
    "  - {name: ui_broken, wechat_conn_id: wechat_x, postgres_conn_id: pg_x, start_date: 2026-02-30, endpoints: [legacy]}\n"
    "  - {name: UI Shop, wechat_conn_id: wechat_x, postgres_conn_id: pg_x, start_date: 2026-01-01, endpoints: [legacy]}\n"
)


@pytest.fixture(scope="module")
def cluster(airflow_cluster_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AirflowCluster, Path]]:
    accounts = tmp_path_factory.mktemp("ui-accounts") / "accounts.yaml"
    accounts.write_text(ACCOUNTS)
    yield airflow_cluster_factory({"WECHAT_DATACUBE_ACCOUNTS": str(accounts)}), accounts


def wait_for(what: str, check: Any, timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}")


def tags(dag: dict[str, Any]) -> set[str]:
    return {t["name"] for t in dag["tags"]}


def test_broken_accounts_are_in_the_dag_list_and_the_good_one_is_active(cluster: tuple[AirflowCluster, Path]) -> None:
    c, _ = cluster
    good = c.wait_for_dag(GOOD)
    broken = c.wait_for_dag(BROKEN)
    nameless = c.wait_for_dag(NAMELESS)

    assert good["is_stale"] is False and good["has_import_errors"] is False and "config-error" not in tags(good)
    assert c.api("GET", "/importErrors")["total_entries"] == 0
    listed = c.api("GET", "/dags", params={"tags": "config-error"})["dags"]
    assert {d["dag_id"] for d in listed} == {BROKEN, NAMELESS}
    assert broken["is_stale"] is False and "account:ui_broken" in tags(broken)
    assert "account 'ui_broken', field 'start_date'" in broken["description"]
    assert "day is out of range for month" in broken["description"]
    assert "account 'UI Shop', field 'name': must match" in nameless["description"]
    details = c.api("GET", f"/dags/{BROKEN}/details")
    assert "day is out of range for month" in details["doc_md"]


def test_triggering_a_broken_accounts_dag_fails_with_the_message(cluster: tuple[AirflowCluster, Path]) -> None:
    c, _ = cluster
    c.wait_for_dag(BROKEN)
    c.set_paused(BROKEN, False)
    run = c.api("POST", f"/dags/{BROKEN}/dagRuns", json={"logical_date": None})
    finished = wait_for(
        "the run to finish",
        lambda: (r := c.api("GET", f"/dags/{BROKEN}/dagRuns/{run['dag_run_id']}"))["state"] in ("success", "failed")
        and r,
        timeout=300,
    )
    assert finished["state"] == "failed"
    log = c.api(
        "GET", f"/dags/{BROKEN}/dagRuns/{run['dag_run_id']}/taskInstances/accounts_file_error/logs/1",
        headers={"Accept": "application/json"},
    )
    text = json.dumps(log)
    assert "account 'ui_broken', field 'start_date'" in text and "day is out of range for month" in text


def test_a_file_that_is_not_yaml_is_one_dag_naming_it(cluster: tuple[AirflowCluster, Path]) -> None:
    c, accounts = cluster
    c.wait_for_dag(GOOD)
    accounts.write_text("accounts: [ui_good, {name: \n")  # broken in the middle of an edit

    dag = c.wait_for_dag(FILE_ERROR, timeout=300)

    assert dag["description"].startswith(f"NOT LOADED: accounts file {accounts}: not valid YAML (")
    assert "config-error" in tags(dag)
    assert c.api("GET", "/importErrors")["total_entries"] == 0
