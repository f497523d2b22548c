"""Per-account access: the dashboard asks the auth manager about each account's daily DAG.

The auth manager here is a stand-in that grants exactly one DAG, as a FAB role with a
single ``DAG:<id>`` read permission (and no global DAG-read permission) would, or every
DAG; the real auth manager and login are exercised by tests/integration/dashboard/test_app.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from wechat_datacube.dag_settings import DAILY_DAG_PREFIX
from wechat_datacube.dashboard import guard
from wechat_datacube.dashboard.app import create_app

ACCOUNTS = """
accounts:
  - {name: alpha, wechat_conn_id: w_a, postgres_conn_id: pg, start_date: 2026-01-01, endpoints: [legacy]}
  - {name: beta, wechat_conn_id: w_b, postgres_conn_id: pg, start_date: 2026-01-01, endpoints: [legacy]}
"""


class OneDagAuthManager:
    """Grants GET on one DAG only; refuses "DAGs in general" (details=None)."""

    def __init__(self, dag_id: str) -> None:
        self.dag_id = dag_id
        self.asked: list[Any] = []

    def is_authorized_dag(self, *, method: str, user: Any, details: Any = None, **_: Any) -> bool:
        self.asked.append(details)
        return method == "GET" and details is not None and details.id == self.dag_id


class AllDagsAuthManager(OneDagAuthManager):
    """Grants GET on every DAG, and on DAGs in general."""

    def is_authorized_dag(self, *, method: str, user: Any, details: Any = None, **_: Any) -> bool:
        self.asked.append(details)
        return method == "GET"


def serve(accounts: Path, monkeypatch: pytest.MonkeyPatch, manager: OneDagAuthManager) -> TestClient:
    """The dashboard app for a logged-in user whom ``manager`` authorizes, on the accounts file ``accounts``."""
    monkeypatch.setenv("WECHAT_DATACUBE_ACCOUNTS", str(accounts))
    monkeypatch.setattr("airflow.api_fastapi.app.get_auth_manager", lambda: manager)
    app = create_app()
    app.dependency_overrides[guard.authenticate] = lambda: object()  # a logged-in user
    return TestClient(app)


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[TestClient, OneDagAuthManager]:
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text(ACCOUNTS)
    manager = OneDagAuthManager(f"{DAILY_DAG_PREFIX}alpha")
    return serve(accounts, monkeypatch, manager), manager


def test_user_with_one_dag_sees_that_account_only(client: tuple[TestClient, OneDagAuthManager]) -> None:
    http, manager = client
    response = http.get("/api/accounts")
    assert response.status_code == 200
    assert [a["name"] for a in response.json()["accounts"]] == ["alpha"]
    assert None not in manager.asked  # never "may read DAGs in general"


def test_user_with_one_dag_is_refused_the_other_accounts_data(client: tuple[TestClient, OneDagAuthManager]) -> None:
    http, _ = client
    response = http.get("/api/accounts/beta/daily")
    assert response.status_code == 403
    assert f"{DAILY_DAG_PREFIX}beta" in response.json()["detail"]


#: A broken entry whose message names another account and its connection.
BROKEN_ENTRY = "  - {name: gamma, wechat_conn_id: w_gamma, postgres_conn_id: pg_gamma, start_date: someday}\n"


@pytest.fixture(params=["broken-entry", "missing-file"])
def broken_accounts(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """(accounts file, a word its error shows): an invalid entry, or a file that is not there."""
    if request.param == "missing-file":
        return tmp_path / "secret-dir" / "accounts.yaml", "secret-dir"
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text(ACCOUNTS + BROKEN_ENTRY)
    return accounts, "gamma"


def test_accounts_file_errors_are_hidden_from_a_user_who_may_not_read_every_dag(
    broken_accounts: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts, revealing = broken_accounts
    http = serve(accounts, monkeypatch, OneDagAuthManager(f"{DAILY_DAG_PREFIX}alpha"))

    listing = http.get("/api/accounts")
    page = http.get("/", params={"account": "beta"})  # refused (403), still rendered with its notices

    for text in (listing.text, page.text):
        assert revealing not in text and "pg_gamma" not in text and str(accounts.parent) not in text
    assert listing.json()["errors"] == [guard.HIDDEN_ERRORS_NOTICE]
    assert guard.HIDDEN_ERRORS_NOTICE in page.text


def test_accounts_file_errors_are_shown_to_a_user_who_may_read_every_dag(
    broken_accounts: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts, revealing = broken_accounts
    http = serve(accounts, monkeypatch, AllDagsAuthManager("any"))

    errors = http.get("/api/accounts").json()["errors"]

    assert len(errors) == 1 and revealing in errors[0]
    assert revealing in http.get("/", params={"account": "beta"}).text
