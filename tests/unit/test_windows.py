"""Window planning: spans, first dates, active ranges and the matured re-fetch."""

from __future__ import annotations

import datetime as dt

import pytest

from wechat_datacube.dates import DateRange
from wechat_datacube.endpoints import ENDPOINTS, HISTORY_START, get_endpoint
from wechat_datacube.errors import DateRangeError
from wechat_datacube.windows import MATURED, REQUESTED, Window, calls_needed, labels, plan_windows

D = dt.date(2026, 3, 10)
DAY = DateRange(D, D)


def test_a_window_is_a_date_range_that_says_why_it_is_fetched() -> None:
    window = Window(dt.date(2026, 3, 1), dt.date(2026, 3, 3))
    assert window.reason == REQUESTED and window.days == 3 and list(window)[-1] == dt.date(2026, 3, 3)
    assert Window.of(DateRange(D, D), MATURED) == Window(D, D, MATURED)
    with pytest.raises(DateRangeError, match="begin_date 2026-03-10 is after end_date 2026-03-09"):
        Window(D, D - dt.timedelta(days=1))


def test_explicit_range_is_split_by_max_span() -> None:
    windows = plan_windows(get_endpoint("getusershare"), DateRange(dt.date(2026, 3, 1), dt.date(2026, 3, 30)))
    assert [w.days for w in windows] == [7, 7, 7, 7, 2]
    assert windows[0].begin == dt.date(2026, 3, 1) and windows[-1].end == dt.date(2026, 3, 30)


def test_every_daily_endpoint_needs_ceil_days_over_span_calls() -> None:
    daily = [spec for spec in ENDPOINTS.values() if spec.period == "day"]
    assert len(daily) == 17
    for spec in daily:
        windows = plan_windows(spec, DateRange(dt.date(2026, 1, 1), dt.date(2026, 3, 31)))
        assert len(windows) == calls_needed(90, spec.max_span)
        assert sum(w.days for w in windows) == 90 and windows[-1].end == dt.date(2026, 3, 31)


Q1 = DateRange(dt.date(2026, 1, 1), dt.date(2026, 3, 31))


def test_a_week_endpoint_asks_for_the_monday_of_each_week_that_ends_in_the_range() -> None:
    windows = plan_windows(get_endpoint("getupstreammsgweek"), Q1)
    # Sundays 2026-01-04 .. 2026-03-29 end 13 weeks; the first is labelled Monday 2025-12-29.
    assert [w.begin for w in windows] == [dt.date(2025, 12, 29) + dt.timedelta(weeks=k) for k in range(13)]
    assert all(w.begin == w.end and w.begin.weekday() == 0 for w in windows)
    assert windows[0].last_day == dt.date(2026, 1, 4) and windows[-1].last_day == dt.date(2026, 3, 29)


def test_a_week_endpoint_has_nothing_to_fetch_on_six_days_of_seven() -> None:
    spec = get_endpoint("getupstreammsgweek")
    week = [dt.date(2026, 3, 9) + dt.timedelta(days=k) for k in range(7)]  # Monday .. Sunday
    planned = {day: plan_windows(spec, DateRange(day, day)) for day in week}
    assert [day for day, windows in planned.items() if windows] == [dt.date(2026, 3, 15)]
    assert planned[dt.date(2026, 3, 15)] == [Window(dt.date(2026, 3, 9), dt.date(2026, 3, 9), through=dt.date(2026, 3, 15))]


def test_a_month_endpoint_asks_for_the_first_of_each_month_that_ends_in_the_range() -> None:
    windows = plan_windows(get_endpoint("getupstreammsgmonth"), Q1)
    assert [(w.begin, w.last_day) for w in windows] == [
        (dt.date(2026, 1, 1), dt.date(2026, 1, 31)),
        (dt.date(2026, 2, 1), dt.date(2026, 2, 28)),
        (dt.date(2026, 3, 1), dt.date(2026, 3, 31)),
    ]
    assert plan_windows(get_endpoint("getupstreammsgmonth"), DateRange(dt.date(2026, 3, 1), dt.date(2026, 3, 30))) == []


def test_period_windows_hold_as_many_labels_as_the_span_allows() -> None:
    weeks = plan_windows(get_endpoint("getupstreammsgdistweek"), Q1)  # span 15: three Mondays fit
    assert [len(labels(get_endpoint("getupstreammsgdistweek"), w)) for w in weeks] == [3, 3, 3, 3, 1]
    assert all(w.days <= 15 for w in weeks) and weeks[-1].last_day == dt.date(2026, 3, 29)
    months = plan_windows(get_endpoint("getupstreammsgdistmonth"), Q1)  # span 15: one 1st per call
    assert [w.begin for w in months] == [dt.date(2026, 1, 1), dt.date(2026, 2, 1), dt.date(2026, 3, 1)]


def test_period_windows_start_at_the_first_date() -> None:
    spec = get_endpoint("getupstreammsgweek")
    windows = plan_windows(spec, DateRange(HISTORY_START - dt.timedelta(days=30), HISTORY_START + dt.timedelta(days=13)))
    assert [w.begin for w in windows] == [HISTORY_START, HISTORY_START + dt.timedelta(days=7)]


def test_getusersummary_never_asks_for_one_day_alone() -> None:
    """Yesterday alone may come back empty while a two-day window holds both days (a reported quirk)."""
    spec = get_endpoint("getusersummary")
    assert plan_windows(spec, DAY) == [Window(D - dt.timedelta(days=1), D)]
    assert plan_windows(spec, DateRange(HISTORY_START, HISTORY_START)) == [Window(HISTORY_START, HISTORY_START)]
    windows = plan_windows(spec, Q1)  # cut from the end: the newest window is a full one
    assert [w.days for w in windows] == [6] + [7] * 12 and windows[-1].end == Q1.end


def test_daily_getarticletotal_also_refetches_the_send_date_that_just_matured() -> None:
    windows = plan_windows(get_endpoint("getarticletotal"), DAY, refetch_matured=True)
    assert windows == [Window(D - dt.timedelta(days=6), D - dt.timedelta(days=6), MATURED), Window(D, D)]


def test_replacement_total_detail_matures_over_30_days() -> None:
    windows = plan_windows(get_endpoint("getarticletotaldetail"), DAY, refetch_matured=True)
    assert windows[0].begin == D - dt.timedelta(days=29)


def test_non_maturing_endpoint_gets_no_refetch() -> None:
    assert plan_windows(get_endpoint("getusershare"), DAY, refetch_matured=True) == [Window(D, D)]


def test_range_is_clipped_to_first_date_and_active_range() -> None:
    spec = get_endpoint("getuserread")
    windows = plan_windows(spec, DateRange(dt.date(2014, 11, 25), dt.date(2014, 12, 2)))
    assert windows[0].begin == HISTORY_START
    assert plan_windows(spec, DAY, active_until=D - dt.timedelta(days=1)) == []
    assert plan_windows(get_endpoint("getarticleread"), DateRange(dt.date(2025, 10, 1), dt.date(2025, 10, 31))) == []


def test_matured_refetch_is_not_planned_before_the_first_date() -> None:
    spec = get_endpoint("getarticletotal")
    first_day = DateRange(HISTORY_START, HISTORY_START)
    assert plan_windows(spec, first_day, refetch_matured=True) == [Window(HISTORY_START, HISTORY_START)]
