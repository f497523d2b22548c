"""The page rendered from report data: the replacement family's charts, escaping, axes (no server)."""

from __future__ import annotations

import datetime as dt
import re
from html import escape
from typing import Any

import pytest

from tests.fixtures.dashboard import shop_account
from wechat_datacube.dashboard.labels import ALL_SCENE, scene_label
from wechat_datacube.dashboard.page import render_page
from wechat_datacube.dashboard.report import SECTIONS

D = dt.date
HOSTILE = '<img src=x onerror="alert(1)">'
BEGIN, END = D(2026, 6, 1), D(2026, 6, 3)
REPLACEMENT_CHARTS = ("chart-read-scenes", "chart-biz-summary", "chart-biz-engagement", "chart-article-curves")


def page(**sections: object) -> str:
    """The page over ``sections`` (every other section empty), as the app renders it."""
    data: dict[str, Any] = {"account": "shop", "begin": BEGIN, "end": END, "missing_tables": [],
                            **{name: [] for name in SECTIONS}, **sections}
    return render_page(accounts=[shop_account()], account_errors=[], selected="shop", data=data, error=None, top=5)


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
