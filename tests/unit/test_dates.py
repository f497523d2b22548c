"""Beijing calendar, the one date range, its windows and the availability rules (pure logic)."""

from __future__ import annotations

import datetime as dt

import pytest

from wechat_datacube.dates import (
    DateRange,
    beijing_yesterday,
    check_servable,
    days_between,
    parse_date,
    to_beijing_date,
)
from wechat_datacube.endpoints import HISTORY_START, get_endpoint
from wechat_datacube.errors import ConfigError, DateRangeError

D = dt.date
# 2024-06-10 23:30 UTC is already 2024-06-11 07:30 in Beijing.
LATE_UTC = dt.datetime(2024, 6, 10, 23, 30, tzinfo=dt.UTC)


def servable(endpoint: str, begin: object, end: object, now: dt.datetime = LATE_UTC) -> DateRange:
    """The range parsed and checked against the endpoint, as the hook does before calling."""
    dates = DateRange.parse(begin, end, endpoint=endpoint)  # type: ignore[arg-type]
    check_servable(get_endpoint(endpoint), dates, now=now)
    return dates


# --- DateRange ------------------------------------------------------------------------------


def test_parse_takes_dates_or_iso_text_and_a_missing_end_is_the_begin() -> None:
    assert DateRange.parse("2024-06-01", D(2024, 6, 3)) == DateRange(D(2024, 6, 1), D(2024, 6, 3))
    assert DateRange.parse(" 2024-06-01 ") == DateRange(D(2024, 6, 1), D(2024, 6, 1))


def test_begin_after_end_is_refused_naming_account_endpoint_and_dates() -> None:
    with pytest.raises(DateRangeError) as caught:
        DateRange.parse("2024-06-05", "2024-06-01", account="shop", endpoint="getusershare")
    message = str(caught.value)
    assert message.startswith("begin_date 2024-06-05 is after end_date 2024-06-01")
    assert "account=shop, endpoint=getusershare, dates=2024-06-05..2024-06-01" in message
    assert isinstance(caught.value, ConfigError)  # the run's dates, not WeChat's answer


@pytest.mark.parametrize(("begin", "end"), [("2024-02-30", "2024-03-01"), ("2024-03-01", "soon")])
def test_a_value_that_is_not_a_date_is_refused_with_its_context(begin: str, end: str) -> None:
    with pytest.raises(DateRangeError, match="is not a YYYY-MM-DD date") as caught:
        DateRange.parse(begin, end, account="shop", endpoint="getuserread")
    context = caught.value.context()
    assert (context["account"], context["endpoint"], context["begin_date"], context["end_date"]) == (
        "shop", "getuserread", begin, end
    )


def test_the_constructor_keeps_begin_before_end_too() -> None:
    with pytest.raises(DateRangeError, match="is after"):
        DateRange(D(2024, 1, 2), D(2024, 1, 1))


def test_days_iteration_membership_and_text() -> None:
    week = DateRange(D(2024, 2, 26), D(2024, 3, 3))  # across a leap day
    assert week.days == 7 == len(list(week))
    assert list(week)[3] == D(2024, 2, 29)
    assert D(2024, 3, 3) in week and D(2024, 3, 4) not in week and "2024-03-01" not in week
    assert str(week) == "2024-02-26..2024-03-03"


def test_thirty_days_of_a_seven_day_endpoint_make_five_windows() -> None:
    windows = DateRange(D(2024, 1, 1), D(2024, 1, 30)).windows(7)
    assert len(windows) == 5
    assert windows[0] == DateRange(D(2024, 1, 1), D(2024, 1, 7))
    assert windows[-1] == DateRange(D(2024, 1, 29), D(2024, 1, 30))


def test_windows_cover_the_range_without_gaps_or_overlap() -> None:
    dates = DateRange(D(2024, 1, 1), D(2024, 1, 30))
    windows = dates.windows(3)
    assert [day for w in windows for day in w] == list(dates)
    assert len(windows) == 10


def test_a_window_span_below_one_day_is_a_bug() -> None:
    with pytest.raises(ValueError, match="span"):
        DateRange(D(2024, 1, 1), D(2024, 1, 2)).windows(0)


def test_clipping_keeps_the_part_within_the_bounds() -> None:
    dates = DateRange(D(2024, 1, 1), D(2024, 1, 31))
    assert dates.clipped(D(2024, 1, 10), None) == DateRange(D(2024, 1, 10), D(2024, 1, 31))
    assert dates.clipped(None, D(2024, 1, 5)) == DateRange(D(2024, 1, 1), D(2024, 1, 5))
    assert dates.clipped(D(2024, 2, 1), None) is None


def test_days_between_is_inclusive() -> None:
    assert days_between(D(2024, 1, 1), D(2024, 1, 1)) == 1


# --- Beijing time and what an endpoint serves ---------------------------------------------------


def test_yesterday_is_computed_in_beijing_not_utc() -> None:
    assert beijing_yesterday(LATE_UTC) == D(2024, 6, 10)
    assert to_beijing_date(LATE_UTC) == D(2024, 6, 11)


def test_range_reaching_today_in_beijing_is_refused() -> None:
    with pytest.raises(DateRangeError, match="yesterday"):
        servable("getusershare", "2024-06-05", "2024-06-11")


def test_range_ending_yesterday_in_beijing_is_accepted() -> None:
    assert servable("getusershare", "2024-06-05", D(2024, 6, 10)) == DateRange(D(2024, 6, 5), D(2024, 6, 10))


def test_range_before_history_start_is_refused() -> None:
    before = HISTORY_START - dt.timedelta(days=1)
    with pytest.raises(DateRangeError, match="no data before"):
        servable("getuserread", before, HISTORY_START)


def test_reversed_range_is_refused() -> None:
    with pytest.raises(DateRangeError, match="after"):
        servable("getuserread", "2024-01-02", "2024-01-01")


def test_replacement_endpoint_refuses_dates_before_its_first_date() -> None:
    with pytest.raises(DateRangeError):
        servable("getarticleread", "2025-10-31", "2025-10-31", now=LATE_UTC.replace(year=2026))


@pytest.mark.parametrize("bad", ["2024/01/01", "yesterday", 20240101, dt.datetime(2024, 1, 1)])
def test_unparsable_dates_are_a_clear_error(bad: object) -> None:
    with pytest.raises(DateRangeError):
        parse_date(bad)  # type: ignore[arg-type]


def test_business_date_is_the_interval_start_in_beijing_else_the_logical_date_else_none() -> None:
    from wechat_datacube.dates import business_date

    start = dt.datetime(2026, 6, 18, 16, 30, tzinfo=dt.UTC)  # 00:30 on 06-19 in Beijing
    assert business_date({"data_interval_start": start, "logical_date": start - dt.timedelta(days=5)}) == dt.date(2026, 6, 19)
    assert business_date({"logical_date": start}) == dt.date(2026, 6, 19)
    assert business_date({}) is None


def test_beijing_clock_reads_aware_naive_and_iso_moments() -> None:
    from wechat_datacube.dates import beijing_clock

    assert beijing_clock(dt.datetime(2026, 6, 19, 16, tzinfo=dt.UTC)) == "2026-06-20 00:00"
    assert beijing_clock(dt.datetime(2026, 6, 19, 16)) == "2026-06-20 00:00"  # naive = UTC
    assert beijing_clock("2026-06-20T04:00:00+00:00") == "2026-06-20 12:00"
