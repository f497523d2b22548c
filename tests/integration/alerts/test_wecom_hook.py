"""WeComRobotHook against a real (fake) robot over HTTP: answers, retries, timeouts, and the key kept secret."""

from __future__ import annotations

import logging
import time

import pytest

from tests.fixtures.wecom_robot import (
    OK,
    RATE_LIMITED,
    FakeWeComRobot,
    errcode,
    hang,
    http_status,
    register_wecom_conn,
)
from wechat_datacube.alerts.wecom import (
    RobotRateLimited,
    RobotRejected,
    RobotUnavailable,
    WeComRobotHook,
)
from wechat_datacube.errors import ConfigError


def _hook(conn_id: str, **kwargs: object) -> WeComRobotHook:
    kwargs.setdefault("backoff_base", 0.01)
    return WeComRobotHook(conn_id, **kwargs)  # type: ignore[arg-type]


def test_markdown_reaches_the_robot_with_its_key_and_the_answer_comes_back(
    wecom_robot: FakeWeComRobot, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = _hook(register_wecom_conn(monkeypatch, wecom_robot))

    answer = hook.send_markdown("## hello 你好")

    assert answer == {"errcode": 0, "errmsg": "ok"}
    (request,) = wecom_robot.requests
    assert request.key == wecom_robot.key
    assert request.body == {"msgtype": "markdown", "markdown": {"content": "## hello 你好"}}


def test_robot_id_is_stable_short_and_not_the_key(wecom_robot: FakeWeComRobot, monkeypatch: pytest.MonkeyPatch) -> None:
    conn_id = register_wecom_conn(monkeypatch, wecom_robot)
    first, second = _hook(conn_id).robot_id, _hook(conn_id).robot_id
    assert first == second and len(first) == 16 and first not in wecom_robot.key
    monkeypatch.setattr(wecom_robot, "key", "another-robot-key-0000")
    assert _hook(register_wecom_conn(monkeypatch, wecom_robot)).robot_id != first


@pytest.mark.parametrize("transient", [http_status(500), http_status(502), errcode(-1, "system busy")])
def test_a_transient_failure_is_retried_then_delivered(
    transient: object, wecom_robot: FakeWeComRobot, monkeypatch: pytest.MonkeyPatch
) -> None:
    wecom_robot.respond_with(transient)  # type: ignore[arg-type]

    _hook(register_wecom_conn(monkeypatch, wecom_robot)).send_markdown("retry me")

    assert [r.answer for r in wecom_robot.requests][-1] == "errcode 0"
    assert len(wecom_robot.requests) == 2


def test_robot_down_gives_up_after_three_attempts_without_the_key_in_the_error(
    wecom_robot: FakeWeComRobot, monkeypatch: pytest.MonkeyPatch
) -> None:
    wecom_robot.respond_with(then=http_status(500))

    with pytest.raises(RobotUnavailable) as caught:
        _hook(register_wecom_conn(monkeypatch, wecom_robot)).send_markdown("x")

    assert len(wecom_robot.requests) == 3
    assert "after 3 attempts" in str(caught.value) and "HTTP 500" in str(caught.value)
    assert wecom_robot.key not in str(caught.value) and wecom_robot.key not in repr(caught.value)


def test_unreachable_robot_error_names_neither_key_nor_query(monkeypatch: pytest.MonkeyPatch) -> None:
    robot = FakeWeComRobot(base_url="http://127.0.0.1:9/cgi-bin/webhook/send")  # the discard port: refused
    hook = _hook(register_wecom_conn(monkeypatch, robot))

    with pytest.raises(RobotUnavailable) as caught:
        hook.send_markdown("x")

    text = str(caught.value)
    assert "ConnectionError" in text
    assert robot.key not in text and "key=***" in text  # requests quoted the URL; the key was scrubbed
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_rate_limited_answer_raises_at_once_without_retrying(
    wecom_robot: FakeWeComRobot, monkeypatch: pytest.MonkeyPatch
) -> None:
    wecom_robot.respond_with(RATE_LIMITED)

    with pytest.raises(RobotRateLimited, match="45009"):
        _hook(register_wecom_conn(monkeypatch, wecom_robot)).send_markdown("x")

    assert len(wecom_robot.requests) == 1


def test_wrong_key_is_rejected_for_good_without_retrying(
    wecom_robot: FakeWeComRobot, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn_id = register_wecom_conn(monkeypatch, wecom_robot)
    monkeypatch.setattr(wecom_robot, "key", "the-robot-was-recreated")

    with pytest.raises(RobotRejected) as caught:
        _hook(conn_id).send_markdown("x")

    assert caught.value.errcode == 93000 and len(wecom_robot.requests) == 1


def test_content_over_4096_bytes_is_refused_before_any_request(
    wecom_robot: FakeWeComRobot, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(RobotRejected, match="4097 bytes"):
        _hook(register_wecom_conn(monkeypatch, wecom_robot)).send_markdown("x" * 4097)
    assert wecom_robot.requests == []


def test_hanging_robot_times_out_and_gives_up_within_a_bounded_time(
    wecom_robot: FakeWeComRobot, monkeypatch: pytest.MonkeyPatch
) -> None:
    wecom_robot.respond_with(then=hang(3))
    hook = _hook(register_wecom_conn(monkeypatch, wecom_robot, timeout=[1, 0.5]))

    started = time.monotonic()
    with pytest.raises(RobotUnavailable, match="ReadTimeout"):
        hook.send_markdown("x")

    assert time.monotonic() - started < 3.0  # 3 × 0.5 s read timeout + backoff, never 3 × 3 s
    assert len(wecom_robot.requests) == 3


def test_connection_without_key_is_a_config_error_naming_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WECOM_NOKEY", '{"conn_type": "wecom_robot", "host": "http://127.0.0.1:9/x"}')
    with pytest.raises(ConfigError, match="'wecom_nokey'"):
        WeComRobotHook("wecom_nokey").send_markdown("x")


def test_the_key_appears_in_no_log_record(
    wecom_robot: FakeWeComRobot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="wechat_datacube")
    caplog.set_level(logging.INFO)
    wecom_robot.respond_with(http_status(500), http_status(503), OK)

    hook = _hook(register_wecom_conn(monkeypatch, wecom_robot))
    hook.send_markdown("x")

    assert len([r for r in caplog.records if "retrying" in r.getMessage()]) == 2
    assert wecom_robot.key not in caplog.text
    assert wecom_robot.key not in repr(hook)


def test_connection_test_posts_a_short_message(wecom_robot: FakeWeComRobot, monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message = _hook(register_wecom_conn(monkeypatch, wecom_robot)).test_connection()
    assert ok and "accepted" in message
    assert "connection test" in (wecom_robot.requests[0].content or "")
