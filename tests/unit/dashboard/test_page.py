"""The page rendered from report data: the replacement, user and message families' charts, escaping, axes
and the note for an account that does not pull a family (no server)."""

from __future__ import annotations

import datetime as dt
import re
from html import escape
from typing import Any

import pytest

from tests.fixtures.dashboard import shop_account
from wechat_datacube.accounts import AccountConfig
from wechat_datacube.dashboard.labels import ALL_SCENE, follow_source_label, msg_type_label, scene_label
from wechat_datacube.dashboard.page import render_page
from wechat_datacube.dashboard.report import SECTIONS

D = dt.date
HOSTILE = '<img src=x onerror="alert(1)">'
BEGIN, END = D(2026, 6, 1), D(2026, 6, 3)
REPLACEMENT_CHARTS = ("chart-read-scenes", "chart-biz-summary", "chart-biz-engagement", "chart-article-curves")


FOLLOWER_CHARTS = ("chart-followers", "chart-followers-total", "chart-follow-sources-new",
                   "chart-follow-sources-cancel", "chart-follow-sources-net")
MESSAGE_CHARTS = ("chart-messages", "chart-message-users")


def page(account: AccountConfig | None = None, **sections: object) -> str:
    """The page over ``sections`` (every other section empty), as the app renders it (default: legacy only)."""
    data: dict[str, Any] = {"account": "shop", "begin": BEGIN, "end": END, "missing_tables": [],
                            **{name: [] for name in SECTIONS}, **sections}
    account = account or shop_account()
    return render_page(accounts=[account], account_errors=[], selected="shop", data=data, error=None, top=5)


def chart(html: str, chart_id: str) -> str:
    """The ``<svg>`` element of ``chart_id`` in ``html``."""
    match = re.search(rf'<svg [^>]*id="{chart_id}".*?</svg>', html, re.S)
    assert match, chart_id
    return match.group(0)


def scene(desc: str | None, counts: list[int | None]) -> dict[str, Any]:
    points = [{"ref_date": BEGIN + dt.timedelta(days=i), "user_count": c} for i, c in enumerate(counts)]
    return {"scene_desc": desc, "label": scene_label(desc), "total": desc == ALL_SCENE, "points": points}


def article(msgid: str, title: str | None = None, readers: tuple[int, ...] = (10, 30, 45)) -> dict[str, Any]:
    curve = [{"day": d, "stat_date": BEGIN + dt.timedelta(days=d), "read_user": r, "share_user": 1}
             for d, r in enumerate(readers)]
    return {"ref_date": BEGIN, "msgid": msgid, "title": title, "publish_type": 0, "read_user": readers[-1],
            "share_user": 1, "latest_stat_date": curve[-1]["stat_date"], "curve": curve}


def test_replacement_charts_without_rows_show_the_empty_state_with_their_endpoint() -> None:
    html = page()
    for chart_id in REPLACEMENT_CHARTS:
        svg = chart(html, chart_id)
        assert 'class="chart empty"' in svg and 'data-points="0"' in svg and 'class="point"' not in svg
    assert "No getbizsummary data in this range" in chart(html, "chart-read-scenes")
    assert "No getarticletotaldetail articles published in this range" in chart(html, "chart-article-curves")


def test_scene_names_from_wechat_are_escaped_and_the_total_is_drawn_as_such() -> None:
    html = page(read_scenes=[scene(ALL_SCENE, [9, 12, 10]), scene(HOSTILE, [4, None, 5]), scene(None, [1, 1, 1])])
    svg = chart(html, "chart-read-scenes")
    assert HOSTILE not in html and escape(HOSTILE) in svg
    assert svg.count('class="point"') == 8 and 'data-points="8"' in svg  # the missing day breaks the line
    assert svg.count('class="line total"') == 1 and "全部 · all readers (total)" in svg
    assert "(unnamed scene)" in svg


def test_biz_summary_draws_readers_apart_from_the_interactions_they_would_flatten() -> None:
    rows = [{"ref_date": BEGIN + dt.timedelta(days=i), "read_user": 5000 + i, "share_user": 250, "zaikan_user": 30,
             "like_user": 20, "comment_count": None if i == 1 else 10} for i in range(3)]
    html = page(biz_summary=rows)
    readers, engagement = chart(html, "chart-biz-summary"), chart(html, "chart-biz-engagement")
    assert set(re.findall(r'data-series="([^"]+)"', readers)) == {"readers", "sharers"}
    assert set(re.findall(r'data-series="([^"]+)"', engagement)) == {"Wow (在看)", "likes (thumbs-up)", "comments"}
    assert readers.count('class="point"') == 6
    assert engagement.count('class="point"') == 8  # 3 series x 3 days, one comment count missing
    assert ">50</text>" in engagement  # its own y axis: topped at 50, not at 10k


def test_articles_are_named_by_escaped_msgid_and_date_with_a_legacy_title_when_known() -> None:
    hostile_id = '1"><script>alert(1)</script>_1'
    html = page(article_curves=[article(hostile_id), article("2477_2", title="A <b>bold</b> title")])
    svg = chart(html, "chart-article-curves")
    assert "<script>" not in html and "<b>bold" not in html
    assert f'data-series="{escape(hostile_id)} (2026-06-01)"' in svg
    assert f'data-series="2477_2 (2026-06-01) {escape("A <b>bold</b> title")}"' in svg
    assert f"<td>{escape(hostile_id)}</td><td>2026-06-01</td><td>–</td><td>followers notified</td>" in html
    ticks = re.findall(r'<text class="tick"[^>]*text-anchor="middle">([^<]+)</text>', svg)
    assert ticks == [f"day {d}" for d in (0, 5, 10, 15, 20, 25, 29)]  # the axis spans all 30 days


def test_a_long_legacy_title_is_shortened_in_the_legend_only() -> None:
    title = "很长的标题" * 10
    html = page(article_curves=[article("9_1", title=title)])
    assert f'data-series="9_1 (2026-06-01) {title[:19]}…"' in chart(html, "chart-article-curves")
    assert f"<td>{title}</td>" in html


@pytest.mark.parametrize("days", range(0, 400))
def test_date_ticks_include_both_ends_and_never_crowd_the_last_label(days: int) -> None:
    from wechat_datacube.dashboard.page import _date_ticks

    begin = D(2026, 1, 1)
    ticks = _date_ticks(begin, begin + dt.timedelta(days=days))
    assert ticks[0] == begin.toordinal() and ticks[-1] == begin.toordinal() + days
    assert len(ticks) <= 9
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    if gaps:
        assert min(gaps) >= 0.5 * max(gaps), ticks


# --- the user and message families ---------------------------------------------------------------


def days(*values: tuple[Any, ...], names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of consecutive days from BEGIN: one tuple of ``names`` values per day."""
    return [{"ref_date": BEGIN + dt.timedelta(days=i), **dict(zip(names, v, strict=True))}
            for i, v in enumerate(values)]


def coded(key: str, code: int, label: str, names: tuple[str, ...], *values: tuple[Any, ...]) -> dict[str, Any]:
    """A per-code series as the queries return it, with its range sums."""
    points = days(*values, names=names)
    sums = {n: sum(p[n] for p in points if p[n] is not None) for n in names}
    return {key: code, "label": label, "points": points, "sums": sums}


FOLLOW = ("new_user", "cancel_user", "net_user")


def source(code: int, *values: tuple[int, int]) -> dict[str, Any]:
    return coded("user_source", code, follow_source_label(code), FOLLOW, *((n, c, n - c) for n, c in values))


def msg_type(code: int, *values: tuple[int, int]) -> dict[str, Any]:
    return coded("msg_type", code, msg_type_label(code), ("msg_user", "msg_count"), *values)


def points(svg: str, series: str) -> list[tuple[str, str]]:
    """(day, value) of every point of ``series`` in ``svg``."""
    return re.findall(rf'data-series="{re.escape(escape(series))}" data-x="([^"]+)" data-y="([^"]+)"', svg)


def test_follower_growth_draws_new_lost_and_net_per_day_with_net_below_zero() -> None:
    followers = days((18, 2, 16, 5016), (25, 40, -15, 5001), (None, None, None, 5001),
                     names=(*FOLLOW, "cumulate_user"))
    html = page(followers=followers)
    daily, total = chart(html, "chart-followers"), chart(html, "chart-followers-total")
    assert points(daily, "net") == [("2026-06-01", "16"), ("2026-06-02", "-15")]  # no summary row: no point
    assert points(daily, "unfollows") == [("2026-06-01", "2"), ("2026-06-02", "40")]
    assert 'class="grid zero"' in daily and ">-20</text>" in daily
    assert points(total, "total followers") == [("2026-06-01", "5016"), ("2026-06-02", "5001"), ("2026-06-03", "5001")]
    assert 'class="grid zero"' not in total


def test_follow_sources_are_one_line_each_per_metric_with_their_range_sums_in_a_table() -> None:
    html = page(follow_sources=[source(1, (5, 0), (6, 1), (7, 0)), source(999, (4, 0)), source(0, (2, 40))])
    new, cancel, net = (chart(html, f"chart-follow-sources-{m}") for m in ("new", "cancel", "net"))
    assert set(re.findall(r'data-series="([^"]+)"', new)) == {"Official Account search", "source 999", "other sources"}
    assert points(new, "Official Account search") == [("2026-06-01", "5"), ("2026-06-02", "6"), ("2026-06-03", "7")]
    # WeChat sends a row only for a source with activity: on the days it answered, no row is 0.
    assert points(new, "source 999") == [("2026-06-01", "4"), ("2026-06-02", "0"), ("2026-06-03", "0")]
    assert points(cancel, "other sources") == [("2026-06-01", "40"), ("2026-06-02", "0"), ("2026-06-03", "0")]
    assert points(net, "other sources")[0] == ("2026-06-01", "-38")
    assert ("<td>Official Account search</td><td>1</td><td class=num>18</td><td class=num>1</td>"
            "<td class=num>17</td>") in html
    assert "<td>source 999</td><td>999</td><td class=num>4</td>" in html


def test_messages_are_one_line_per_type_for_messages_and_for_senders() -> None:
    text = msg_type(1, (20, 35), (21, 38))
    text["points"][1]["ref_date"] = END  # nobody wrote on the middle day: WeChat answered no row at all
    html = page(messages=[text, msg_type(9, (1, 1))])
    counts, users = chart(html, "chart-messages"), chart(html, "chart-message-users")
    assert points(counts, "text") == [("2026-06-01", "35"), ("2026-06-03", "38")]
    assert points(users, "text") == [("2026-06-01", "20"), ("2026-06-03", "21")]
    assert points(counts, "type 9") == [("2026-06-01", "1"), ("2026-06-03", "0")]  # 0 only on days with rows
    assert counts.count("<polyline") == 2 + 2  # both lines break at the day without rows
    assert "<td>text</td><td>1</td><td class=num>73</td>" in html


def test_an_account_without_the_families_gets_a_note_naming_the_family_to_add() -> None:
    html = page()  # legacy only, no rows
    for family, charts in (("user", FOLLOWER_CHARTS), ("message", MESSAGE_CHARTS)):
        note = re.search(rf'<div class="notice family" id="note-{family}">(.*?)</div>', html)
        assert note and f"add <code>{family}</code> to the account's endpoints" in note.group(1)
        for chart_id in charts:
            assert 'class="chart empty"' in chart(html, chart_id)


def test_an_account_that_pulls_the_families_gets_empty_charts_and_no_note() -> None:
    html = page(shop_account(endpoints=["legacy", "user", "message"]))
    assert 'class="notice family"' not in html
    assert "No getusersummary data in this range" in chart(html, "chart-followers")
    assert "No getusercumulate data in this range" in chart(html, "chart-followers-total")
    assert "No getupstreammsg data in this range" in chart(html, "chart-messages")


def test_rows_an_account_stored_before_dropping_a_family_are_still_drawn_without_a_note() -> None:
    html = page(messages=[msg_type(2, (4, 6))])
    assert 'id="note-message"' not in html and 'id="note-user"' in html
    assert points(chart(html, "chart-messages"), "image") == [("2026-06-01", "6")]
