"""Who may see the dashboard: a logged-in Airflow user who may read the account's DAG.

Airflow 3.3 mounts plugin FastAPI apps on the api-server *without* any authentication
(``airflow.api_fastapi.app.init_plugins`` only checks the URL prefix; the core API guards
its own routes with per-route dependencies, which a plugin app does not inherit). So the
app guards itself, with the mechanism the core API uses: the Airflow JWT, from the
``Authorization: Bearer`` header (API clients, ``POST /auth/token``) or else the ``_token``
cookie the UI sets at login, validated by the configured auth manager. Permissions are the
auth manager's too: reading an account's data needs GET on its daily DAG, so whoever may
see ``wechat_datacube_daily__<account>`` in Airflow may see its charts, and nobody else.
The accounts file's errors name any account, its connection ids and the file's path: only
a user who may read every DAG sees them, the others a generic line.

Airflow is imported inside the functions: the plugin module is loaded by every Airflow
process, while these checks only ever run in the api-server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fastapi import Request

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

#: The cookie the Airflow UI keeps its JWT in (``base_auth_manager.COOKIE_NAME_JWT_TOKEN``).
COOKIE_NAME = "_token"
#: What a user who may not read every DAG sees instead of the accounts file's errors.
HIDDEN_ERRORS_NOTICE = "Some accounts could not be loaded; ask an administrator."


class AccessDeniedError(Exception):
    """401: no valid login (the page redirects to the login form); 403: logged in, not allowed."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


def _token(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(COOKIE_NAME) or None


async def authenticate(request: Request) -> BaseUser:
    """The user of the request's Airflow JWT, or AccessDeniedError(401)."""
    from airflow.api_fastapi.app import get_auth_manager
    from jwt import InvalidTokenError

    token = _token(request)
    if token is None:
        raise AccessDeniedError(401, "Not authenticated: log in to Airflow first")
    try:
        return await get_auth_manager().get_user_from_token(token)
    except InvalidTokenError:  # expired, forged, revoked or malformed
        raise AccessDeniedError(401, "Not authenticated: the Airflow token is invalid or expired") from None


def account_dag_id(account: str) -> str:
    from wechat_datacube.dag_settings import DAILY_DAG_PREFIX

    return f"{DAILY_DAG_PREFIX}{account}"


def may_read_account(user: BaseUser, account: str) -> bool:
    """Whether the auth manager lets ``user`` read the account's daily DAG.

    Always asked per DAG, never "DAGs in general": with the FAB auth manager a role may be
    granted single DAGs without the global DAG-read permission, and must still see those.
    """
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    details = DagDetails(id=account_dag_id(account))
    return get_auth_manager().is_authorized_dag(method="GET", user=user, details=details)


def may_read_all_dags(user: BaseUser) -> bool:
    """Whether the auth manager lets ``user`` read DAGs in general (no DAG named: the global permission).

    A grant of single DAGs is not enough: a broken entry of the accounts file may belong
    to any account, and its message names it.
    """
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().is_authorized_dag(method="GET", user=user)


def visible_account_errors(user: BaseUser, errors: Sequence[str]) -> list[str]:
    """The accounts file's errors as ``user`` may see them: all for who may read every DAG, else one generic line.

    The general question is asked only when there are errors, and never decides which
    accounts a user sees (that stays per DAG, :func:`may_read_account`).
    """
    if not errors or may_read_all_dags(user):
        return list(errors)
    return [HIDDEN_ERRORS_NOTICE]


def require_account(user: BaseUser, account: str) -> None:
    if not may_read_account(user, account):
        raise AccessDeniedError(403, f"Forbidden: you may not read {account_dag_id(account)}")
