"""WeComRobotNotifier end to end: real Airflow connections, a real database, a real (fake) robot over HTTP.

What a data engineer relies on: one failure makes one message naming what failed and what
the errcode means, with no secret anywhere; a robot that errs or hangs never fails the task
and loses nothing when there is an outbox; and a burst stays within the robot's limit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable

import pytest
from wechat_datacube_dev.connections import connection_env_var

from tests.fixtures.wecom_robot import (
    RATE_LIMITED,
    FakeWeComRobot,
    errcode,
    failed_task_event,
    hang,
    http_status,
    register_wecom_conn,
)
from wechat_datacube.alerts.local_outbox import LOCAL_OUTBOX
from wechat_datacube.alerts.notifier import WeComRobotNotifier, send_events

SECRETS = ("s3cret-AppSecret-value", "ACCESS-TOKEN-abcdef123456")


def _pending_locally(conn_id: str) -> int:
    from wechat_datacube.alerts.wecom import WeComRobotHook

    return LOCAL_OUTBOX.count_pending(WeComRobotHook(conn_id).robot_id)


def _no_secret_in(robot: FakeWeComRobot, *texts: str) -> None:
    received = json.dumps([r.body for r in robot.requests], ensure_ascii=False)
    for text in (received, *texts):
        assert robot.key not in text
        for secret in SECRETS:
            assert secret not in text


def test_one_failure_makes_one_message_naming_account_endpoint_and_errcode_meaning_without_secrets(
    wecom_robot: FakeWeComRobot,
    fresh_pg: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="wechat_datacube")
    caplog.set_level(logging.INFO)
    event = failed_task_event(
        7,
        details=(
            f"**error**: GET /cgi-bin/token?appid=wx1&secret={SECRETS[0]} answered errcode 40125",
            f'**body**: {{"access_token": "{SECRETS[1]}"}}',
        ),
    )
    notifier = WeComRobotNotifier(
        wecom_conn_id=register_wecom_conn(monkeypatch, wecom_robot), events=[event], outbox_conn_id=fresh_pg[0]
    )

    notifier.notify({})

    assert notifier.last_report is not None and notifier.last_report["via"] == "outbox"
    (request,) = wecom_robot.requests
    content = request.content or ""
    assert "acct-07" in content and "getarticlesummary" in content
    assert "errcode 40125" in content and "invalid AppSecret" in content
    assert "open task log" in content
    _no_secret_in(wecom_robot, caplog.text, json.dumps(notifier.last_report))


def test_message_of_a_hand_configured_notifier_is_templated_and_sent_directly(
    wecom_robot: FakeWeComRobot, monkeypatch: pytest.MonkeyPatch
) -> None:
    notifier = WeComRobotNotifier(
        wecom_conn_id=register_wecom_conn(monkeypatch, wecom_robot), message="backfill of {{ params.account }} done"
    )

    notifier({"params": {"account": "acct-09"}})  # as Airflow calls it: renders templates, then notify

    assert notifier.last_report is not None and notifier.last_report["via"] == "process"
    assert "**backfill of acct-09 done**" in wecom_robot.messages[0]


def test_async_notify_sends_too_for_the_triggerer(wecom_robot: FakeWeComRobot, monkeypatch: pytest.MonkeyPatch) -> None:
    notifier = WeComRobotNotifier(
        wecom_conn_id=register_wecom_conn(monkeypatch, wecom_robot), events=[failed_task_event(3).as_json()]
    )

    asyncio.run(notifier.async_notify({}))

    assert "acct-03" in wecom_robot.messages[0]


@pytest.mark.parametrize(
    ("answer", "extra"),
    [(http_status(500), {}), (errcode(-1, "system busy"), {}), (hang(3), {"timeout": [1, 0.5]})],
    ids=["http-500", "errcode-busy", "hanging"],
)
def test_robot_in_trouble_never_fails_the_task_and_the_next_flush_delivers(
    answer: object,
    extra: dict,
    wecom_robot: FakeWeComRobot,
    fresh_pg: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wecom_robot.respond_with(then=answer)  # type: ignore[arg-type]
    conn_id = register_wecom_conn(monkeypatch, wecom_robot, **extra)
    notifier = WeComRobotNotifier(wecom_conn_id=conn_id, events=[failed_task_event(1)], outbox_conn_id=fresh_pg[0])

    started = time.monotonic()
    notifier.notify({})  # returns normally

    assert time.monotonic() - started < 8
    assert notifier.last_report is not None
    assert (notifier.last_report["sent"], notifier.last_report["pending"]) == (0, 1)
    wecom_robot.heal()
    report = send_events([failed_task_event(2)], wecom_conn_id=conn_id, outbox_conn_id=fresh_pg[0])
    assert (report["sent"], report["pending"]) == (2, 0)
    assert "acct-01" in wecom_robot.messages[-1] and "acct-02" in wecom_robot.messages[-1]


def test_rate_limited_robot_leaves_the_events_pending_for_the_next_flush(
    wecom_robot: FakeWeComRobot, fresh_pg: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wecom_robot.respond_with(RATE_LIMITED)
    conn_id = register_wecom_conn(monkeypatch, wecom_robot)

    first = send_events([failed_task_event(1)], wecom_conn_id=conn_id, outbox_conn_id=fresh_pg[0])
    second = send_events([failed_task_event(2)], wecom_conn_id=conn_id, outbox_conn_id=fresh_pg[0])

    assert (first["sent"], first["pending"], first["stopped"]) == (0, 1, "rate_limited")
    assert (second["sent"], second["pending"]) == (2, 0)


def test_without_an_outbox_a_robot_in_trouble_still_never_raises(
    wecom_robot: FakeWeComRobot, monkeypatch: pytest.MonkeyPatch
) -> None:
    wecom_robot.respond_with(then=http_status(502))
    conn_id = register_wecom_conn(monkeypatch, wecom_robot)
    notifier = WeComRobotNotifier(wecom_conn_id=conn_id, events=[failed_task_event(1)])

    notifier.notify({})

    assert notifier.last_report is not None and notifier.last_report["pending"] == 1
    wecom_robot.heal()  # this process retries what it holds with its next alert
    assert send_events([failed_task_event(2)], wecom_conn_id=conn_id)["sent"] == 2
    assert _pending_locally(conn_id) == 0


def test_unreachable_outbox_database_falls_back_to_sending_directly(
    wecom_robot: FakeWeComRobot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(connection_env_var("outbox_down"), "postgresql://postgres@127.0.0.1:9/nowhere")

    conn_id = register_wecom_conn(monkeypatch, wecom_robot)

    report = send_events([failed_task_event(1)], wecom_conn_id=conn_id, outbox_conn_id="outbox_down")

    assert (report["via"], report["sent"]) == ("process", 1)
    assert "acct-01" in wecom_robot.messages[0]


@pytest.mark.parametrize(
    "setup",
    [lambda mp: None, lambda mp: mp.setenv(connection_env_var("wecom_missing"), '{"conn_type": "wecom_robot"}')],
    ids=["no-connection", "no-key"],
)
def test_missing_connection_or_key_is_logged_never_raised(
    setup: Callable[[pytest.MonkeyPatch], None], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    setup(monkeypatch)
    notifier = WeComRobotNotifier(wecom_conn_id="wecom_missing", message="hello")

    notifier.notify({})

    assert notifier.last_report is not None and notifier.last_report["failed"] == 1
    assert "wecom_missing" in caplog.text


def _burst(conn_id: str, pg_conn_id: str, starts: list[float]) -> list[dict]:
    """One thread per event, each calling send_events (so opening its own database connection) at its start."""
    reports: list[dict] = [{} for _ in starts]
    t0 = time.monotonic()

    def one(i: int) -> None:
        time.sleep(max(0.0, t0 + starts[i] - time.monotonic()))
        reports[i] = send_events([failed_task_event(i)], wecom_conn_id=conn_id, outbox_conn_id=pg_conn_id)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(starts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    return reports


def _each_event_in_exactly_one_message(robot: FakeWeComRobot, count: int) -> None:
    for i in range(count):
        assert sum(f"acct-{i:02d}" in message for message in robot.messages) == 1, f"acct-{i:02d}"


def test_burst_of_50_failures_spread_over_10_seconds_makes_at_most_20_requests(
    wecom_robot: FakeWeComRobot, fresh_pg: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real 60 s window, real limit 20 (the fake robot answers 45009 beyond it, as WeCom does)."""
    conn_id = register_wecom_conn(monkeypatch, wecom_robot)

    started = time.monotonic()
    reports = _burst(conn_id, fresh_pg[0], [i * 0.2 for i in range(50)])

    assert len(wecom_robot.requests) <= 20
    assert all(r.answer == "errcode 0" for r in wecom_robot.requests)  # never over the robot's limit
    _each_event_in_exactly_one_message(wecom_robot, 50)
    assert any("coalesced" in message for message in wecom_robot.messages)
    assert sum(r["sent"] for r in reports) == 50  # each event counted by the one call that sent it
    assert time.monotonic() - started < 90
