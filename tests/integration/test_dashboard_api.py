"""The dashboard's JSON endpoints and its guard, on a real api-server over data the pipeline loaded.

``dashboard_server`` (tests/fixtures/dashboard.py) is a real Airflow api-server with the
simple auth manager and known users, serving the plugin from the repo's plugins/ folder;
the data was loaded by the operator from the simulator, so every legacy figure is compared
with the simulator's truth. The replacement family's charts are compared with what the
tables hold, read here with SQL of the tests' own (the simulator's shapes are its own
business; what the dashboard must show is what was stored).
"""

from __future__ import annotations

import datetime as dt
import html
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pytest
import requests

from tests.fixtures.dashboard import (
    BEGIN,
    BLANK_ACCOUNT,
    DEMO_ACCOUNT,
    EMPTY_DAY,
    END,
    GAP_DAY,
    NOT_READY_DAY,
    QUIET_ACCOUNT,
    DashboardServer,
)
from tests.fixtures.simulator import TEST_APPID, TEST_SECRET
from tests.fixtures.truth import truth_dicts
from wechat_datacube.dashboard import queries
from wechat_datacube.dashboard.guard import HIDDEN_ERRORS_NOTICE
from wechat_datacube.endpoints import LEGACY

ALL = 99999999
RANGE = {"begin": BEGIN.isoformat(), "end": END.isoformat()}
DEMO = f"/api/accounts/{DEMO_ACCOUNT}"


def truth(server: DashboardServer, endpoint: str) -> list[dict[str, Any]]:
    return truth_dicts(server.demo.sim, TEST_APPID, endpoint, BEGIN, END, account=DEMO_ACCOUNT)


def iso(day: dt.date) -> str:
    return day.isoformat()


def stored(server: DashboardServer, query: str, *params: Any) -> list[dict[str, Any]]:
    """Rows of ``query`` on the demo database, as dicts (independent of the code under test)."""
    with psycopg.connect(server.demo.dsn) as conn:
        cur = conn.execute(query, params)
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def with_iso_dates(rows: list[dict[str, Any]], *columns: str) -> list[dict[str, Any]]:
    return [{**r, **{c: iso(r[c]) for c in columns}} for r in rows]


# --- the guard ----------------------------------------------------------------------


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
    "path", ["/api/accounts", f"{DEMO}/daily", f"{DEMO}/dashboard", f"{DEMO}/freshness", f"{DEMO}/article-curves"]
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


# --- the data -----------------------------------------------------------------------


def test_daily_figures_are_the_all_sources_row_never_a_sum_of_channels(dashboard_server: DashboardServer) -> None:
    daily = dashboard_server.json(f"{DEMO}/daily", **RANGE)["daily"]
    rows = truth(dashboard_server, "getuserread")
    metrics = ("int_page_read_user", "int_page_read_count", "share_user", "share_count", "add_to_fav_user",
               "add_to_fav_count")
    expected = [
        {"ref_date": iso(r["ref_date"]), **{m: r[m] for m in metrics}}
        for r in sorted(rows, key=lambda r: r["ref_date"])
        if r["user_source"] == ALL and r["ref_date"] != GAP_DAY
    ]
    assert daily == expected
    assert iso(GAP_DAY) not in {d["ref_date"] for d in daily}  # never fetched: no invented zero
    channel_sum = sum(r["int_page_read_user"] for r in rows if r["ref_date"] == BEGIN and r["user_source"] != ALL)
    assert daily[0]["int_page_read_user"] != channel_sum  # the channels overlap: their sum is not the total


def test_read_sources_are_one_series_per_channel_over_time(dashboard_server: DashboardServer) -> None:
    series = dashboard_server.json(f"{DEMO}/sources", **RANGE)["sources"]
    expected: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in sorted(truth(dashboard_server, "getuserread"), key=lambda r: r["ref_date"]):
        if r["user_source"] != ALL and r["ref_date"] != GAP_DAY:
            expected[r["user_source"]].append({"ref_date": iso(r["ref_date"]), "int_page_read_user":
                                               r["int_page_read_user"], "int_page_read_count": r["int_page_read_count"]})
    assert {s["user_source"]: s["points"] for s in series} == dict(expected)
    assert {s["user_source"]: s["label"] for s in series}[0] == "chat session"


def test_share_scenes_are_one_series_per_scene_over_time(dashboard_server: DashboardServer) -> None:
    series = dashboard_server.json(f"{DEMO}/share-scenes", **RANGE)["share_scenes"]
    expected: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in sorted(truth(dashboard_server, "getusershare"), key=lambda r: r["ref_date"]):
        if r["ref_date"] != EMPTY_DAY:  # stored as empty: WeChat answered with no rows
            expected[r["share_scene"]].append(
                {"ref_date": iso(r["ref_date"]), "share_user": r["share_user"], "share_count": r["share_count"]}
            )
    assert {s["share_scene"]: s["points"] for s in series} == dict(expected)
    assert {s["label"] for s in series} >= {"friend forward", "Moments"}


def test_hourly_profile_averages_each_hour_over_the_loaded_days(dashboard_server: DashboardServer) -> None:
    hours = dashboard_server.json(f"{DEMO}/hourly", **RANGE)["hourly"]
    reads: dict[int, list[int]] = defaultdict(list)
    for r in truth(dashboard_server, "getuserreadhour"):
        if r["user_source"] == ALL:
            reads[r["ref_hour"]].append(r["int_page_read_count"])
    shares: dict[tuple[int, dt.date], int] = defaultdict(int)
    for r in truth(dashboard_server, "getusersharehour"):
        if r["ref_date"] != NOT_READY_DAY:  # not loaded yet
            shares[(r["ref_hour"], r["ref_date"])] += r["share_count"]
    assert [h["ref_hour"] for h in hours] == list(range(0, 2400, 100))
    for h in hours:
        assert h["days"] == len(reads[h["ref_hour"]]) == 19
        assert h["int_page_read_count"] == pytest.approx(sum(reads[h["ref_hour"]]) / 19, abs=0.01)
        per_day = [v for (hour, _), v in shares.items() if hour == h["ref_hour"]]
        assert h["share_count"] == pytest.approx(sum(per_day) / len(per_day), abs=0.01)
    assert max(hours, key=lambda h: h["int_page_read_count"])["ref_hour"] != 300  # a profile, not noise


def test_top_articles_rank_by_latest_cumulative_readers_with_their_7_day_curves(
    dashboard_server: DashboardServer,
) -> None:
    articles = dashboard_server.json(f"{DEMO}/articles", top=3, **RANGE)["articles"]
    curves: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in sorted(truth(dashboard_server, "getarticletotal"), key=lambda r: r["stat_date"]):
        curves[(iso(r["ref_date"]), r["msgid"])].append(r)
    ranking = sorted(curves, key=lambda k: (-curves[k][-1]["int_page_read_user"], k))
    assert [(a["ref_date"], a["msgid"]) for a in articles] == ranking[:3]
    for article in articles:
        rows = curves[(article["ref_date"], article["msgid"])]
        assert article["int_page_read_user"] == rows[-1]["int_page_read_user"]
        assert article["title"] == rows[0]["title"]
        assert [(p["day"], p["int_page_read_user"], p["int_page_read_count"], p["share_count"]) for p in
                article["curve"]] == [
            ((r["stat_date"] - r["ref_date"]).days, r["int_page_read_user"], r["int_page_read_count"],
             r["share_count"]) for r in rows
        ]
        readers = [p["int_page_read_user"] for p in article["curve"]]
        assert 1 <= len(readers) <= 7 and readers == sorted(readers)  # cumulative: never decreases
    assert len(dashboard_server.json(f"{DEMO}/articles", **RANGE)["articles"]) == min(5, len(ranking))


# --- the replacement family ---------------------------------------------------------


def test_read_scenes_are_one_line_per_scene_with_wechats_total_first(dashboard_server: DashboardServer) -> None:
    series = dashboard_server.json(f"{DEMO}/read-scenes", **RANGE)["read_scenes"]
    rows = stored(
        dashboard_server,
        "SELECT e ->> 'scene_desc' AS scene, b.ref_date, (e ->> 'user_count')::bigint AS user_count"
        " FROM wechat.biz_summary b CROSS JOIN LATERAL jsonb_array_elements(b.read_user_source) e"
        " WHERE b.account = %s AND b.ref_date BETWEEN %s AND %s ORDER BY b.ref_date",
        DEMO_ACCOUNT, BEGIN, END,
    )
    expected: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        expected[r["scene"]].append({"ref_date": iso(r["ref_date"]), "user_count": r["user_count"]})
    assert {s["scene_desc"]: s["points"] for s in series} == dict(expected)
    assert len(series) >= 5

    total, *scenes = series
    assert total["scene_desc"] == "全部" and total["total"] and "total" in total["label"]
    assert not any(s["total"] for s in scenes)
    readers = stored(dashboard_server, "SELECT ref_date, read_user FROM wechat.biz_summary"
                     " WHERE account = %s AND ref_date BETWEEN %s AND %s ORDER BY ref_date", DEMO_ACCOUNT, BEGIN, END)
    assert [(p["ref_date"], p["user_count"]) for p in total["points"]] == [
        (iso(r["ref_date"]), r["read_user"]) for r in readers]
    assert len(total["points"]) == 19
    volumes = [sum(p["user_count"] for p in s["points"]) for s in scenes]
    assert volumes == sorted(volumes, reverse=True)  # the biggest scenes first in the legend
    first_day = sum(s["points"][0]["user_count"] for s in scenes)
    assert first_day != total["points"][0]["user_count"]  # scenes overlap: their sum is not the total


def test_biz_summary_is_the_stored_daily_overview(dashboard_server: DashboardServer) -> None:
    daily = dashboard_server.json(f"{DEMO}/biz-summary", **RANGE)["biz_summary"]
    rows = stored(
        dashboard_server,
        "SELECT ref_date, read_user, share_user, zaikan_user, like_user, comment_count FROM wechat.biz_summary"
        " WHERE account = %s AND ref_date BETWEEN %s AND %s ORDER BY ref_date",
        DEMO_ACCOUNT, BEGIN, END,
    )
    assert daily == with_iso_dates(rows, "ref_date")
    assert len(daily) == 19 and all(d["read_user"] > d["share_user"] > 0 for d in daily)


def stored_detail_curves(server: DashboardServer) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Per (publish date, msgid): the stored getarticletotaldetail rows in stat_date order."""
    rows = stored(
        server,
        "SELECT ref_date, msgid, stat_date, publish_type, read_user, share_user, zaikan_user, like_user,"
        " comment_count FROM wechat.article_total_detail WHERE account = %s AND ref_date BETWEEN %s AND %s"
        " ORDER BY stat_date",
        DEMO_ACCOUNT, BEGIN, END,
    )
    curves: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        curves[(iso(r["ref_date"]), r["msgid"])].append(r)
    return curves


def detail_ranking(curves: dict[tuple[str, str], list[dict[str, Any]]]) -> list[tuple[str, str]]:
    """Most readers on the latest stat_date first; ties: newer publish date, then msgid."""
    return sorted(curves, key=lambda k: (-curves[k][-1]["read_user"], -dt.date.fromisoformat(k[0]).toordinal(), k[1]))


@pytest.mark.parametrize("top", [3, 5])
def test_article_curves_rank_by_final_readers_with_cumulative_30_day_curves(
    dashboard_server: DashboardServer, top: int
) -> None:
    articles = dashboard_server.json(f"{DEMO}/article-curves", top=top, **RANGE)["article_curves"]
    curves = stored_detail_curves(dashboard_server)
    assert len(curves) > top
    assert [(a["ref_date"], a["msgid"]) for a in articles] == detail_ranking(curves)[:top]
    titles = {r["msgid"]: r["title"] for r in stored(
        dashboard_server, "SELECT DISTINCT msgid, title FROM wechat.article_total WHERE account = %s", DEMO_ACCOUNT)}
    metrics = ("read_user", "share_user", "zaikan_user", "like_user", "comment_count")
    for article in articles:
        rows = curves[(article["ref_date"], article["msgid"])]
        latest = rows[-1]
        assert (article["read_user"], article["share_user"], article["publish_type"]) == (
            latest["read_user"], latest["share_user"], latest["publish_type"])
        assert article["latest_stat_date"] == iso(latest["stat_date"])
        assert article["title"] == titles.get(article["msgid"])  # from the legacy table, when it knows the msgid
        assert [(p["day"], p["stat_date"], *(p[m] for m in metrics)) for p in article["curve"]] == [
            ((r["stat_date"] - r["ref_date"]).days, iso(r["stat_date"]), *(r[m] for m in metrics)) for r in rows
        ]
        days = [p["day"] for p in article["curve"]]
        readers = [p["read_user"] for p in article["curve"]]
        assert days == sorted(set(days)) and 0 <= days[0] and days[-1] <= 29
        assert readers == sorted(readers)  # cumulative: never decreases
    assert any(a["title"] for a in articles)  # the legacy family saw these articles too
    assert max(len(a["curve"]) for a in articles) > 7  # longer than a legacy (7-day) curve


def test_article_curves_need_no_legacy_table_for_titles(dashboard_server: DashboardServer) -> None:
    """Without title tables the same articles come back, titled None (labelled by msgid and date)."""
    with psycopg.connect(dashboard_server.demo.dsn) as conn, conn.cursor() as cur:
        bare = queries.article_curves(cur, "wechat", DEMO_ACCOUNT, BEGIN, END, limit=5, title_tables=())
    assert [(iso(a["ref_date"]), a["msgid"]) for a in bare] == detail_ranking(stored_detail_curves(dashboard_server))[:5]
    assert all(a["title"] is None and a["curve"] for a in bare)


def test_page_shows_the_replacement_charts_with_their_articles(dashboard_server: DashboardServer) -> None:
    page = dashboard_server.get("/", params={"account": DEMO_ACCOUNT, **RANGE})
    assert page.status_code == 200
    for chart in ("chart-read-scenes", "chart-biz-summary", "chart-biz-engagement", "chart-article-curves"):
        assert f'id="{chart}"' in page.text
    articles = dashboard_server.json(f"{DEMO}/article-curves", **RANGE)["article_curves"]
    for article in articles:
        assert f"<td>{article['msgid']}</td><td>{article['ref_date']}</td>" in page.text
    assert "全部 · all readers (total)" in page.text


def test_freshness_shows_last_day_empty_and_not_ready_days_and_gaps(dashboard_server: DashboardServer) -> None:
    wider = {"begin": iso(BEGIN - dt.timedelta(days=5)), "end": iso(END)}  # before the account's start: n/a
    reports = {r["endpoint"]: r for r in dashboard_server.json(f"{DEMO}/freshness", **wider)["freshness"]}
    assert list(reports) == list(LEGACY)
    read, share, share_hour = reports["getuserread"], reports["getusershare"], reports["getusersharehour"]
    assert read["last_loaded"] == iso(END)
    assert read["gaps"] == [{"from": iso(GAP_DAY), "to": iso(GAP_DAY), "days": 1}]
    assert share["empty_days"] == [iso(EMPTY_DAY)] and share["gaps"] == []
    assert share_hour["not_ready_days"] == [iso(NOT_READY_DAY)] and share_hour["last_loaded"] == iso(END - dt.timedelta(1))
    for report in reports.values():
        assert report["expected_from"] == iso(BEGIN)
        assert [c["status"] for c in report["calendar"][:5]] == ["n/a"] * 5
        assert report["loaded_days"] + len(report["empty_days"]) + len(report["not_ready_days"]) + sum(
            g["days"] for g in report["gaps"]) == 19
        assert report["failed_days"] == []


def test_default_range_ends_at_the_newest_loaded_day_and_starts_with_the_account(
    dashboard_server: DashboardServer,
) -> None:
    data = dashboard_server.json(f"{DEMO}/daily")  # 19 days loaded: fewer than the default 30
    assert (data["begin"], data["end"]) == (iso(BEGIN), iso(END))
    assert len(data["daily"]) == 18
    later = dashboard_server.json(f"{DEMO}/daily", end=iso(END + dt.timedelta(days=40)))
    assert later["begin"] == iso(END + dt.timedelta(days=11))  # 30 days up to the given end


def test_account_with_no_rows_gets_empty_charts_and_every_day_a_gap(dashboard_server: DashboardServer) -> None:
    data = dashboard_server.json(f"/api/accounts/{QUIET_ACCOUNT}/dashboard", **RANGE)
    assert data["missing_tables"] == []
    sections = ("daily", "sources", "share_scenes", "hourly", "articles", "read_scenes", "biz_summary",
                "article_curves")
    assert [data[s] for s in sections] == [[]] * len(sections)
    assert all(r["gaps"] == [{"from": iso(BEGIN), "to": iso(END), "days": 19}] for r in data["freshness"])


def test_empty_database_is_reported_as_no_data_not_as_an_error(dashboard_server: DashboardServer) -> None:
    data = dashboard_server.json(f"/api/accounts/{BLANK_ACCOUNT}/dashboard", **RANGE)
    assert set(data["missing_tables"]) == {"user_read", "user_read_hour", "user_share", "user_share_hour",
                                           "article_total", "load_log", "biz_summary", "biz_summary_scene",
                                           "article_total_detail"}
    assert data["daily"] == data["articles"] == data["read_scenes"] == data["article_curves"] == []
    assert len(data["freshness"]) == len(LEGACY)
    page = dashboard_server.get("/", params={"account": BLANK_ACCOUNT, **RANGE})
    assert page.status_code == 200 and "No data yet" in page.text


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


# --- a broken accounts file: never a 500 ------------------------------------------------------


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
