"""The dashboard's report: the default range, freshness per endpoint, and databases with no rows or tables
(or accounts without a family).

On a real api-server over data the pipeline loaded (tests/fixtures/dashboard.py), with one
gap, one empty day and one day not ready on purpose.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.fixtures.dashboard import (
    BEGIN,
    BLANK_ACCOUNT,
    DEMO,
    DEMO_ACCOUNT,
    EMPTY_DAY,
    END,
    GAP_DAY,
    NOT_READY_DAY,
    QUIET_ACCOUNT,
    RANGE,
    DashboardServer,
    iso,
)
from wechat_datacube.endpoints import LEGACY


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
                "article_curves", "followers", "follow_sources", "messages")
    assert [data[s] for s in sections] == [[]] * len(sections)
    assert all(r["gaps"] == [{"from": iso(BEGIN), "to": iso(END), "days": 19}] for r in data["freshness"])


@pytest.mark.parametrize("account", [QUIET_ACCOUNT, BLANK_ACCOUNT])
def test_an_account_without_the_user_and_message_families_gets_a_note_not_an_error(
    dashboard_server: DashboardServer, account: str
) -> None:
    page = dashboard_server.get("/", params={"account": account, **RANGE})
    assert page.status_code == 200
    for family in ("user", "message"):
        assert f'id="note-{family}"' in page.text
        assert f"add <code>{family}</code> to the account's endpoints" in page.text
    demo = dashboard_server.get("/", params={"account": DEMO_ACCOUNT, **RANGE}).text
    assert 'class="notice family"' not in demo  # its rows are drawn, though its accounts entry names legacy only


def test_empty_database_is_reported_as_no_data_not_as_an_error(dashboard_server: DashboardServer) -> None:
    data = dashboard_server.json(f"/api/accounts/{BLANK_ACCOUNT}/dashboard", **RANGE)
    assert set(data["missing_tables"]) == {"user_read", "user_read_hour", "user_share", "user_share_hour",
                                           "article_total", "load_log", "biz_summary", "biz_summary_scene",
                                           "article_total_detail", "daily_followers", "user_summary",
                                           "upstream_msg"}
    assert data["daily"] == data["articles"] == data["read_scenes"] == data["article_curves"] == []
    assert data["followers"] == data["follow_sources"] == data["messages"] == []
    assert len(data["freshness"]) == len(LEGACY)
    page = dashboard_server.get("/", params={"account": BLANK_ACCOUNT, **RANGE})
    assert page.status_code == 200 and "No data yet" in page.text
