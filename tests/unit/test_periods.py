"""Period date math of the week and month endpoints: labels, last days, which periods a range ends."""

from __future__ import annotations

import datetime as dt

import pytest

from wechat_datacube.periods import earliest_label, is_label, label_of, labels_ending_between, last_day


@pytest.mark.parametrize(
    ("day", "period", "label"),
    [
        (dt.date(2026, 3, 15), "week", dt.date(2026, 3, 9)),  # Sunday -> its Monday
        (dt.date(2026, 3, 9), "week", dt.date(2026, 3, 9)),
        (dt.date(2026, 2, 28), "month", dt.date(2026, 2, 1)),
        (dt.date(2026, 2, 28), "day", dt.date(2026, 2, 28)),
    ],
)
def test_label_of(day: dt.date, period: str, label: dt.date) -> None:
    assert label_of(day, period) == label  # type: ignore[arg-type]
    assert is_label(label, period) and (day == label or not is_label(day, period))  # type: ignore[arg-type]


def test_last_day_of_weeks_and_months_including_leap_february_and_december() -> None:
    assert last_day(dt.date(2026, 3, 9), "week") == dt.date(2026, 3, 15)
    assert last_day(dt.date(2024, 2, 1), "month") == dt.date(2024, 2, 29)
    assert last_day(dt.date(2025, 2, 1), "month") == dt.date(2025, 2, 28)
    assert last_day(dt.date(2025, 12, 1), "month") == dt.date(2025, 12, 31)
    assert last_day(dt.date(2025, 12, 7), "day") == dt.date(2025, 12, 7)


def test_every_period_ends_in_exactly_one_of_consecutive_ranges() -> None:
    """Daily runs, catchup and backfill chunks each ask for the periods ending in their dates: none twice, none lost."""
    begin = dt.date(2023, 12, 20)
    for period in ("day", "week", "month"):
        whole = labels_ending_between(begin, dt.date(2025, 3, 3), period)  # type: ignore[arg-type]
        pieces: list[dt.date] = []
        day = begin
        while day <= dt.date(2025, 3, 3):
            stop = min(day + dt.timedelta(days=9), dt.date(2025, 3, 3))
            pieces += labels_ending_between(day, stop, period)  # type: ignore[arg-type]
            day = stop + dt.timedelta(days=1)
        assert pieces == whole and len(set(whole)) == len(whole)
    assert len(labels_ending_between(dt.date(2024, 1, 1), dt.date(2024, 12, 31), "month")) == 12
    assert labels_ending_between(dt.date(2024, 1, 2), dt.date(2024, 1, 1), "week") == []


def test_earliest_label_reaches_back_to_the_start_of_the_month_or_week() -> None:
    assert earliest_label(dt.date(2026, 3, 20)) == dt.date(2026, 3, 1)
    assert earliest_label(dt.date(2026, 3, 3)) == dt.date(2026, 3, 1)
    assert earliest_label(dt.date(2026, 4, 2)) == dt.date(2026, 3, 30)  # Monday before April 1st
