"""The dashboard app on a real api-server: the guard, the page, bad requests, secrets, a broken accounts file.

``dashboard_server`` (tests/fixtures/dashboard.py) is a real Airflow api-server with the
simple auth manager and known users, serving the plugin from the repo's plugins/ folder,
over data the pipeline loaded from the simulator.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from tests.fixtures.dashboard import (
    BEGIN,
    BLANK_ACCOUNT,
    DEMO,
    DEMO_ACCOUNT,
    END,
    QUIET_ACCOUNT,
    RANGE,
    DashboardServer,
    iso,
)
from tests.fixtures.simulator import TEST_SECRET
from wechat_datacube.dashboard.guard import HIDDEN_ERRORS_NOTICE

# --- the guard -----------------------------------------------------------------------------------


def test_plugin_registers_its_app_and_a_ui_navigation_entry(dashboard_server: DashboardServer) -> None:
    response = dashboard_server.get("", user="admin")  # the app answers at its prefix (redirect to "/")
    assert response.status_code == 200
    plugins = requests.get(
        f"{dashboard_server.base_url}/api/v2/plugins",
        headers={"Authorization": f"Bearer {dashboard_server.token('admin')}"},
        timeout=30,
    ).json()["plugins"]
    (plugin,) = [p for p in plugins if p["name"] == "wechat_datacube_dashboard"]
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == ["/wechat-dashboard"]
    (view,) = plugin["external_views"]
    assert (view["href"], view["url_route"], view["destination"]) == ("/wechat-dashboard/", "wechat-datacube", "nav")


@pytest.mark.parametrize(
    "path",
    ["/api/accounts", f"{DEMO}/daily", f"{DEMO}/dashboard", f"{DEMO}/freshness", f"{DEMO}/article-curves",
     f"{DEMO}/followers", f"{DEMO}/follow-sources", f"{DEMO}/messages"],
)
def test_anonymous_json_request_is_refused_with_401(dashboard_server: DashboardServer, path: str) -> None:
    response = dashboard_server.get(path, user=None, params=RANGE)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "int_page_read" not in response.text and DEMO_ACCOUNT not in response.text


def test_anonymous_page_is_sent_to_the_airflow_login(dashboard_server: DashboardServer) -> None:
    response = dashboard_server.get("/", user=None, allow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/auth/login?next=")
    assert "wechat-dashboard" in response.headers["location"]


def forged_token() -> str:
    """A well-formed Airflow-style JWT signed with a key the server does not have."""
    now = dt.datetime.now(dt.UTC)
    claims = {"sub": "admin", "role": "admin", "aud": "apache-airflow", "iat": now, "nbf": now,
              "exp": now + dt.timedelta(hours=1)}
    return jwt.encode(claims, "not-the-server-secret-" + "x" * 64, algorithm="HS512")


@pytest.mark.parametrize("token", [forged_token(), "not-a-jwt"])
def test_forged_or_garbage_token_is_refused_as_header_and_as_cookie(
    dashboard_server: DashboardServer, token: str
) -> None:
    as_header = dashboard_server.get("/api/accounts", user=None, headers={"Authorization": f"Bearer {token}"})
    as_cookie = dashboard_server.get("/api/accounts", user=None, cookies={"_token": token})
    assert (as_header.status_code, as_cookie.status_code) == (401, 401)
    page = dashboard_server.get("/", user=None, cookies={"_token": token}, allow_redirects=False)
    assert page.status_code == 303


def test_logged_in_user_gets_in_with_the_bearer_token_or_the_ui_cookie(dashboard_server: DashboardServer) -> None:
    token = dashboard_server.token("viewer")
    by_header = dashboard_server.get("/api/accounts", user="viewer")
    by_cookie = dashboard_server.get("/api/accounts", user=None, cookies={"_token": token})
    assert by_header.status_code == by_cookie.status_code == 200
    names = [a["name"] for a in by_header.json()["accounts"]]
    assert names == [DEMO_ACCOUNT, QUIET_ACCOUNT, BLANK_ACCOUNT]
    assert by_cookie.json() == by_header.json()


def test_no_openapi_schema_or_docs_escape_the_guard(dashboard_server: DashboardServer) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert dashboard_server.get(path, user=None).status_code in (401, 404), path
        assert dashboard_server.get(path).status_code == 404, path


# --- the page and bad requests -------------------------------------------------------------------


def test_page_shows_the_replacement_charts_with_their_articles(dashboard_server: DashboardServer) -> None:
    page = dashboard_server.get("/", params={"account": DEMO_ACCOUNT, **RANGE})
    assert page.status_code == 200
    for chart in ("chart-read-scenes", "chart-biz-summary", "chart-biz-engagement", "chart-article-curves"):
        assert f'id="{chart}"' in page.text
    articles = dashboard_server.json(f"{DEMO}/article-curves", **RANGE)["article_curves"]
    for article in articles:
        assert f"<td>{article['msgid']}</td><td>{article['ref_date']}</td>" in page.text
    assert "全部 · all readers (total)" in page.text


def test_page_shows_follower_growth_and_messages_with_their_tables(dashboard_server: DashboardServer) -> None:
    page = dashboard_server.get("/", params={"account": DEMO_ACCOUNT, **RANGE})
    assert page.status_code == 200
    for chart in ("chart-followers", "chart-followers-total", "chart-follow-sources-new",
                  "chart-follow-sources-cancel", "chart-follow-sources-net", "chart-messages", "chart-message-users"):
        assert f'<svg class="chart" id="{chart}"' in page.text  # drawn, not the empty state
    for s in dashboard_server.json(f"{DEMO}/follow-sources", **RANGE)["follow_sources"]:
        sums = s["sums"]
        assert (f"<td>{html.escape(s['label'])}</td><td>{s['user_source']}</td><td class=num>{sums['new_user']}</td>"
                f"<td class=num>{sums['cancel_user']}</td><td class=num>{sums['net_user']}</td>") in page.text
    for s in dashboard_server.json(f"{DEMO}/messages", **RANGE)["messages"]:
        row = f"<td>{html.escape(s['label'])}</td><td>{s['msg_type']}</td><td class=num>{s['sums']['msg_count']}</td>"
        assert row in page.text


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/accounts/nobody/daily", RANGE, 404),
        ("/api/accounts/demo' OR '1'='1/daily", RANGE, 404),
        (f"{DEMO}/passwords", RANGE, 404),
        (f"{DEMO}/daily", {"begin": iso(END), "end": iso(BEGIN)}, 400),
        (f"{DEMO}/daily", {"begin": "2024-01-01", "end": iso(END)}, 400),
        (f"{DEMO}/daily", {"begin": "yesterday"}, 422),
        (f"{DEMO}/articles", {"top": 500}, 422),
        (f"{DEMO}/article-curves", {"top": 0}, 422),
    ],
)
def test_bad_requests_are_refused_with_a_clear_status(
    dashboard_server: DashboardServer, path: str, params: dict[str, Any], status: int
) -> None:
    response = dashboard_server.get(path, params=params)
    assert response.status_code == status, response.text
    assert "detail" in response.json()


def test_no_secret_reaches_any_response(dashboard_server: DashboardServer) -> None:
    texts = [
        dashboard_server.get("/api/accounts").text,
        dashboard_server.get(f"{DEMO}/dashboard", params=RANGE).text,
        dashboard_server.get("/", params={"account": DEMO_ACCOUNT, **RANGE}).text,
        dashboard_server.get(f"/api/accounts/{BLANK_ACCOUNT}/dashboard").text,
    ]
    tokens = dashboard_server.demo.sim.state.issued_tokens()
    assert tokens  # the load did use tokens, and the hook cached them in the same database
    for text in texts:
        assert TEST_SECRET not in text
        assert not any(t in text for t in tokens)
        assert "postgresql://" not in text and dashboard_server.demo.dsn not in text


# --- a broken accounts file: never a 500 ---------------------------------------------------------


@pytest.fixture
def accounts_file(dashboard_server: DashboardServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The running server's accounts file (read at every request); restored after the test."""
    # tests/fixtures/dashboard.py writes it to its mktemp("dashboard-airflow") home ("...current" is a symlink).
    (path,) = {p.resolve() for p in tmp_path_factory.getbasetemp().glob("dashboard-airflow*/accounts.yaml")}
    original = path.read_bytes()
    yield path
    path.write_bytes(original)


BROKEN_ACCOUNT = (
    "  - {name: broken, wechat_conn_id: wechat_x, postgres_conn_id: wechat_x, start_date: 2026-02-30, "
    "endpoints: [legacy]}\n"
)


def test_an_impossible_date_in_one_account_spares_the_others(dashboard_server: DashboardServer, accounts_file: Path) -> None:
    accounts_file.write_text(accounts_file.read_text() + BROKEN_ACCOUNT)

    listed = dashboard_server.get("/api/accounts", user="admin")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert {a["name"] for a in body["accounts"]} == {DEMO_ACCOUNT, QUIET_ACCOUNT, BLANK_ACCOUNT}
    (error,) = body["errors"]
    assert "account 'broken', field 'start_date'" in error and "day is out of range for month" in error
    page = dashboard_server.get("/", user="admin", params={"account": DEMO_ACCOUNT, **RANGE})
    assert page.status_code == 200 and "day is out of range for month" in page.text
    assert dashboard_server.get(f"{DEMO}/daily", params=RANGE).status_code == 200
    missing = dashboard_server.get("/api/accounts/broken/daily", user="admin")
    assert missing.status_code == 404 and "broken" in missing.json()["detail"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00 not an accounts file", "not a text (UTF-8) file"),
        (b"accounts: [unclosed\n", "not valid YAML"),
        (b"Dear team, please add our account.\n", "expected a mapping with an 'accounts' list"),
    ],
)
def test_a_file_that_is_no_accounts_file_is_one_clear_error_never_a_500(
    dashboard_server: DashboardServer, accounts_file: Path, content: bytes, problem: str
) -> None:
    accounts_file.write_bytes(content)

    for user in ("admin", "viewer"):
        listed = dashboard_server.get("/api/accounts", user=user)
        assert listed.status_code == 200, listed.text
        assert listed.json()["accounts"] == []
        (error,) = listed.json()["errors"]
        assert error == HIDDEN_ERRORS_NOTICE or (error.startswith(f"accounts file {accounts_file}: ") and problem in error)
        assert "Traceback" not in error and "\n" not in error
        page = dashboard_server.get("/", user=user)
        assert page.status_code == 200, page.text[:500]
        for path, status in (("/", 404), (f"{DEMO}/dashboard", 404), (f"{DEMO}/freshness", 404)):
            response = dashboard_server.get(path, user=user, params={"account": DEMO_ACCOUNT} if path == "/" else {})
            assert response.status_code == status, (path, response.text[:500])
    admin_error = dashboard_server.get("/api/accounts", user="admin").json()["errors"][0]
    assert problem in admin_error and str(accounts_file) in admin_error
    assert html.escape(problem) in dashboard_server.get("/", user="admin").text
