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
from wechat_datacube_dev.checksums import table_checksums
from wechat_datacube_dev.localrun.report import last_scheduled_day
from wechat_datacube_dev.simulator import SimulatorServer

from tests.fixtures.airflow import AirflowCluster
from tests.fixtures.scheduler import one_account_cluster
from tests.fixtures.simulator import TEST_APPID
from tests.fixtures.truth import stored_rows, truth_rows
from wechat_datacube.dag_settings import DAILY_DAG_PREFIX
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
    with one_account_cluster(
        airflow_cluster_factory, tmp_path_factory.mktemp("accounts"), account=ACCOUNT, start_date=start,
        dags=[DAG_ID], max_active_runs=4,
    ) as running:  # fmt: skip
        yield Setup(running.cluster, running.sim, running.dsn, start, last)


def assert_matches_truth(s: Setup, begin: dt.date, end: dt.date, endpoints: tuple[str, ...] = LEGACY) -> None:
    for endpoint in endpoints:
        stored = stored_rows(s.dsn, endpoint, begin, end, account=ACCOUNT)
        truth = truth_rows(s.sim, TEST_APPID, endpoint, begin, end, account=ACCOUNT)
        assert stored == truth, f"{endpoint} {begin}..{end}: {len(stored)} stored vs {len(truth)} true"


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
    return setup.cluster.trigger(DAG_ID, conf)


def _wait_run(setup: Setup, run_id: str, timeout: float = 300) -> dict[str, Any]:
    return setup.cluster.wait_run(DAG_ID, run_id, timeout=timeout, poll=2)


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
    checksums = table_checksums(setup.dsn)
    again = _wait_run(setup, _trigger(setup, conf)["dag_run_id"])
    assert again["state"] == "success"
    assert table_checksums(setup.dsn) == checksums


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
