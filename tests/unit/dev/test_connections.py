"""The one builder of the ``wechat`` connection: what Airflow reads from it, and what it leaves out."""

from __future__ import annotations

import json

import pytest
from wechat_datacube_dev.connections import (
    WECHAT_CONN_TYPE,
    connection_env_var,
    wechat_connection,
    wechat_connection_env,
)


def test_the_connection_carries_url_credentials_and_extras() -> None:
    conn = wechat_connection("http://sim:1", "wx_app", "app-secret", token_mode="classic", read_timeout=5)
    assert conn == {
        "conn_type": "wechat",
        "host": "http://sim:1",
        "login": "wx_app",
        "password": "app-secret",
        "extra": {"token_mode": "classic", "read_timeout": 5},
    }


def test_fields_not_given_are_left_out() -> None:
    assert wechat_connection("http://sim:1") == {"conn_type": "wechat", "host": "http://sim:1"}
    assert wechat_connection("http://sim:1", token_mode="authorizer") == {
        "conn_type": "wechat", "host": "http://sim:1", "extra": {"token_mode": "authorizer"},
    }  # fmt: skip


def test_the_environment_form_is_airflows_variable_name_and_json() -> None:
    name, value = wechat_connection_env("wechat_demo", "http://sim:1", "wx_app", "s", token_mode="stable")
    assert name == connection_env_var("wechat_demo") == "AIRFLOW_CONN_WECHAT_DEMO"
    assert json.loads(value) == wechat_connection("http://sim:1", "wx_app", "s", token_mode="stable")


def test_airflow_reads_it_as_a_connection_of_the_providers_type(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.models.connection import Connection

    from wechat_datacube.hook import WeChatDatacubeHook

    assert WECHAT_CONN_TYPE == WeChatDatacubeHook.conn_type  # the copy here must follow the provider
    monkeypatch.setenv(*wechat_connection_env("wechat_built", "http://sim:1", "wx_app", "s", token_mode="stable"))
    conn = Connection.get_connection_from_secrets("wechat_built")
    assert (conn.conn_type, conn.host, conn.login, conn.password) == ("wechat", "http://sim:1", "wx_app", "s")
    assert conn.extra_dejson == {"token_mode": "stable"}
    direct = Connection(conn_id="wechat_direct", **wechat_connection("http://sim:1", "wx_app", "s", token_mode="x"))
    assert direct.extra_dejson == {"token_mode": "x"}
