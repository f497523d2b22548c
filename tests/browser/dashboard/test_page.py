"""Debian's chromium opens the dashboard after a demo load and every chart is drawn with its data.

Follower growth and message volume are checked value by value against the answers the
fixture stored; an account without those families shows a note naming the family to add.

The browser logs in the way the Airflow UI does — the ``_token`` cookie holding the JWT
from ``POST /auth/token`` — and is first shown to be sent to the login form without it.
Point counts read from the rendered DOM are checked against the JSON API, and every point
must have a laid-out box (the SVG was rendered, not just sent). Screenshots go to
``test-artifacts/`` (gitignored; CI keeps them as artifacts).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.fixtures.chromium import Browser
from tests.fixtures.dashboard import (
    BEGIN,
    DEMO_ACCOUNT,
    END,
    NEW_SOURCE,
    QUIET_ACCOUNT,
    UNFOLLOW_DAY,
    DashboardServer,
    cumulate_rows,
    follow_rows,
    message_rows,
)
from wechat_datacube.dashboard.page import CHART_IDS

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
RANGE = {"account": DEMO_ACCOUNT, "begin": BEGIN.isoformat(), "end": END.isoformat()}

#: Per chart: how many points it has, whether it is drawn (box > 0) and how many points have a box.
CHARTS_JS = """
[...document.querySelectorAll('svg.chart')].map(svg => {
  const box = svg.getBoundingClientRect();
  const points = [...svg.querySelectorAll('.point')];
  return {id: svg.id, points: points.length, width: box.width, height: box.height,
          drawn: points.filter(p => { const b = p.getBoundingClientRect(); return b.width > 0 && b.height > 0; }).length,
          series: [...new Set(points.map(p => p.dataset.series))].length,
          totals: svg.querySelectorAll('polyline.total').length,
          ticks: [...svg.querySelectorAll('text.tick')].map(t => t.textContent),
          tickBoxes: [...svg.querySelectorAll('text.tick')].map(t => {
            const b = t.getBoundingClientRect(); return [Math.round(b.top), b.left, b.right]; }),
          bodyWidth: document.body.clientWidth};
})
"""


#: Per point of one chart (its id in ``ID``): [series, day, value] as the browser has it.
POINTS_JS = "[...document.querySelectorAll('#ID .point')].map(p => [p.dataset.series, p.dataset.x, p.dataset.y])"
#: The page's family notes with whether each is laid out (visible) and its text.
NOTES_JS = """
[...document.querySelectorAll('.notice.family')].map(n => {
  const b = n.getBoundingClientRect(); return {id: n.id, visible: b.width > 0 && b.height > 0, text: n.innerText};
})
"""


def overlapping_labels(chart: dict[str, Any]) -> list[tuple[float, float]]:
    """Pairs of tick labels on one row (same top) whose boxes overlap horizontally."""
    rows: dict[int, list[tuple[float, float]]] = {}
    for top, left, right in chart["tickBoxes"]:
        rows.setdefault(top, []).append((left, right))
    clashes = []
    for boxes in rows.values():
        boxes.sort()
        clashes += [(a[1], b[0]) for a, b in zip(boxes, boxes[1:], strict=False) if a[1] > b[0]]
    return clashes


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser() as b:
        yield b


def test_without_login_the_browser_lands_on_the_airflow_login(
    browser: Browser, dashboard_server: DashboardServer
) -> None:
    browser.navigate(f"{dashboard_server.base_url}/wechat-dashboard/?{urlencode(RANGE)}")
    assert browser.evaluate("location.pathname").startswith("/auth/login")
    assert browser.evaluate("document.querySelectorAll('svg.chart').length") == 0


def test_every_chart_renders_with_its_data_points(browser: Browser, dashboard_server: DashboardServer) -> None:
    base = dashboard_server.base_url
    browser.set_cookie("_token", dashboard_server.token("viewer"), base)
    browser.navigate(f"{base}/wechat-dashboard/?{urlencode(RANGE)}")
    assert browser.evaluate("location.pathname") == "/wechat-dashboard/"
    size = browser.screenshot(ARTIFACTS / "wechat-dashboard.png")

    charts = {c["id"]: c for c in browser.evaluate(CHARTS_JS)}
    assert set(charts) == set(CHART_IDS)
    for chart in charts.values():
        assert chart["points"] > 0 and chart["drawn"] == chart["points"], chart
        assert chart["width"] > 300 and chart["height"] > 60, chart
        assert chart["width"] >= 0.9 * chart["bodyWidth"], chart["id"]  # the page's width, not half of it
        assert not overlapping_labels(chart), chart["id"]

    data = dashboard_server.json(f"/api/accounts/{DEMO_ACCOUNT}/dashboard", **{k: RANGE[k] for k in ("begin", "end")})
    days = len(data["daily"])
    assert charts["chart-daily-reads"]["points"] == 2 * days
    assert charts["chart-daily-engagement"]["points"] == 4 * days
    assert charts["chart-read-sources"]["points"] == sum(len(s["points"]) for s in data["sources"])
    assert charts["chart-read-sources"]["series"] == len(data["sources"]) >= 5
    assert charts["chart-share-scenes"]["points"] == sum(len(s["points"]) for s in data["share_scenes"])
    assert charts["chart-hourly"]["points"] == 3 * 24
    assert charts["chart-top-articles"]["points"] == sum(len(a["curve"]) for a in data["articles"])
    assert charts["chart-top-articles"]["series"] == len(data["articles"]) == 5
    assert charts["chart-freshness"]["points"] == len(data["freshness"]) * 19
    assert_replacement_charts(charts, data)
    assert_follower_and_message_charts(charts, data)
    assert_follower_numbers(browser)
    assert size > 50_000  # a real full-page image, not a blank one


def assert_replacement_charts(charts: dict[str, dict[str, Any]], data: dict[str, Any]) -> None:
    """The getbizsummary / getarticletotaldetail charts: one series per scene, metric or article."""
    scenes, days, articles = data["read_scenes"], len(data["biz_summary"]), data["article_curves"]
    assert charts["chart-read-scenes"]["points"] == sum(len(s["points"]) for s in scenes) == len(scenes) * 19
    assert charts["chart-read-scenes"]["series"] == len(scenes) >= 5
    assert charts["chart-read-scenes"]["totals"] == 1  # the 全部 line, drawn as the total
    assert days == 19
    assert (charts["chart-biz-summary"]["points"], charts["chart-biz-summary"]["series"]) == (2 * days, 2)
    assert (charts["chart-biz-engagement"]["points"], charts["chart-biz-engagement"]["series"]) == (3 * days, 3)
    assert charts["chart-article-curves"]["points"] == sum(len(a["curve"]) for a in articles)
    assert charts["chart-article-curves"]["series"] == len(articles) == 5
    assert charts["chart-article-curves"]["ticks"][-1] == "day 29"  # the 30-day axis, whatever the data's length


def assert_follower_and_message_charts(charts: dict[str, dict[str, Any]], data: dict[str, Any]) -> None:
    """The user and message families' charts: three lines a day, one line per follow source or message type.

    A source or type has a point on every day WeChat answered with rows (0 where it had no
    row of its own), none on a day without any (the day nobody wrote).
    """
    days, sources, types = len(data["followers"]), data["follow_sources"], data["messages"]
    assert days == 19
    assert (charts["chart-followers"]["points"], charts["chart-followers"]["series"]) == (3 * days, 3)
    assert (charts["chart-followers-total"]["points"], charts["chart-followers-total"]["series"]) == (days, 1)
    for metric in ("new", "cancel", "net"):
        chart = charts[f"chart-follow-sources-{metric}"]
        assert (chart["points"], chart["series"]) == (len(sources) * days, len(sources)) == (5 * 19, 5)
    message_days = len({r["ref_date"] for r in message_rows()})
    for chart_id in ("chart-messages", "chart-message-users"):
        assert (charts[chart_id]["points"], charts[chart_id]["series"]) == (len(types) * message_days, len(types))
        assert (message_days, len(types)) == (18, 4)


def points_of(browser: Browser, chart_id: str, series: str) -> dict[str, float]:
    """{day: value} of one series as the browser rendered it."""
    return {x: float(y) for name, x, y in browser.evaluate(POINTS_JS.replace("ID", chart_id)) if name == series}


def assert_follower_numbers(browser: Browser) -> None:
    """The drawn values are the stored answers: a day's net over every source, the total, a new source."""
    net = points_of(browser, "chart-followers", "net")
    day = UNFOLLOW_DAY.isoformat()
    assert net[day] == sum(r["new_user"] - r["cancel_user"] for r in follow_rows() if r["ref_date"] == day) < 0
    assert points_of(browser, "chart-followers-total", "total followers") == {
        r["ref_date"]: r["cumulate_user"] for r in cumulate_rows()}
    (new_source,) = [r for r in follow_rows() if r["user_source"] == NEW_SOURCE]
    drawn = points_of(browser, "chart-follow-sources-new", f"source {NEW_SOURCE}")
    assert drawn.pop(new_source["ref_date"]) == new_source["new_user"] == 4
    assert len(drawn) == 18 and set(drawn.values()) == {0}  # no row on the other days: nobody came that way
    assert points_of(browser, "chart-messages", "text") == {
        r["ref_date"]: r["msg_count"] for r in message_rows() if r["msg_type"] == 1}
    assert browser.evaluate(NOTES_JS) == []  # the demo has rows: no note


def test_an_account_without_the_user_and_message_families_shows_a_note_for_each(
    browser: Browser, dashboard_server: DashboardServer
) -> None:
    base = dashboard_server.base_url
    browser.set_cookie("_token", dashboard_server.token("viewer"), base)
    browser.navigate(f"{base}/wechat-dashboard/?{urlencode({**RANGE, 'account': QUIET_ACCOUNT})}")
    notes = {n["id"]: n for n in browser.evaluate(NOTES_JS)}
    assert set(notes) == {"note-user", "note-message"}
    for family in ("user", "message"):
        note = notes[f"note-{family}"]
        assert note["visible"] and f"add {family} to the account's endpoints" in note["text"], note
    charts = {c["id"]: c for c in browser.evaluate(CHARTS_JS)}
    assert charts["chart-followers"]["points"] == charts["chart-messages"]["points"] == 0
    browser.screenshot(ARTIFACTS / "wechat-dashboard-without-families.png")


def test_the_airflow_ui_embeds_the_dashboard_from_its_navigation_entry(
    browser: Browser, dashboard_server: DashboardServer
) -> None:
    base = dashboard_server.base_url
    browser.set_cookie("_token", dashboard_server.token("viewer"), base)
    browser.navigate(f"{base}/plugin/wechat-datacube")
    src = browser.evaluate(
        "new Promise(done => { const t0 = Date.now(); (function poll() {"
        " const f = document.querySelector('iframe');"
        " if (f && f.contentDocument && f.contentDocument.querySelector('svg.chart')) done(f.getAttribute('src'));"
        " else if (Date.now() - t0 > 45000) done(f ? 'no charts in ' + f.getAttribute('src') : 'no iframe');"
        " else setTimeout(poll, 250); })(); })"
    )
    assert src.rstrip("/").endswith("/wechat-dashboard"), src
    browser.screenshot(ARTIFACTS / "wechat-dashboard-in-airflow.png")


@pytest.mark.parametrize("days", [16, 17, 18])
def test_date_axis_labels_never_overlap(browser: Browser, dashboard_server: DashboardServer, days: int) -> None:
    """Ranges whose last day falls just after a regular tick: the end label must not sit on it."""
    import datetime as dt

    base = dashboard_server.base_url
    browser.set_cookie("_token", dashboard_server.token("viewer"), base)
    end = BEGIN + dt.timedelta(days=days)
    browser.navigate(f"{base}/wechat-dashboard/?{urlencode({**RANGE, 'end': end.isoformat()})}")
    charts = browser.evaluate(CHARTS_JS)
    assert charts
    for chart in charts:
        assert not overlapping_labels(chart), (chart["id"], chart["ticks"])
    daily = next(c for c in charts if c["id"] == "chart-daily-reads")
    assert end.isoformat() in daily["ticks"]
