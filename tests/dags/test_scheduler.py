"""The daily DAG under a real scheduler: catchup, `airflow backfill create`, a REST trigger.

A real cluster (api-server + scheduler + dag-processor, LocalExecutor, Postgres metadata
DB) runs the repo's DAG folder against the simulator and a fresh Postgres. Every check
compares the stored rows with the simulator's truth.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from wechat_datacube_dev.localrun.report import last_scheduled_day
from wechat_datacube_dev.simulator import SimulatorServer

from tests.fixtures.airflow import AirflowCluster
from tests.fixtures.postgres import _create_db, _drop_db
from tests.fixtures.simulator import TEST_APPID, TEST_SECRET, make_simulator_config
from tests.fixtures.truth import stored_rows, table_checksums, truth_rows
from wechat_datacube.dag_factory import DAILY_DAG_PREFIX
from wechat_datacube.dates import BEIJING, utcnow
from wechat_datacube.endpoints import LEGACY

pytestmark = pytest.mark.scheduler

ACCOUNT = "sched"
DAG_ID = f"{DAILY_DAG_PREFIX}{ACCOUNT}"
CATCHUP_DAYS = 7


class Setup:
    def __init__(self, cluster: AirflowCluster, sim: SimulatorServer, dsn: str, start: dt.date, last: dt.date):
        self.cluster, self.sim, self.dsn, self.start, self.last = cluster, sim, dsn, start, last


@pytest.fixture(scope="module")
def setup(airflow_cluster_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    last = last_scheduled_day(utcnow())
    start = last - dt.timedelta(days=CATCHUP_DAYS - 1)
    db_name, dsn = _create_db("wdc_sched_data")
    # Data is published at 00:00 and the readiness deadline is 00:00: the test must not
    # depend on the hour it runs at.
    with SimulatorServer(make_simulator_config(ready_hour=0)) as sim:
        accounts = tmp_path_factory.mktemp("accounts") / "accounts.yaml"
        accounts.write_text(
            "accounts:\n"
            f"  - {{name: {ACCOUNT}, wechat_conn_id: wechat_sched, postgres_conn_id: wechat_sched_pg, "
            f"start_date: {start.isoformat()}, endpoints: [legacy], ready_deadline_hour: 0, max_active_runs: 4}}\n"
        )
        env = {
            "WECHAT_DATACUBE_ACCOUNTS": str(accounts),
            "AIRFLOW_CONN_WECHAT_SCHED": json.dumps(
                {"conn_type": "wechat", "host": sim.base_url, "login": TEST_APPID, "password": TEST_SECRET}
            ),
            "AIRFLOW_CONN_WECHAT_SCHED_PG": dsn,
        }
        cluster = airflow_cluster_factory(env)
        cluster.wait_for_dag(DAG_ID)
        yield Setup(cluster, sim, dsn, start, last)
    _drop_db(db_name)


def assert_matches_truth(s: Setup, begin: dt.date, end: dt.date, endpoints: tuple[str, ...] = LEGACY) -> None:
    for endpoint in endpoints:
        stored = stored_rows(s.dsn, endpoint, begin, end, account=ACCOUNT)
        truth = truth_rows(s.sim, TEST_APPID, endpoint, begin, end, account=ACCOUNT)
        assert stored == truth, f"{endpoint} {begin}..{end}: {len(stored)} stored vs {len(truth)} true"


def table_fingerprint(dsn: str) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent checksum of each legacy table."""
    return table_checksums(dsn)


def test_catchup_runs_every_day_since_start_and_stores_the_truth(setup: Setup) -> None:
    runs = setup.cluster.wait_for_runs(DAG_ID, count=CATCHUP_DAYS, run_type="scheduled", timeout=900)
    assert [r["state"] for r in runs] == ["success"] * CATCHUP_DAYS
    starts = sorted(dt.datetime.fromisoformat(r["data_interval_start"]).astimezone(BEIJING).date() for r in runs)
    assert starts == [setup.start + dt.timedelta(days=i) for i in range(CATCHUP_DAYS)]
    assert_matches_truth(setup, setup.start, setup.last)
    # Token shared by every task of every run through the Postgres cache.
    paths = setup.sim.state.counters()["paths"]
    assert sum(n for p, n in paths.items() if p.startswith("/cgi-bin/")) == 1


def test_backfill_create_loads_an_earlier_range(setup: Setup) -> None:
    begin = setup.start - dt.timedelta(days=3)
    end = setup.start - dt.timedelta(days=1)
    setup.cluster.cli(
        "backfill", "create", "--dag-id", DAG_ID,
        "--from-date", f"{begin.isoformat()}T10:00:00+08:00",
        "--to-date", f"{end.isoformat()}T10:00:00+08:00",
        "--reprocess-behavior", "completed",
    )  # fmt: skip
    runs = setup.cluster.wait_for_runs(DAG_ID, count=3, run_type="backfill", timeout=600)
    assert [r["state"] for r in runs] == ["success"] * 3
    assert_matches_truth(setup, begin, end)


def _trigger(setup: Setup, conf: dict[str, Any]) -> dict[str, Any]:
    run = setup.cluster.api("POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": conf})
    return run


def _wait_run(setup: Setup, run_id: str, timeout: float = 300) -> dict[str, Any]:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = setup.cluster.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")
        if run["state"] in ("success", "failed"):
            return run
        time.sleep(2)
    raise AssertionError(f"run {run_id} did not finish: {setup.cluster.log_tail('scheduler')}")


def test_rest_trigger_without_logical_date_runs_the_requested_endpoints_and_dates(setup: Setup) -> None:
    begin = setup.start - dt.timedelta(days=10)
    end = setup.start - dt.timedelta(days=4)
    conf = {"begin_date": begin.isoformat(), "end_date": end.isoformat(), "endpoints": ["getusershare", "getuserread"]}
    before = setup.sim.state.counters()["paths"]

    run = _wait_run(setup, _trigger(setup, conf)["dag_run_id"])

    assert run["state"] == "success"
    assert run["logical_date"] is None
    states = {ti["task_id"]: ti["state"] for ti in setup.cluster.task_instances(DAG_ID, run["dag_run_id"])}
    assert states["getusershare"] == states["getuserread"] == "success"
    assert {states[e] for e in LEGACY if e not in conf["endpoints"]} == {"skipped"}
    assert_matches_truth(setup, begin, end, ("getusershare", "getuserread"))
    after = setup.sim.state.counters()["paths"]
    assert after["/datacube/getusershare"] - before.get("/datacube/getusershare", 0) == 1  # 7 days, span 7
    assert after["/datacube/getuserread"] - before.get("/datacube/getuserread", 0) == 3  # 7 days, span 3
    assert after.get("/datacube/getuserreadhour", 0) == before.get("/datacube/getuserreadhour", 0)

    # Rerunning the same request replaces the same windows: no duplicates, same content.
    fingerprint = table_fingerprint(setup.dsn)
    again = _wait_run(setup, _trigger(setup, conf)["dag_run_id"])
    assert again["state"] == "success"
    assert table_fingerprint(setup.dsn) == fingerprint


def test_trigger_without_logical_date_or_dates_fails_with_a_clear_message(setup: Setup) -> None:
    run = _wait_run(setup, _trigger(setup, {"endpoints": ["getusershare"]})["dag_run_id"])
    assert run["state"] == "failed"
    states = {ti["task_id"]: ti["state"] for ti in setup.cluster.task_instances(DAG_ID, run["dag_run_id"])}
    assert states["getusershare"] == "failed"
    ti = next(t for t in setup.cluster.task_instances(DAG_ID, run["dag_run_id"]) if t["task_id"] == "getusershare")
    assert ti["try_number"] == 1  # a configuration error is not retried
    log = setup.cluster.api(
        "GET", f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/getusershare/logs/1",
        headers={"Accept": "application/json"},
    )
    assert "no logical date" in json.dumps(log)
