"""Window planning: spans, first dates, active ranges and the matured re-fetch."""

from __future__ import annotations

import datetime as dt

import pytest

from wechat_datacube.dates import DateRange
from wechat_datacube.endpoints import ENDPOINTS, HISTORY_START, get_endpoint
from wechat_datacube.errors import DateRangeError
from wechat_datacube.windows import MATURED, REQUESTED, Window, calls_needed, plan_windows

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


def test_every_endpoint_needs_ceil_days_over_span_calls() -> None:
    for spec in ENDPOINTS.values():
        windows = plan_windows(spec, DateRange(dt.date(2026, 1, 1), dt.date(2026, 3, 31)))
        assert len(windows) == calls_needed(90, spec.max_span)


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
