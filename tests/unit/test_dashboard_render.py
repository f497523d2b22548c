"""The dashboard's pure parts: freshness rules and the server-side SVG (no database, no server)."""

from __future__ import annotations

import datetime as dt

from wechat_datacube.accounts import AccountConfig, parse_account
from wechat_datacube.dashboard.freshness import endpoint_freshness, expected_range, runs
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
