"""WeChat's ``expires_in`` is checked before it decides when every worker refreshes.

A negative or zero lifetime used to make a new token on every call (in classic mode: the
daily quota spent, other workers' tokens killed), ``1e300`` overflowed the expiry date
after WeChat had answered, and text raised. Numbers are clamped into 60..14,400 s, the
rest means the documented 7200 s; each correction is a warning naming the account.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any

import pytest

from wechat_datacube.tokens import (
    EXPIRES_IN_DEFAULT,
    EXPIRES_IN_MAX,
    EXPIRES_IN_MIN,
    CachedToken,
    IssuedToken,
    checked_expires_in,
)

ACCOUNT = "shop-account"
NOW = dt.datetime(2024, 6, 15, 2, 0, tzinfo=dt.UTC)
#: A string that could be a token sent in the wrong field: it must never be logged.
SECRET_LOOKING = "ACCESS_TOKEN_81_6f1c2a9e0b7d4c3a"

# (raw expires_in, lifetime used, whether a warning is due)
CASES: list[tuple[Any, float, bool]] = [
    (7200, 7200.0, False),
    (7199.5, 7199.5, False),
    ("7200", 7200.0, False),
    (" 300 ", 300.0, False),
    (EXPIRES_IN_MIN, EXPIRES_IN_MIN, False),
    (EXPIRES_IN_MAX, EXPIRES_IN_MAX, False),
    (59.9, EXPIRES_IN_MIN, True),
    (0, EXPIRES_IN_MIN, True),
    (0.0, EXPIRES_IN_MIN, True),
    (-5, EXPIRES_IN_MIN, True),
    (-math.inf, EXPIRES_IN_MIN, True),
    (-(10**400), EXPIRES_IN_MIN, True),
    ("-1", EXPIRES_IN_MIN, True),
    (14_401, EXPIRES_IN_MAX, True),
    (1e300, EXPIRES_IN_MAX, True),
    (math.inf, EXPIRES_IN_MAX, True),
    (10**400, EXPIRES_IN_MAX, True),
    ("1e300", EXPIRES_IN_MAX, True),
    (None, EXPIRES_IN_DEFAULT, True),
    (True, EXPIRES_IN_DEFAULT, True),
    (False, EXPIRES_IN_DEFAULT, True),
    (math.nan, EXPIRES_IN_DEFAULT, True),
    ("nan", EXPIRES_IN_DEFAULT, True),
    ("", EXPIRES_IN_DEFAULT, True),
    ("two hours", EXPIRES_IN_DEFAULT, True),
    (SECRET_LOOKING, EXPIRES_IN_DEFAULT, True),
    ([7200], EXPIRES_IN_DEFAULT, True),
    ({"seconds": 7200}, EXPIRES_IN_DEFAULT, True),
]


@pytest.mark.parametrize(("raw", "expected", "warns"), CASES, ids=[repr(c[0])[:24] for c in CASES])
def test_expires_in_is_clamped_or_defaulted(
    raw: Any, expected: float, warns: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="wechat_datacube.tokens"):
        assert checked_expires_in(raw, ACCOUNT) == expected
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert bool(warnings) == warns
    for message in warnings:
        assert ACCOUNT in message
        assert SECRET_LOOKING not in message


@pytest.mark.parametrize("raw", [c[0] for c in CASES], ids=[repr(c[0])[:24] for c in CASES])
def test_every_checked_lifetime_makes_a_cache_entry_in_range(raw: Any) -> None:
    cached = CachedToken.from_issued(IssuedToken("t", checked_expires_in(raw, ACCOUNT)), NOW, margin=600)
    life = (cached.expires_at - NOW).total_seconds()
    assert EXPIRES_IN_MIN <= life <= EXPIRES_IN_MAX
    assert NOW < cached.refresh_at <= cached.expires_at


@pytest.mark.parametrize("life", [-5.0, 1e300, math.inf, math.nan])
def test_a_cache_entry_never_overflows_even_from_an_unchecked_lifetime(life: float) -> None:
    """The last line of defence: a source that forgot the check must not crash the refresh."""
    cached = CachedToken.from_issued(IssuedToken("t", life), NOW, margin=600)
    assert NOW <= cached.refresh_at <= cached.expires_at <= NOW + dt.timedelta(seconds=EXPIRES_IN_MAX)
