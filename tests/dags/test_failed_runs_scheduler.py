"""Runs whose loads failed end failed under a real scheduler, and the backfill report says why.

A real cluster (api-server + scheduler + dag-processor, LocalExecutor, Postgres metadata
DB) with one account whose connection holds a wrong AppSecret: every token request gets
40125. The backfill DAG's report task reads the load tasks' states through the Execution
API (as the Task SDK does in a deployment), names the errcode with its meaning and advice,
and fails the run; the daily DAG's run fails by Airflow's own leaf rule. The account has a
WeCom robot (a fake one on a local port): every failed task of either DAG is named in one
message it receives, with errcode 40125 and its meaning, and no secret.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

import pytest
from wechat_datacube_dev.connections import connection_env_var
from wechat_datacube_dev.simulator import SimulatorServer

from tests.fixtures.airflow import AirflowCluster
from tests.fixtures.scheduler import one_account_cluster
from tests.fixtures.wecom_robot import FakeWeComRobot, start_robot, wecom_connection
from wechat_datacube.dag_settings import BACKFILL_DAG_ID, DAILY_DAG_PREFIX
from wechat_datacube.dates import beijing_today
from wechat_datacube.endpoints import LEGACY

pytestmark = pytest.mark.scheduler

ACCOUNT = "badsecret"
DAILY_DAG_ID = f"{DAILY_DAG_PREFIX}{ACCOUNT}"
END = beijing_today() - dt.timedelta(days=5)
BEGIN = END - dt.timedelta(days=13)  # 14 days: getusershare 2 windows, getuserread 5
WRONG_SECRET = "not-the-app-secret"
MEANING = "errcode 40125 (permanent): invalid AppSecret: check the connection's password"


class Setup:
    def __init__(self, cluster: AirflowCluster, sim: SimulatorServer, robot: FakeWeComRobot) -> None:
        self.cluster, self.sim, self.robot = cluster, sim, robot

    def alerts_of(self, dag_id: str, run_id: str, endpoints: Sequence[str], timeout: float = 60) -> list[str]:
        """The robot's messages about ``run_id``, once every endpoint is named in one (or ``timeout``).

        A task's failure callback runs after its state is reported: the run can end a moment
        before the last message is sent.
        """
        deadline = time.monotonic() + timeout
        while True:
            alerts = [m for m in self.robot.messages if f"/dags/{dag_id}/runs/{quote(run_id)}/" in m or run_id in m]
            if all(any(f"`{e}`" in a or f" {e} " in a for a in alerts) for e in endpoints) or time.monotonic() > deadline:
                return alerts
            time.sleep(1)

    def no_secret_reached_the_robot(self) -> None:
        sent = [str(r.body) for r in self.robot.requests]
        assert sent
        for secret in (WRONG_SECRET, self.robot.key):
            assert not any(secret in text for text in sent)

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        return str(self.cluster.trigger(dag_id, conf)["dag_run_id"])

    def wait(self, dag_id: str, run_id: str, timeout: float = 300) -> dict[str, Any]:
        return self.cluster.wait_run(dag_id, run_id, timeout=timeout, poll=2)

    def states(self, dag_id: str, run_id: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for ti in self.cluster.task_instances(dag_id, run_id):
            key = ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"
            out[key] = ti["state"]
        return out

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        answer = self.cluster.api(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            headers={"Accept": "application/json"},
        )  # fmt: skip
        return json.dumps(answer)


@pytest.fixture(scope="module")
def setup(airflow_cluster_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    robot, server = start_robot()
    env = {connection_env_var("wecom_ops"): json.dumps(wecom_connection(robot.base_url, robot.key))}
    try:
        with one_account_cluster(
            airflow_cluster_factory, tmp_path_factory.mktemp("accounts"), account=ACCOUNT,
            # Starting yesterday: the daily DAG's catchup adds at most a run or two beside the test's.
            start_date=beijing_today() - dt.timedelta(days=1),
            password=WRONG_SECRET, dags=[BACKFILL_DAG_ID, DAILY_DAG_ID],
            extra_env=env, alert_conn_ids="[wecom_ops]", alert_deadline_hour="null",
        ) as running:  # fmt: skip
            yield Setup(running.cluster, running.sim, robot)
    finally:
        server.shutdown()
        server.server_close()


def test_backfill_with_a_wrong_secret_fails_and_the_report_names_40125_and_its_fix(setup: Setup) -> None:
    conf = {"begin_date": BEGIN.isoformat(), "end_date": END.isoformat(), "endpoints": ["getusershare", "getuserread"]}

    run_id = setup.trigger(BACKFILL_DAG_ID, conf)
    run = setup.wait(BACKFILL_DAG_ID, run_id)

    states = setup.states(BACKFILL_DAG_ID, run_id)
    assert run["state"] == "failed", states
    assert states == {"plan": "success", "load[0]": "failed", "load[1]": "failed", "report": "failed"}
    xcom = setup.cluster.api(
        "GET", f"/dags/{BACKFILL_DAG_ID}/dagRuns/{run_id}/taskInstances/report/xcomEntries/report",
        params={"deserialize": True},
    )  # fmt: skip
    report = xcom["value"] if isinstance(xcom["value"], dict) else json.loads(xcom["value"])
    assert report["state"] == "failed" and report["failed_tasks"] == 2
    assert report["next_steps"] == ["fix the configuration, then trigger again"]
    assert {e["endpoint"]: (e["windows"], e["failed"]) for e in report["endpoints"]} == {
        "getusershare": (2, 2),
        "getuserread": (5, 5),
    }
    log = setup.log(BACKFILL_DAG_ID, run_id, "report")
    assert "errcode 40125 (permanent): invalid AppSecret: check the connection's password" in log
    assert "fix the configuration, then trigger again" in log
    assert "resume" not in log.lower()
    assert not any(p.startswith("/datacube/") for p in setup.sim.state.counters()["paths"])
    # Each failed load task, named once to the robot, with the errcode's meaning.
    alerts = setup.alerts_of(BACKFILL_DAG_ID, run_id, ["getusershare", "getuserread"])
    assert alerts and all(MEANING in a and ACCOUNT in a for a in alerts)
    for endpoint in ("getusershare", "getuserread"):
        assert sum(f"`{endpoint}`" in a or f" {endpoint} " in a for a in alerts) == 1, (endpoint, alerts)
    setup.no_secret_reached_the_robot()


def test_daily_run_with_a_wrong_secret_fails(setup: Setup) -> None:
    day = END.isoformat()

    run_id = setup.trigger(DAILY_DAG_ID, {"begin_date": day, "end_date": day})
    run = setup.wait(DAILY_DAG_ID, run_id)

    states = setup.states(DAILY_DAG_ID, run_id)
    assert run["state"] == "failed", states
    assert states == dict.fromkeys(LEGACY, "failed")
    # Permanent: failed at the first try, never retried.
    assert all(ti["try_number"] == 1 for ti in setup.cluster.task_instances(DAILY_DAG_ID, run_id))
    assert "errcode=40125" in setup.log(DAILY_DAG_ID, run_id, "getusershare")
    # The robot heard of each failed task once: account, endpoint, 40125 and its meaning, the day.
    alerts = setup.alerts_of(DAILY_DAG_ID, run_id, LEGACY)
    assert alerts and all(MEANING in a and ACCOUNT in a and day in a for a in alerts)
    for endpoint in LEGACY:
        assert sum(f"`{endpoint}`" in a or f" {endpoint} " in a for a in alerts) == 1, (endpoint, alerts)
    setup.no_secret_reached_the_robot()
