"""The repo installs as an Airflow provider: `airflow providers list`, the `wechat` and `wecom_robot` types,
and the WeCom notifier."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.airflow import AIRFLOW_BIN
from tests.fixtures.wecom_robot import FakeWeComRobot, register_wecom_conn
from wechat_datacube.provider import CONN_FIELDS, DEFAULT_WECOM_WEBHOOK_URL, DISTRIBUTION, get_provider_info


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("provider-home")
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    subprocess.run([AIRFLOW_BIN, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    return env


def _airflow(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([AIRFLOW_BIN, *args], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_providers_list_shows_the_distribution(cli_env: dict[str, str]) -> None:
    out = _airflow(cli_env, "providers", "list", "-o", "json")
    names = {p["package_name"] for p in json.loads(out[out.index("[") :])}
    assert DISTRIBUTION in names


def test_connection_type_wechat_is_kept_by_the_cli(cli_env: dict[str, str], tmp_path: Path) -> None:
    _airflow(
        cli_env,
        "connections", "add", "wechat_cli_check",
        "--conn-type", "wechat",
        "--conn-host", "https://api.weixin.qq.com",
        "--conn-login", "wx0123456789abcdef",
        "--conn-password", "s3cret-value-for-test",
        "--conn-extra", json.dumps({"token_mode": "classic"}),
    )  # fmt: skip
    out = _airflow(cli_env, "connections", "get", "wechat_cli_check", "-o", "json")
    conn = json.loads(out[out.index("[") :])[0]
    assert conn["conn_type"] == "wechat"
    assert conn["extra_dejson"] == {"token_mode": "classic"}


def test_provider_info_declares_the_form_the_hook_reads() -> None:
    info = get_provider_info()
    conn_type = next(c for c in info["connection-types"] if c["connection-type"] == "wechat")
    assert conn_type["hook-class-name"] == "wechat_datacube.hook.WeChatDatacubeHook"
    assert conn_type["ui-field-behaviour"]["relabeling"] == {
        "host": "API base URL",
        "login": "AppID",
        "password": "AppSecret",
    }
    assert {"token_mode", "authorizer_refresh_token", "component_token_variable", "token_variable"} <= set(CONN_FIELDS)
    assert CONN_FIELDS["authorizer_refresh_token"]["schema"]["format"] == "password"


def test_providers_manager_lists_the_wecom_robot_type_with_its_key_in_a_masked_field() -> None:
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
    from airflow.providers_manager import ProvidersManager

    meta = next(m for m in ProvidersManager().iter_connection_type_hook_ui_metadata()
                if m.connection_type == "wecom_robot")  # fmt: skip
    assert meta.hook_name == "WeCom group robot"
    assert meta.hook_class_name == "wechat_datacube.alerts.wecom.WeComRobotHook"
    (form,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "wecom_robot"]
    standard = form.standard_fields
    assert standard is not None
    # The key goes in the password field (a masked input), never in the URL shown in the form.
    assert (standard.password.hidden, standard.password.title) == (False, "Robot key")
    assert (standard.host.title, standard.host.placeholder) == ("Webhook URL", DEFAULT_WECOM_WEBHOOK_URL)
    assert standard.login.hidden and standard.port.hidden and standard.url_schema.hidden
    assert set(form.extra_fields or {}) == {"timeout"}


def test_providers_manager_lists_the_wecom_notifier() -> None:
    from airflow.providers_manager import ProvidersManager

    assert "wechat_datacube.alerts.notifier.WeComRobotNotifier" in ProvidersManager().notification


def test_reading_a_wecom_robot_connection_masks_its_key_in_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk._shared.secrets_masker import redact

    from wechat_datacube.alerts.wecom import WeComRobotHook

    robot = FakeWeComRobot(base_url="http://127.0.0.1:9/cgi-bin/webhook/send")
    WeComRobotHook(register_wecom_conn(monkeypatch, robot)).robot_id  # noqa: B018  reads the connection

    assert redact(f"POST {robot.base_url}?key={robot.key}") == f"POST {robot.base_url}?key=***"
