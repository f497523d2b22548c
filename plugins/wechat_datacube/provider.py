"""Provider info: registers connection types ``wechat`` and ``wecom_robot`` with their forms, and the notifier.

Airflow reads this through the ``apache_airflow_provider`` entry point declared in
pyproject.toml; a plugin cannot register a connection type. The form is declarative
(``conn-fields``), as Airflow 3.2+ expects. Extra fields are stored under their bare
names, which is what the hook reads.
"""

from __future__ import annotations

from typing import Any

DISTRIBUTION = "airflow-wechat-datacube"
DEFAULT_BASE_URL = "https://api.weixin.qq.com"
#: Where WeCom group robots take messages (the ``wecom_robot`` connection's default host).
DEFAULT_WECOM_WEBHOOK_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
TOKEN_MODES = ("stable", "classic", "authorizer", "external")


def _text(label: str, description: str, default: Any = None, *, secret: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if default is not None:
        schema["default"] = default
    if secret:
        schema["format"] = "password"
    return {"label": label, "schema": schema, "description": description}


def _number(label: str, description: str, default: float) -> dict[str, Any]:
    return {"label": label, "schema": {"type": ["number", "null"], "default": default}, "description": description}


CONN_FIELDS: dict[str, dict[str, Any]] = {
    "token_mode": {
        "label": "Token mode",
        "schema": {"type": ["string", "null"], "default": "stable", "enum": list(TOKEN_MODES)},
        "description": "stable: /cgi-bin/stable_token (default); classic: /cgi-bin/token; "
        "authorizer: third-party platform; external: read from an Airflow Variable.",
    },
    "token_variable": _text(
        "Token Variable (external mode)",
        "Airflow Variable holding the access token that a central token service keeps fresh.",
    ),
    "component_appid": _text("Component AppID (authorizer mode)", "Third-party platform AppID."),
    "component_token_variable": _text(
        "Component token Variable (authorizer mode)",
        "Airflow Variable holding the component_access_token that the platform keeps fresh.",
    ),
    "authorizer_appid": _text("Authorizer AppID (authorizer mode)", "AppID of the authorized Official Account."),
    "authorizer_refresh_token": _text(
        "Authorizer refresh token (authorizer mode)",
        "Initial authorizer_refresh_token; rotated values are persisted by the hook.",
        secret=True,
    ),
    "connect_timeout": _number("Connect timeout (s)", "TCP connect timeout for API calls.", 5.0),
    "read_timeout": _number("Read timeout (s)", "Read timeout for API calls.", 30.0),
    "verify": {
        "label": "Verify TLS",
        "schema": {"type": ["boolean", "null"], "default": True},
        "description": "Verify the server's TLS certificate (leave on in production).",
    },
}


WECOM_CONN_FIELDS: dict[str, dict[str, Any]] = {
    "timeout": {
        "label": "Timeout (s)",
        "schema": {"type": ["number", "null"]},
        "description": "Connect and read timeout of each request to the robot (default 3 s connect, 5 s read; "
        "[connect, read] in the JSON extra sets them apart).",
    },
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": DISTRIBUTION,
        "name": "WeChat Datacube",
        "description": "WeChat Official Account datacube (article analytics) hook, operator and DAGs.",
        "versions": ["0.1.0"],
        "connection-types": [
            {
                "hook-class-name": "wechat_datacube.hook.WeChatDatacubeHook",
                "hook-name": "WeChat Official Account",
                "connection-type": "wechat",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {"host": "API base URL", "login": "AppID", "password": "AppSecret"},
                    "placeholders": {"host": DEFAULT_BASE_URL, "login": "wx0123456789abcdef"},
                },
            },
            {
                "hook-class-name": "wechat_datacube.alerts.wecom.WeComRobotHook",
                "hook-name": "WeCom group robot",
                "connection-type": "wecom_robot",
                "conn-fields": WECOM_CONN_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"host": "Webhook URL", "password": "Robot key"},
                    "placeholders": {"host": DEFAULT_WECOM_WEBHOOK_URL, "password": "the webhook URL's key=... value"},
                },
            },
        ],
        "notifications": ["wechat_datacube.alerts.notifier.WeComRobotNotifier"],
    }
