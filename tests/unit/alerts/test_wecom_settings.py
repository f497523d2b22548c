"""Reading a ``wecom_robot`` connection, and keeping the robot key out of every text."""

from __future__ import annotations

import pytest

from wechat_datacube.alerts.wecom import (
    DEFAULT_TIMEOUT,
    DEFAULT_WEBHOOK_URL,
    RobotSettings,
    robot_settings,
    scrub_key,
)
from wechat_datacube.errors import ConfigError

KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"


def test_empty_host_means_the_wecom_webhook() -> None:
    assert robot_settings("c", None, KEY, {}).url == DEFAULT_WEBHOOK_URL == (
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
    )


def test_host_without_scheme_gets_https_and_without_path_gets_the_webhook_path() -> None:
    assert robot_settings("c", "qyapi.weixin.qq.com", KEY, {}).url == DEFAULT_WEBHOOK_URL
    assert robot_settings("c", "http://127.0.0.1:8080/hook", KEY, {}).url == "http://127.0.0.1:8080/hook"


def test_missing_key_names_the_connection() -> None:
    with pytest.raises(ConfigError, match="connection 'wecom_ops'.*no robot key.*password field"):
        robot_settings("wecom_ops", DEFAULT_WEBHOOK_URL, "  ", {})


def test_key_pasted_into_the_host_is_refused_without_repeating_it() -> None:
    with pytest.raises(ConfigError) as caught:
        robot_settings("wecom_ops", f"{DEFAULT_WEBHOOK_URL}?key={KEY}", None, {})
    assert "in the host field" in str(caught.value) and KEY not in str(caught.value)


def test_key_in_the_host_is_dropped_from_the_url_when_the_password_has_it() -> None:
    settings = robot_settings("c", f"{DEFAULT_WEBHOOK_URL}?key={KEY}", KEY, {})
    assert settings.url == DEFAULT_WEBHOOK_URL and settings.key == KEY


def test_settings_repr_leaves_the_key_out() -> None:
    assert KEY not in repr(robot_settings("c", None, KEY, {}))
    assert KEY not in repr(RobotSettings(url="u", key=KEY))


@pytest.mark.parametrize(
    ("extra", "timeout"),
    [({}, DEFAULT_TIMEOUT), ({"timeout": 2}, (2.0, 2.0)), ({"timeout": [1, 4.5]}, (1.0, 4.5))],
)
def test_timeout_extra_is_one_number_or_connect_and_read(extra: dict, timeout: tuple[float, float]) -> None:
    assert robot_settings("c", None, KEY, extra).timeout == timeout


@pytest.mark.parametrize("bad", ["soon", [1, 2, 3], 0, -1])
def test_a_bad_timeout_is_a_config_error(bad: object) -> None:
    with pytest.raises(ConfigError, match="timeout"):
        robot_settings("c", None, KEY, {"timeout": bad})


def test_scrub_removes_the_key_from_a_requests_error_text() -> None:
    text = (
        "HTTPSConnectionPool(host='qyapi.weixin.qq.com', port=443): Max retries exceeded with url: "
        f"/cgi-bin/webhook/send?key={KEY} (Caused by NewConnectionError(...))"
    )
    assert KEY not in scrub_key(text) and "send?key=***" in scrub_key(text)


def test_scrub_removes_the_literal_key_and_its_url_encoded_form() -> None:
    key = "k+y/with space"
    text = f"robot {key} or k%2By%2Fwith%20space or access_token=abc"
    scrubbed = scrub_key(text, key)
    assert key not in scrubbed and "k%2By" not in scrubbed and "abc" not in scrubbed
