"""The ``wechat`` Airflow connection, built in one place for tests, benchmarks and the launcher.

Everything that runs the pipeline outside a deployment — the test fixtures, the benchmark
and reliability suites, ``make run`` — points an account at a simulator through an ordinary
``wechat`` connection. Its shape (Airflow's JSON form: ``conn_type``, ``host``, ``login`` =
AppID, ``password`` = AppSecret, ``extra`` = token mode and the like) is written here once,
so a change to the connection form is made once, not in every harness.
"""

from __future__ import annotations

import json
from typing import Any

#: The provider's ``conn_type`` (``WeChatDatacubeHook.conn_type``; not imported: that module imports Airflow).
WECHAT_CONN_TYPE = "wechat"


def connection_env_var(conn_id: str) -> str:
    """The environment variable Airflow reads connection ``conn_id`` from (``AIRFLOW_CONN_<ID>``)."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def connection_json(
    conn_type: str, host: str, login: str | None = None, password: str | None = None, **extra: Any
) -> dict[str, Any]:
    """Any connection in Airflow's JSON form; fields not given are left out, ``extra`` when empty too."""
    conn: dict[str, Any] = {"conn_type": conn_type, "host": host}
    if login is not None:
        conn["login"] = login
    if password is not None:
        conn["password"] = password
    if extra:
        conn["extra"] = extra
    return conn


def wechat_connection(
    host: str, login: str | None = None, password: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A ``wechat`` connection in Airflow's JSON form: the API base URL, AppID, AppSecret and extras.

    Fields not given are left out (as a connection missing its credentials is, which the
    hook must report); ``extra`` is omitted when empty. The dict is also what
    ``Connection(**...)`` takes.
    """
    return connection_json(WECHAT_CONN_TYPE, host, login, password, **extra)


def wechat_connection_env(
    conn_id: str, host: str, login: str | None = None, password: str | None = None, **extra: Any
) -> tuple[str, str]:
    """``(AIRFLOW_CONN_<ID>, JSON)``: :func:`wechat_connection` as an environment variable.

    For ``monkeypatch.setenv(*...)``, ``os.environ.update([...])`` or a cluster's ``env``.
    """
    return connection_env_var(conn_id), json.dumps(wechat_connection(host, login, password, **extra))
