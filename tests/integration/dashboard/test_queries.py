"""What the dashboard's queries return, on a real api-server over data the pipeline loaded.

The data was loaded by the operator from the simulator (tests/fixtures/dashboard.py), so
every legacy figure is compared with the simulator's truth. The replacement family's charts
are compared with what the tables hold, read here with SQL of the tests' own (the
simulator's shapes are its own business; what the dashboard must show is what was stored).
The user and message families' charts are compared with the answers the fixture stored.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import psycopg
import pytest

from tests.fixtures.dashboard import (
    ALL,
    BEGIN,
    DEMO,
    DEMO_ACCOUNT,
    EMPTY_DAY,
    END,
    GAP_DAY,
    NEW_MSG_TYPE,
    NEW_SOURCE,
    NO_MESSAGES_DAY,
    NOT_READY_DAY,
    RANGE,
    UNFOLLOW_DAY,
    DashboardServer,
    cumulate_rows,
    follow_rows,
    iso,
    message_rows,
    stored,
    truth,
    with_iso_dates,
)
from wechat_datacube.dashboard import queries

# --- the legacy family ---------------------------------------------------------------------------


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


# --- the replacement family ----------------------------------------------------------------------


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


# --- the user and message families ---------------------------------------------------------------


def test_followers_per_day_are_every_source_summed_with_net_and_the_total(dashboard_server: DashboardServer) -> None:
    followers = dashboard_server.json(f"{DEMO}/followers", **RANGE)["followers"]
    by_day: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in follow_rows():
        by_day[r["ref_date"]][0] += r["new_user"]
        by_day[r["ref_date"]][1] += r["cancel_user"]
    totals = {r["ref_date"]: r["cumulate_user"] for r in cumulate_rows()}
    assert followers == [
        {"ref_date": day, "new_user": new, "cancel_user": cancel, "net_user": new - cancel,
         "cumulate_user": totals[day]}
        for day, (new, cancel) in sorted(by_day.items())
    ]
    unfollow = next(f for f in followers if f["ref_date"] == iso(UNFOLLOW_DAY))
    assert unfollow["net_user"] < 0
    other_only = next(r["new_user"] for r in follow_rows() if r["ref_date"] == iso(BEGIN) and r["user_source"] == 0)
    assert followers[0]["new_user"] > other_only  # source 0 is one source, not the day's total


def test_follow_sources_are_one_series_per_source_biggest_first_new_codes_included(
    dashboard_server: DashboardServer,
) -> None:
    series = dashboard_server.json(f"{DEMO}/follow-sources", **RANGE)["follow_sources"]
    expected: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in sorted(follow_rows(), key=lambda r: r["ref_date"]):
        expected[r["user_source"]].append({"ref_date": r["ref_date"], "new_user": r["new_user"],
                                           "cancel_user": r["cancel_user"],
                                           "net_user": r["new_user"] - r["cancel_user"]})
    assert {s["user_source"]: s["points"] for s in series} == dict(expected)
    for s in series:
        assert s["sums"] == {m: sum(p[m] for p in expected[s["user_source"]]) for m in
                             ("new_user", "cancel_user", "net_user")}
    news = [s["sums"]["new_user"] for s in series]
    assert news == sorted(news, reverse=True) and series[0]["label"] == "Official Account search"
    labels = {s["user_source"]: s["label"] for s in series}
    assert labels[0] == "other sources" and labels[200] == "Channels (视频号)"
    assert labels[NEW_SOURCE] == f"source {NEW_SOURCE}"


def test_messages_are_one_series_per_type_and_a_day_without_messages_has_no_point(
    dashboard_server: DashboardServer,
) -> None:
    series = dashboard_server.json(f"{DEMO}/messages", **RANGE)["messages"]
    expected: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in sorted(message_rows(), key=lambda r: r["ref_date"]):
        expected[r["msg_type"]].append({k: r[k] for k in ("ref_date", "msg_user", "msg_count")})
    assert [s["msg_type"] for s in series] == sorted(expected)
    assert {s["msg_type"]: s["points"] for s in series} == dict(expected)
    assert {s["msg_type"]: s["sums"] for s in series} == {
        t: {"msg_count": sum(p["msg_count"] for p in points)} for t, points in expected.items()}
    assert [s["label"] for s in series] == ["text", "image", "voice", f"type {NEW_MSG_TYPE}"]
    assert iso(NO_MESSAGES_DAY) not in {p["ref_date"] for s in series for p in s["points"]}
    stored_count = stored(dashboard_server, "SELECT sum(msg_count)::bigint AS n FROM wechat.upstream_msg"
                          " WHERE account = %s", DEMO_ACCOUNT)[0]["n"]
    assert sum(s["sums"]["msg_count"] for s in series) == stored_count > 0
