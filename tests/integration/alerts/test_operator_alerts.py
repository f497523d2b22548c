"""What a load task tells the account's WeCom robot: the real operator, simulator, Postgres outbox and fake robot.

Each event a task learns of (a 45009, a kept day, a day unpublished at its deadline) makes
one message naming the account, endpoint and dates, with no secret in it; a robot that
errs or hangs never fails the task, and what it left pending goes out with the next task.
The failure callback's messages are tested through Airflow (tests/dags/test_daily_dag_alerts_run.py).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException
from wechat_datacube_dev.simulator import SimulatorServer

from tests.fixtures import loads
from tests.fixtures.loads import ACCOUNT, SCHEMA, TODAY, YESTERDAY, beijing
from tests.fixtures.simulator import TEST_SECRET
from tests.fixtures.wecom_robot import FakeWeComRobot, errcode, hang, http_status, register_wecom_conn
from wechat_datacube.errors import QuotaExceededError
from wechat_datacube.operators import WeChatDatacubeToPostgresOperator


@pytest.fixture
def sim(simulator: SimulatorServer, wechat_conn: str) -> SimulatorServer:
    return loads.at_load_time(simulator)


@pytest.fixture
def robot(wecom_robot: FakeWeComRobot, monkeypatch: pytest.MonkeyPatch) -> FakeWeComRobot:
    register_wecom_conn(monkeypatch, wecom_robot, timeout=[1, 1])
    return wecom_robot


@pytest.fixture
def dsn(fresh_pg: tuple[str, str]) -> str:
    return fresh_pg[1]


TARGETS = {"robots": ["wecom_test"], "notifiers": [], "outbox_conn_id": "wechat_pg"}


def run(sim: SimulatorServer, endpoint: str, begin: dt.date, end: dt.date | None = None, **kwargs: Any) -> Any:
    """One task of the test account with the robot as its alert target, on the simulator's clock."""
    operator = WeChatDatacubeToPostgresOperator(
        task_id=f"load_{endpoint}", endpoint=endpoint, account=ACCOUNT, wechat_conn_id="wechat_sim",
        postgres_conn_id="wechat_pg", schema=SCHEMA, begin_date=begin, end_date=end or begin,
        clock=sim.state.clock.now, alert_targets=TARGETS,
        hook_kwargs={"sleep": sim.state.clock.advance, "backoff_base": 0.01, "max_attempts": 2}, **kwargs,
    )  # fmt: skip
    return operator.execute({})


def no_secret_reached(robot: FakeWeComRobot, sim: SimulatorServer) -> None:
    tokens = sim.state.issued_tokens()
    assert tokens  # the tasks did get tokens: the check below can fire
    for request in robot.requests:
        text = str(request.body)
        assert TEST_SECRET not in text and robot.key not in text
        assert not any(token in text for token in tokens)


def test_a_quota_hit_is_one_message_with_the_reset_time_and_the_next_task_that_finds_the_block_is_silent(
    sim: SimulatorServer, dsn: str, robot: FakeWeComRobot
) -> None:
    loads.fault(sim, "getusershare", kind="errcode", errcode=45009)
    with pytest.raises(QuotaExceededError):
        run(sim, "getusershare", YESTERDAY)
    (message,) = robot.messages
    assert "45009" in message and ACCOUNT in message and "getusershare" in message
    assert f"{TODAY + dt.timedelta(days=1)} 00:00 (Beijing)" in message
    assert "retries after the reset" in message

    with pytest.raises(QuotaExceededError):  # the block is remembered: no call, no second alert
        run(sim, "getusershare", YESTERDAY)
    assert len(robot.messages) == 1
    no_secret_reached(robot, sim)


def test_a_backfill_stopped_by_the_quota_says_how_far_it_got(sim: SimulatorServer, dsn: str, robot: FakeWeComRobot) -> None:
    begin, end = dt.date(2026, 5, 1), dt.date(2026, 5, 21)  # three getusershare windows of 7 days
    sim.state.set_faults([{"path": "/datacube/getusershare", "kind": "errcode", "errcode": 45009, "after": 1}])
    with pytest.raises(AirflowSkipException):
        run(sim, "getusershare", begin, end, on_quota="skip", skip_loaded=True)
    (message,) = robot.messages
    assert "backfill stopped on it after 1 of 3 window(s)" in message


def test_a_kept_day_is_one_message_naming_the_day(sim: SimulatorServer, dsn: str, robot: FakeWeComRobot) -> None:
    begin, end = dt.date(2026, 6, 10), dt.date(2026, 6, 12)
    run(sim, "getuserread", begin, end)
    assert robot.messages == []  # loading new rows is no news
    loads.fault(sim, "getuserread", kind="fewer_rows", keep=2)
    run(sim, "getuserread", begin, end)
    (message,) = robot.messages
    assert "getuserread" in message and "2026-06-10" in message and "replace_shrinking" in message
    no_secret_reached(robot, sim)


def test_an_unpublished_day_at_the_deadline_is_one_message(sim: SimulatorServer, dsn: str, robot: FakeWeComRobot) -> None:
    sim.state.clock.set(beijing(TODAY, 12, 1))
    loads.fault(sim, "getuserread", kind="empty")
    run(sim, "getuserread", YESTERDAY)
    (message,) = robot.messages
    assert "getuserread" in message and YESTERDAY.isoformat() in message and "12:00 (Beijing)" in message


@pytest.mark.parametrize("answer", [errcode(93000, "invalid webhook url"), http_status(502), hang(3)],
                         ids=["errcode", "http-502", "timeout"])
def test_a_robot_that_errs_or_hangs_never_fails_the_task(
    sim: SimulatorServer, dsn: str, robot: FakeWeComRobot, answer: Any
) -> None:
    run(sim, "getuserread", dt.date(2026, 6, 10), dt.date(2026, 6, 12))
    loads.fault(sim, "getuserread", kind="fewer_rows", keep=2)
    robot.respond_with(answer, then=answer)
    started = time.monotonic()
    summary = run(sim, "getuserread", dt.date(2026, 6, 10), dt.date(2026, 6, 12))
    assert summary["windows"][0]["status"] == "kept"  # the task's work is done and returned
    assert time.monotonic() - started < 30  # bounded: 3 tries with 1 s timeouts, not a hung worker
    assert robot.requests and all(r.answer == answer.kind for r in robot.requests)


def test_what_an_unreachable_robot_left_pending_goes_out_with_the_next_task(
    sim: SimulatorServer, dsn: str, robot: FakeWeComRobot
) -> None:
    run(sim, "getuserread", dt.date(2026, 6, 10), dt.date(2026, 6, 12))
    loads.fault(sim, "getuserread", kind="fewer_rows", keep=2)
    robot.respond_with(http_status(502), then=http_status(502))
    run(sim, "getuserread", dt.date(2026, 6, 10), dt.date(2026, 6, 12))
    assert robot.messages == []
    assert loads.fetch(dsn, "SELECT state FROM wechat_alerts.outbox") == [("pending",)]

    robot.heal()
    sim.state.set_faults([])
    run(sim, "getusershare", YESTERDAY)  # nothing to report of its own
    (message,) = robot.messages
    assert "kept the stored rows" in message
    assert loads.fetch(dsn, "SELECT state FROM wechat_alerts.outbox") == [("sent",)]
