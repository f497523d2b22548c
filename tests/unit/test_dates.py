"""Beijing calendar, chunking and range validation (pure logic)."""

from __future__ import annotations

import datetime as dt

import pytest

from wechat_datacube.dates import (
    beijing_yesterday,
    chunk_range,
    days_between,
    parse_date,
    to_beijing_date,
    validate_range,
)
from wechat_datacube.endpoints import HISTORY_START, get_endpoint
from wechat_datacube.errors import DateRangeError

D = dt.date
# 2024-06-10 23:30 UTC is already 2024-06-11 07:30 in Beijing.
LATE_UTC = dt.datetime(2024, 6, 10, 23, 30, tzinfo=dt.UTC)


def test_thirty_days_of_a_seven_day_endpoint_make_five_chunks() -> None:
    chunks = chunk_range(D(2024, 1, 1), D(2024, 1, 30), 7)
    assert len(chunks) == 5
    assert chunks[0] == (D(2024, 1, 1), D(2024, 1, 7))
    assert chunks[-1] == (D(2024, 1, 29), D(2024, 1, 30))


def test_chunks_cover_the_range_without_gaps_or_overlap() -> None:
    chunks = chunk_range(D(2024, 1, 1), D(2024, 1, 30), 3)
    days = [d for b, e in chunks for d in range(b.toordinal(), e.toordinal() + 1)]
    assert days == list(range(D(2024, 1, 1).toordinal(), D(2024, 1, 30).toordinal() + 1))
    assert len(chunks) == 10


def test_days_between_is_inclusive() -> None:
    assert days_between(D(2024, 1, 1), D(2024, 1, 1)) == 1


def test_yesterday_is_computed_in_beijing_not_utc() -> None:
    assert beijing_yesterday(LATE_UTC) == D(2024, 6, 10)
    assert to_beijing_date(LATE_UTC) == D(2024, 6, 11)


def test_range_reaching_today_in_beijing_is_refused() -> None:
    with pytest.raises(DateRangeError, match="yesterday"):
        validate_range(get_endpoint("getusershare"), "2024-06-05", "2024-06-11", now=LATE_UTC)


def test_range_ending_yesterday_in_beijing_is_accepted() -> None:
    assert validate_range(get_endpoint("getusershare"), "2024-06-05", D(2024, 6, 10), now=LATE_UTC) == (
        D(2024, 6, 5),
        D(2024, 6, 10),
    )


def test_range_before_history_start_is_refused() -> None:
    before = HISTORY_START - dt.timedelta(days=1)
    with pytest.raises(DateRangeError, match="no data before"):
        validate_range(get_endpoint("getuserread"), before, HISTORY_START, now=LATE_UTC)


def test_reversed_range_is_refused() -> None:
    with pytest.raises(DateRangeError, match="after"):
        validate_range(get_endpoint("getuserread"), "2024-01-02", "2024-01-01", now=LATE_UTC)


def test_replacement_endpoint_refuses_dates_before_its_first_date() -> None:
    with pytest.raises(DateRangeError):
        validate_range(get_endpoint("getarticleread"), "2025-10-31", "2025-10-31", now=LATE_UTC.replace(year=2026))


@pytest.mark.parametrize("bad", ["2024/01/01", "yesterday", 20240101, dt.datetime(2024, 1, 1)])
def test_unparsable_dates_are_a_clear_error(bad: object) -> None:
    with pytest.raises(DateRangeError):
        parse_date(bad)  # type: ignore[arg-type]
