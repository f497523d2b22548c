"""The dashboard's date range: the default, begin after end, and the longest range served (no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.fixtures.dashboard import shop_account
from wechat_datacube.dashboard.report import MAX_DAYS, resolve_range
from wechat_datacube.dashboard.source import DashboardError
from wechat_datacube.dates import DateRange

D = dt.date


def test_begin_after_end_is_a_bad_request_naming_the_dates() -> None:
    with pytest.raises(DashboardError, match=r"begin_date 2026-02-01 is after end_date 2026-01-31") as caught:
        resolve_range(None, shop_account(), D(2026, 2, 1), D(2026, 1, 31), set())  # type: ignore[arg-type]
    assert caught.value.status_code == 400 and "account=shop" in str(caught.value)


def test_a_range_of_more_than_a_year_is_refused() -> None:
    leap_year = resolve_range(None, shop_account(), D(2024, 1, 1), D(2024, 12, 31), set())  # type: ignore[arg-type]
    assert leap_year == DateRange(D(2024, 1, 1), D(2024, 12, 31)) and leap_year.days == MAX_DAYS
    with pytest.raises(DashboardError, match=f"at most {MAX_DAYS} days"):
        resolve_range(None, shop_account(), D(2024, 1, 1), D(2025, 1, 1), set())  # type: ignore[arg-type]


def test_without_a_begin_the_range_is_the_last_30_days_but_not_before_the_account() -> None:
    account = shop_account()  # starts 2026-01-10
    assert resolve_range(None, account, None, D(2026, 1, 20), set()) == DateRange(D(2026, 1, 10), D(2026, 1, 20))  # type: ignore[arg-type]
    assert resolve_range(None, account, None, D(2026, 3, 31), set()) == DateRange(D(2026, 3, 2), D(2026, 3, 31))  # type: ignore[arg-type]
