"""The repo installs as an Airflow provider: `airflow providers list` and the `wechat` type."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.airflow import AIRFLOW_BIN
from wechat_datacube.provider import CONN_FIELDS, DISTRIBUTION, get_provider_info


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
    (conn_type,) = info["connection-types"]
    assert conn_type["connection-type"] == "wechat"
    assert conn_type["hook-class-name"] == "wechat_datacube.hook.WeChatDatacubeHook"
    assert conn_type["ui-field-behaviour"]["relabeling"] == {
        "host": "API base URL",
        "login": "AppID",
        "password": "AppSecret",
    }
    assert {"token_mode", "authorizer_refresh_token", "component_token_variable", "token_variable"} <= set(CONN_FIELDS)
    assert CONN_FIELDS["authorizer_refresh_token"]["schema"]["format"] == "password"
