"""The daily report's figures on a database the real pipeline loaded, against the simulator's truth.

``dashboard_demo`` (tests/fixtures/dashboard.py) holds 2026-06-01..19 of every endpoint of
both families for account ``demo``, with one getuserread gap, one empty getusershare day
and one getusersharehour day not ready, plus getusersummary / getusercumulate answers of
known numbers stored by the storage writer (with a day that loses followers). Expected
values are computed here from the simulator's truth (never through the code under test)
and, for the stored readers and followers, by plain SQL over the tables.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.fixtures.dashboard import (
    BEGIN,
    DEMO_ACCOUNT,
    EMPTY_DAY,
    END,
    GAP_DAY,
    NOT_READY_DAY,
    UNFOLLOW_DAY,
    DemoData,
    follow_rows,
)
from tests.fixtures.simulator import TEST_APPID
from tests.fixtures.truth import truth_dicts
from wechat_datacube.accounts import AccountConfig, parse_account
from wechat_datacube.alerts.daily_report import DailyFigures, EndpointState, daily_figures, report_event, summary
from wechat_datacube.endpoints import LEGACY, REPLACEMENT, get_endpoint

DAY = dt.date(2026, 6, 18)
TODAY = dt.date(2026, 6, 20)  # the fixture's simulated "now": 2026-06-20 13:00 Beijing


def account(name: str = DEMO_ACCOUNT, endpoints: tuple[str, ...] = ("legacy",)) -> AccountConfig:
    return parse_account({"name": name, "wechat_conn_id": "w", "postgres_conn_id": "p", "start_date": BEGIN,
                          "endpoints": list(endpoints)})


@pytest.fixture
def conn(dashboard_demo: DemoData) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(dashboard_demo.dsn) as connection:
        yield connection


def truth(demo: DemoData, endpoint: str, begin: dt.date, end: dt.date | None = None) -> list[dict[str, Any]]:
    return truth_dicts(demo.sim, TEST_APPID, endpoint, begin, end or begin, account=DEMO_ACCOUNT)


def week_before(day: dt.date) -> tuple[dt.date, dt.date]:
    return day - dt.timedelta(days=7), day - dt.timedelta(days=1)


def per_day(rows: list[dict[str, Any]], column: str) -> dict[dt.date, int]:
    """Sum of ``column`` per ref_date (one row per day for getbizsummary; the scenes for getusershare)."""
    out: dict[dt.date, int] = {}
    for row in rows:
        out[row["ref_date"]] = out.get(row["ref_date"], 0) + row[column]
    return out


def top3(rows: list[dict[str, Any]], readers: str) -> list[tuple[str, int]]:
    ranked = sorted(rows, key=lambda r: (-r[readers], r["msgid"]))[:3]
    return [(r["msgid"], r[readers]) for r in ranked]


def states(figures: DailyFigures) -> dict[str, str]:
    return {s.endpoint: s.state for s in figures.freshness}


def test_figures_of_a_day_match_the_simulators_truth(dashboard_demo: DemoData, conn: psycopg.Connection[Any]) -> None:
    figures = daily_figures(conn, "wechat", account(), DAY, today=TODAY)

    # Readers: the daily_readers view, here getbizsummary (loaded for every day of the demo).
    biz = per_day(truth(dashboard_demo, "getbizsummary", *week_before(DAY)) + truth(dashboard_demo, "getbizsummary",
                                                                                   DAY), "read_user")
    stored = conn.execute("SELECT read_user FROM wechat.biz_summary WHERE account = %s AND ref_date = %s",
                          (DEMO_ACCOUNT, DAY)).fetchone()[0]
    assert figures.readers.value == biz[DAY] == stored
    assert figures.readers.source == "getbizsummary"
    median = statistics.median(v for d, v in biz.items() if d < DAY)
    assert figures.readers.change is not None and figures.readers.change.days == 7
    assert figures.readers.change.median == median
    assert figures.readers.change.absolute == biz[DAY] - median
    assert figures.readers.change.percent == pytest.approx(100 * (biz[DAY] - median) / median)

    # Shares: the legacy account's getusershare, its scenes summed.
    shares = per_day(truth(dashboard_demo, "getusershare", week_before(DAY)[0], DAY), "share_count")
    assert (figures.shares.measure, figures.shares.source, figures.shares.value) == ("shares", "getusershare",
                                                                                   shares[DAY])
    assert figures.shares.change is not None
    assert figures.shares.change.median == statistics.median(v for d, v in shares.items() if d < DAY)

    # Top articles of the day: getarticlesummary's readers, with the titles WeChat gave.
    summary = truth(dashboard_demo, "getarticlesummary", DAY)
    titles = {r["msgid"]: r["title"] for r in summary}
    assert figures.top_source == "getarticlesummary"
    assert [(a.msgid, a.readers) for a in figures.top_articles] == top3(summary, "int_page_read_user")
    assert all(a.title == titles[a.msgid] and a.title for a in figures.top_articles)
    assert len(figures.top_articles) == 3

    # Freshness: every endpoint the account pulls; the day stored, or empty where WeChat has no rows for it
    # (getarticletotal on a day nothing was sent) — neither is flagged.
    assert [s.endpoint for s in figures.freshness] == list(LEGACY)
    assert states(figures) == {e: "loaded" if truth(dashboard_demo, e, DAY) else "empty" for e in LEGACY}
    assert not any(s.flagged for s in figures.freshness)
    # The newest day ever loaded: the newest day with stored rows (getusersharehour's last day is not ready).
    newest = {e: conn.execute(sql.SQL("SELECT max(ref_date) FROM {} WHERE account = %s").format(
        sql.Identifier("wechat", get_endpoint(e).table)), (DEMO_ACCOUNT,)).fetchone()[0] for e in LEGACY}
    assert {s.endpoint: s.last_loaded for s in figures.freshness} == newest
    assert newest["getusersharehour"] == NOT_READY_DAY - dt.timedelta(days=1)


def test_an_endpoint_whose_day_is_not_stored_is_flagged(
    dashboard_demo: DemoData, conn: psycopg.Connection[Any]
) -> None:
    last_day = daily_figures(conn, "wechat", account(), NOT_READY_DAY, today=TODAY)
    done = {e: "loaded" if truth(dashboard_demo, e, NOT_READY_DAY) else "empty" for e in LEGACY}
    assert states(last_day) == done | {"getusersharehour": "not_ready"}
    gap = daily_figures(conn, "wechat", account(), GAP_DAY, today=TODAY)
    assert states(gap)["getuserread"] == "missing"

    event = report_event(last_day)
    flagged = [line for line in event.details if "⚠" in line]
    assert flagged == ["**getusersharehour**: ⚠ 2026-06-19 not published yet · last loaded 2026-06-18"]
    assert event.headline.endswith("· 1 endpoint not loaded")


def test_a_day_the_accounts_family_has_no_shares_for_falls_back_to_the_other_family(
    dashboard_demo: DemoData, conn: psycopg.Connection[Any]
) -> None:
    figures = daily_figures(conn, "wechat", account(), EMPTY_DAY, today=TODAY)
    assert states(figures)["getusershare"] == "empty"
    (biz,) = truth(dashboard_demo, "getbizsummary", EMPTY_DAY)
    assert (figures.shares.measure, figures.shares.source, figures.shares.value) == ("sharers", "getbizsummary",
                                                                                   biz["share_user"])


def test_a_replacement_account_reads_sharers_and_article_reads_with_titles_from_the_legacy_tables(
    dashboard_demo: DemoData, conn: psycopg.Connection[Any]
) -> None:
    figures = daily_figures(conn, "wechat", account(endpoints=("replacement",)), DAY, today=TODAY)

    (biz,) = truth(dashboard_demo, "getbizsummary", DAY)
    assert (figures.shares.measure, figures.shares.source, figures.shares.value) == ("sharers", "getbizsummary",
                                                                                   biz["share_user"])
    reads = truth(dashboard_demo, "getarticleread", DAY)
    assert figures.top_source == "getarticleread"
    assert [(a.msgid, a.readers) for a in figures.top_articles] == top3(reads, "read_user")
    # getarticleread sends no title: the one the legacy tables stored for the msgid, if any.
    known = {r["msgid"]: r["title"] for r in truth(dashboard_demo, "getarticlesummary", BEGIN, END)}
    assert [a.title for a in figures.top_articles] == [known.get(a.msgid) for a in figures.top_articles]
    assert any(a.title for a in figures.top_articles)
    assert [s.endpoint for s in figures.freshness] == list(REPLACEMENT)
    assert states(figures) == {e: "loaded" if truth(dashboard_demo, e, DAY) else "empty" for e in REPLACEMENT}


def test_fewer_than_three_days_of_history_give_figures_without_a_change(conn: psycopg.Connection[Any]) -> None:
    figures = daily_figures(conn, "wechat", account(), BEGIN + dt.timedelta(days=1), today=TODAY)
    assert figures.readers.value is not None and figures.readers.change is None
    assert figures.readers.history_days == 1
    assert "no 7-day median yet (1 of 7 days" in report_event(figures).details[0]


def test_an_account_that_never_loaded_has_no_data_and_every_endpoint_not_fetched(
    conn: psycopg.Connection[Any],
) -> None:
    figures = daily_figures(conn, "wechat", account(name="quiet"), DAY, today=TODAY)
    assert (figures.readers.value, figures.shares.value, figures.top_articles) == (None, None, ())
    assert figures.freshness == tuple(EndpointState(e, "missing", None) for e in LEGACY)
    assert report_event(figures).headline == "quiet · 2026-06-18 · no reader data · 6 endpoints not loaded"


def test_a_database_without_any_table_reads_as_no_data_not_an_error(fresh_pg: tuple[str, str]) -> None:
    with psycopg.connect(fresh_pg[1]) as conn:
        figures = daily_figures(conn, "wechat", account(), DAY, today=TODAY)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # no transaction left open
    assert figures.readers.value is None and figures.shares.value is None and figures.top_articles == ()
    assert [s.state for s in figures.freshness] == ["missing"] * len(LEGACY)
    assert "**Top articles**: no article data for the day" in report_event(figures).details



# --- followers: an account of the user family --------------------------------------------------


def followers_by_sql(conn: psycopg.Connection[Any], begin: dt.date, end: dt.date) -> dict[dt.date, tuple[int, ...]]:
    """{day: (new, cancel, net, total)} straight from user_summary (summed over sources) and user_cumulate."""
    follows = conn.execute(
        "SELECT ref_date, sum(new_user), sum(cancel_user) FROM wechat.user_summary"
        " WHERE account = %s AND ref_date BETWEEN %s AND %s GROUP BY ref_date", (DEMO_ACCOUNT, begin, end)).fetchall()
    totals = dict(conn.execute("SELECT ref_date, cumulate_user FROM wechat.user_cumulate"
                               " WHERE account = %s AND ref_date BETWEEN %s AND %s", (DEMO_ACCOUNT, begin, end)).fetchall())
    return {d: (int(new), int(cancel), int(new - cancel), totals[d]) for d, new, cancel in follows}


@pytest.mark.parametrize("day", [DAY, UNFOLLOW_DAY], ids=["gain", "loss"])
def test_followers_of_a_user_family_account_equal_plain_sql_over_the_user_tables(
    conn: psycopg.Connection[Any], day: dt.date
) -> None:
    figures = daily_figures(conn, "wechat", account(endpoints=("legacy", "user")), day, today=TODAY)

    by_sql = followers_by_sql(conn, *week_before(day)) | followers_by_sql(conn, day, day)
    new, cancel, net, total = by_sql[day]
    followers = figures.followers
    assert followers is not None
    assert (followers.new, followers.cancel, followers.net.value, followers.total) == (new, cancel, net, total)
    assert followers.net.source == "getusersummary"
    history = [row[2] for d, row in by_sql.items() if d < day]
    median = statistics.median(history)
    assert followers.net.change is not None and followers.net.change.days == len(history) == 7
    assert followers.net.change.median == median
    assert followers.net.change.absolute == net - median
    assert followers.net.change.percent == pytest.approx(100 * (net - median) / median)

    line = next(line for line in report_event(figures).details if line.startswith("**Followers**"))
    assert line.startswith(f"**Followers**: +{new:,} -{cancel:,} = net {net:+,} (total {total:,}) · ")
    assert summary(figures)["followers"]["net"] == net


def test_the_loss_day_loses_followers_by_the_fixtures_own_numbers(conn: psycopg.Connection[Any]) -> None:
    figures = daily_figures(conn, "wechat", account(endpoints=("legacy", "user")), UNFOLLOW_DAY, today=TODAY)
    day_rows = [r for r in follow_rows() if r["ref_date"] == UNFOLLOW_DAY.isoformat()]
    expected = sum(r["new_user"] for r in day_rows) - sum(r["cancel_user"] for r in day_rows)
    assert figures.followers is not None and figures.followers.net.value == expected < 0
    assert figures.followers.net.change is not None and figures.followers.net.change.percent is not None
    assert figures.followers.net.change.percent < 0
    assert "· -" in next(line for line in report_event(figures).details if line.startswith("**Followers**"))


def test_an_account_without_the_user_family_gets_no_followers_line_on_the_same_database(
    conn: psycopg.Connection[Any],
) -> None:
    figures = daily_figures(conn, "wechat", account(), DAY, today=TODAY)
    assert figures.followers is None
    assert not any("Followers" in line for line in report_event(figures).details)
    assert "followers" not in summary(figures)
    with_family = daily_figures(conn, "wechat", account(endpoints=("legacy", "user")), DAY, today=TODAY)
    assert report_event(with_family).details[:2] == report_event(figures).details[:2]


def test_followers_of_a_day_or_account_without_rows_are_no_data(conn: psycopg.Connection[Any],
                                                                fresh_pg: tuple[str, str]) -> None:
    quiet = daily_figures(conn, "wechat", account(name="quiet", endpoints=("legacy", "user")), DAY, today=TODAY)
    assert quiet.followers is not None and quiet.followers.net.value is None and quiet.followers.total is None
    assert "**Followers**: no data for the day" in report_event(quiet).details
    first = daily_figures(conn, "wechat", account(endpoints=("legacy", "user")), BEGIN, today=TODAY)
    assert first.followers is not None and first.followers.net.value is not None
    assert first.followers.net.change is None and first.followers.net.history_days == 0
    with psycopg.connect(fresh_pg[1]) as blank:
        nothing = daily_figures(blank, "wechat", account(endpoints=("legacy", "user")), DAY, today=TODAY)
    assert nothing.followers is not None and nothing.followers.net.value is None
