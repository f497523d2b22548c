"""Freshness per endpoint from load_log rows: which days are expected, which are gaps (no database)."""

from __future__ import annotations

import datetime as dt

from tests.fixtures.dashboard import shop_account
from wechat_datacube.dashboard.freshness import endpoint_freshness, expected_range, runs
from wechat_datacube.dates import DateRange

D = dt.date


def test_consecutive_days_become_one_gap() -> None:
    days = [D(2026, 1, 3), D(2026, 1, 1), D(2026, 1, 2), D(2026, 1, 7)]
    assert runs(days) == [{"from": D(2026, 1, 1), "to": D(2026, 1, 3), "days": 3},
                          {"from": D(2026, 1, 7), "to": D(2026, 1, 7), "days": 1}]


def test_expected_days_stop_at_start_date_yesterday_and_cutover() -> None:
    acct = shop_account()
    assert expected_range(acct, "getuserread", DateRange(D(2026, 1, 1), D(2026, 2, 1)), D(2026, 1, 20)) == DateRange(
        D(2026, 1, 10), D(2026, 1, 20))
    both = shop_account(start_date="2025-10-01", endpoints=["legacy", "replacement"], cutover_date="2026-01-01")
    december_january = DateRange(D(2025, 12, 1), D(2026, 1, 31))
    assert expected_range(both, "getuserread", december_january, D(2026, 2, 1)).end == D(2025, 12, 31)
    assert expected_range(both, "getbizsummary", december_january, D(2026, 2, 1)).begin == D(2026, 1, 1)
    assert expected_range(acct, "getuserread", DateRange(D(2025, 1, 1), D(2026, 1, 9)), D(2026, 1, 20)) is None


def test_only_never_fetched_expected_days_are_gaps() -> None:
    rows = [{"endpoint": "getuserread", "ref_date": D(2026, 1, 10), "status": "loaded"},
            {"endpoint": "getuserread", "ref_date": D(2026, 1, 11), "status": "not_ready"},
            {"endpoint": "getuserread", "ref_date": D(2026, 1, 13), "status": "empty"}]
    (report,) = [r for r in endpoint_freshness(shop_account(), DateRange(D(2026, 1, 9), D(2026, 1, 15)), rows, {},
                                                      D(2026, 1, 14))
                 if r["endpoint"] == "getuserread"]
    assert report["gaps"] == [{"from": D(2026, 1, 12), "to": D(2026, 1, 12), "days": 1},
                              {"from": D(2026, 1, 14), "to": D(2026, 1, 14), "days": 1}]
    assert [c["status"] for c in report["calendar"]] == ["n/a", "loaded", "not_ready", "missing", "empty",
                                                          "missing", "n/a"]


def test_a_week_or_month_endpoint_expects_only_the_labels_of_periods_already_over() -> None:
    """Tuesday..Sunday never carry week rows: they are n/a, not gaps; an unfinished week is not expected yet."""
    acct = shop_account(start_date="2026-01-01", endpoints=["message"])
    rows = [{"endpoint": "getupstreammsgweek", "ref_date": D(2026, 1, 5), "status": "loaded"}]
    january = DateRange(D(2026, 1, 1), D(2026, 1, 31))
    reports = {r["endpoint"]: r for r in endpoint_freshness(acct, january, rows, {}, D(2026, 1, 20))}
    week = reports["getupstreammsgweek"]
    # Weeks over by the 20th with a Monday in the calendar: 01-05 and 01-12.
    assert week["gaps"] == [{"from": D(2026, 1, 12), "to": D(2026, 1, 12), "days": 1}]
    assert {c["ref_date"]: c["status"] for c in week["calendar"] if c["status"] != "n/a"} == {
        D(2026, 1, 5): "loaded", D(2026, 1, 12): "missing"}
    assert reports["getupstreammsgmonth"]["gaps"] == []  # January is not over on the 20th
    assert reports["getupstreammsg"]["gaps"] == [{"from": D(2026, 1, 1), "to": D(2026, 1, 20), "days": 20}]
