"""The dashboard's pure parts: freshness rules, the server-side SVG and the page (no database, no server)."""

from __future__ import annotations

import datetime as dt
import re
from html import escape
from typing import Any

import pytest

from wechat_datacube.accounts import AccountConfig, parse_account
from wechat_datacube.dashboard.freshness import endpoint_freshness, expected_range, runs
from wechat_datacube.dashboard.labels import ALL_SCENE, scene_label
from wechat_datacube.dashboard.page import render_page
from wechat_datacube.dashboard.report import SECTIONS
from wechat_datacube.dashboard.svg import Series, line_chart, nice_ceiling, status_grid

D = dt.date


def account(**extra: object) -> AccountConfig:
    raw = {"name": "shop", "wechat_conn_id": "w", "postgres_conn_id": "p", "start_date": "2026-01-10",
           "endpoints": ["legacy"], **extra}
    return parse_account(raw)


def test_consecutive_days_become_one_gap() -> None:
    days = [D(2026, 1, 3), D(2026, 1, 1), D(2026, 1, 2), D(2026, 1, 7)]
    assert runs(days) == [{"from": D(2026, 1, 1), "to": D(2026, 1, 3), "days": 3},
                          {"from": D(2026, 1, 7), "to": D(2026, 1, 7), "days": 1}]


def test_expected_days_stop_at_start_date_yesterday_and_cutover() -> None:
    acct = account()
    assert expected_range(acct, "getuserread", D(2026, 1, 1), D(2026, 2, 1), D(2026, 1, 20)) == (
        D(2026, 1, 10), D(2026, 1, 20))
    both = account(start_date="2025-10-01", endpoints=["legacy", "replacement"], cutover_date="2026-01-01")
    assert expected_range(both, "getuserread", D(2025, 12, 1), D(2026, 1, 31), D(2026, 2, 1))[1] == D(2025, 12, 31)
    assert expected_range(both, "getbizsummary", D(2025, 12, 1), D(2026, 1, 31), D(2026, 2, 1))[0] == D(2026, 1, 1)


def test_only_never_fetched_expected_days_are_gaps() -> None:
    rows = [{"endpoint": "getuserread", "ref_date": D(2026, 1, 10), "status": "loaded"},
            {"endpoint": "getuserread", "ref_date": D(2026, 1, 11), "status": "not_ready"},
            {"endpoint": "getuserread", "ref_date": D(2026, 1, 13), "status": "empty"}]
    (report,) = [r for r in endpoint_freshness(account(), D(2026, 1, 9), D(2026, 1, 15), rows, {}, D(2026, 1, 14))
                 if r["endpoint"] == "getuserread"]
    assert report["gaps"] == [{"from": D(2026, 1, 12), "to": D(2026, 1, 12), "days": 1},
                              {"from": D(2026, 1, 14), "to": D(2026, 1, 14), "days": 1}]
    assert [c["status"] for c in report["calendar"]] == ["n/a", "loaded", "not_ready", "missing", "empty",
                                                          "missing", "n/a"]


def test_line_chart_escapes_text_and_breaks_the_line_where_a_day_is_missing() -> None:
    svg = line_chart("c", "t", [Series("<script>alert(1)</script>", [(1, 5), (2, None), (3, 7)])],
                     x_ticks=[1, 3], x_label=lambda x: f"d{x:g}")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert svg.count('class="point"') == 2 and svg.count("<polyline") == 2
    assert 'data-points="2"' in svg


def test_charts_without_values_say_so_instead_of_drawing_axes() -> None:
    svg = line_chart("c", "t", [Series("a", [(1, None)])], x_ticks=[1], x_label=str, empty_message="nothing")
    assert 'class="chart empty"' in svg and "nothing" in svg and 'class="point"' not in svg
    assert 'data-points="0"' in status_grid("g", "t", [])


def test_y_axis_tops_are_round_numbers() -> None:
    assert [nice_ceiling(v) for v in (0, 3, 7, 12, 480, 5001)] == [1.0, 5.0, 10.0, 20.0, 500.0, 10000.0]


# --- the replacement family's charts, rendered from report data ----------------------

HOSTILE = '<img src=x onerror="alert(1)">'
BEGIN, END = D(2026, 6, 1), D(2026, 6, 3)
REPLACEMENT_CHARTS = ("chart-read-scenes", "chart-biz-summary", "chart-biz-engagement", "chart-article-curves")


def page(**sections: object) -> str:
    """The page over ``sections`` (every other section empty), as the app renders it."""
    data: dict[str, Any] = {"account": "shop", "begin": BEGIN, "end": END, "missing_tables": [],
                            **{name: [] for name in SECTIONS}, **sections}
    return render_page(accounts=[account()], account_errors=[], selected="shop", data=data, error=None, top=5)


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
