"""The daily DAG's deadline alert under a real scheduler: a run held past its deadline tells the robot.

A real cluster (api-server + scheduler + dag-processor, LocalExecutor, Postgres metadata DB)
runs the repo's DAG files for one account with a WeCom robot (a fake one on a local port)
and ``alert_deadline_hour: 12``. The DAG stays paused (``dags_are_paused_at_creation``), so
catchup creates no run and the test's runs stay queued: held, as by a stopped scheduler or
a full pool. Two manual runs are triggered with logical dates whose
deadlines (D+1 12:00 Beijing) are already past: one a minute ago, one days ago. Airflow
creates both deadlines, the scheduler finds both missed and the executor runs the
``SyncCallback`` of each; the robot hears of the first only (the second is a catchup of an
old day: no news).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from wechat_datacube_dev.connections import connection_env_var

from tests.fixtures.scheduler import OneAccount, one_account_cluster
from tests.fixtures.simulator import TEST_SECRET
from tests.fixtures.wecom_robot import FakeWeComRobot, start_robot, wecom_connection
from wechat_datacube.alerts.builders import beijing_time
from wechat_datacube.dag_factory import deadline_interval
from wechat_datacube.dag_settings import DAILY_DAG_PREFIX
from wechat_datacube.dates import beijing_today, to_beijing_date

pytestmark = pytest.mark.scheduler

ACCOUNT = "late"
DAG_ID = f"{DAILY_DAG_PREFIX}{ACCOUNT}"
DEADLINE_HOUR = 12


@pytest.fixture(scope="module")
def robot() -> Iterator[FakeWeComRobot]:
    robot, server = start_robot()
    yield robot
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def running(airflow_cluster_factory: Any, tmp_path_factory: pytest.TempPathFactory,
            robot: FakeWeComRobot) -> Iterator[OneAccount]:
    env = {
        connection_env_var("wecom_ops"): json.dumps(wecom_connection(robot.base_url, robot.key)),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",  # no catchup run; the test's runs stay queued
    }
    with one_account_cluster(
        airflow_cluster_factory, tmp_path_factory.mktemp("accounts"), account=ACCOUNT,
        # Before the test's logical dates: a run before its DAG's start date would have no task.
        start_date=beijing_today() - dt.timedelta(days=7), dags=[DAG_ID], extra_env=env,
        alert_conn_ids="[wecom_ops]", alert_deadline_hour=DEADLINE_HOUR,
    ) as running:  # fmt: skip
        yield running


def trigger_with_deadline_passed(running: OneAccount, ago: dt.timedelta) -> dict[str, Any]:
    """A manual run whose deadline (logical date + the deadline interval) was ``ago`` ago."""
    logical = dt.datetime.now(dt.UTC) - deadline_interval(DEADLINE_HOUR) - ago
    return running.cluster.trigger(DAG_ID, {}, logical_date=logical.isoformat())


def late_messages(robot: FakeWeComRobot) -> list[str]:
    return [m for m in robot.messages if "not finished by" in m]


def test_a_run_held_past_its_deadline_tells_the_robot_and_an_old_days_catchup_does_not(
    running: OneAccount, robot: FakeWeComRobot
) -> None:
    old = trigger_with_deadline_passed(running, dt.timedelta(days=3))
    recent = trigger_with_deadline_passed(running, dt.timedelta(minutes=1))

    deadline = time.monotonic() + 180
    while not late_messages(robot) and time.monotonic() < deadline:
        running.cluster.check_alive()
        time.sleep(2)
    time.sleep(10)  # both deadlines are missed in the same scheduler loop: give the old one's callback time too

    (message,) = late_messages(robot)
    day = to_beijing_date(dt.datetime.fromisoformat(recent["data_interval_start"])).isoformat()
    old_day = to_beijing_date(dt.datetime.fromisoformat(old["data_interval_start"])).isoformat()
    # The deadline is the run's logical date + the interval: 12:00 Beijing for a scheduled run
    # (logical date D 10:00); these manual runs' logical dates are not on the hour.
    due = beijing_time(dt.datetime.fromisoformat(recent["logical_date"]) + deadline_interval(DEADLINE_HOUR))
    assert f"daily run of {day} not finished by {due}" in message
    assert ACCOUNT in message and recent["dag_run_id"] in message
    assert old_day not in message
    held = running.cluster.api("GET", f"/dags/{DAG_ID}/dagRuns/{recent['dag_run_id']}")
    assert held["state"] == "queued"  # held, as the alert says
    sent = [str(r.body) for r in robot.requests]
    for secret in (TEST_SECRET, robot.key, *running.sim.state.issued_tokens()):
        assert not any(secret in text for text in sent)
