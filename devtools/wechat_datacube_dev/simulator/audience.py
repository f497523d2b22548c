"""Followers day by day: the total, and follows and unfollows per follow source.

One story behind getusersummary and getusercumulate. The total (:func:`cumulate_user`)
is the trend of :func:`.data.followers` (the audience the article story reaches) plus a
bounded wobble of its own day, and a day's net growth is *defined* as the difference of
two totals. So Σ over sources of (new_user − cancel_user) equals Δ cumulate_user exactly,
and any day costs O(1) (no running sum over twelve years). Unfollows are a share of the
audience (churn), follows are net + unfollows; both are split over the sources present
that day. Source 0 ("其他合计", all *other* sources, not the total) is on every day, even
when both numbers are 0, as real answers show; channels that had no code yet, or no
longer have one, count there ("之前合并在“其他合计”中").

:class:`AudienceProfile` also holds the account's rates for the message and passive-reply
stories (:mod:`.inbound`, :mod:`.callbacks`), so all three scale with one audience.
"""

from __future__ import annotations

import datetime as dt
import random
from functools import lru_cache
from typing import NamedTuple

from wechat_datacube_dev.simulator.data import apportion, followers, num, rng_for

#: The "other sources" follow source: present on every day.
OTHER_SOURCE = 0
#: Share of follows that come from sources without a code of their own.
OTHER_SHARE = 0.10
_OPEN = dt.date.max
#: user_source -> (share of follows, first day, last day it is reported under its own code).
#: Dates from the official guide: 161 from 2020-04, 100 from 2020-06, 51 merged into 0 from
#: 2023-06. 149 from the Mini Program launch and 200/201 from 2020-10 are the simulator's choice.
FOLLOW_SOURCES: dict[int, tuple[float, dt.date, dt.date]] = {
    1: (0.22, dt.date.min, _OPEN),  # Official Account search
    17: (0.06, dt.date.min, _OPEN),  # business card
    30: (0.24, dt.date.min, _OPEN),  # QR code scan
    51: (0.04, dt.date.min, dt.date(2023, 5, 31)),  # after payment
    57: (0.12, dt.date.min, _OPEN),  # account name in an article
    100: (0.08, dt.date(2020, 6, 1), _OPEN),  # WeChat ads
    149: (0.05, dt.date(2017, 1, 9), _OPEN),  # Mini Program
    161: (0.07, dt.date(2020, 4, 1), _OPEN),  # reposted by others
    200: (0.05, dt.date(2020, 10, 1), _OPEN),  # Channels (视频号)
    201: (0.02, dt.date(2020, 10, 1), _OPEN),  # live
}
#: Chance that a coded source brings anyone on a given day, so the set of rows varies.
SOURCE_ACTIVE_RATE = 0.75


class AudienceProfile(NamedTuple):
    """An account's rates behind the follow, message and passive-reply stories."""

    #: Unfollows per follower per day.
    churn: float
    #: Followers who message the account per day (a tiny share).
    msg_rate: float
    #: Menu clicks and other events that get a passive reply, per message.
    event_rate: float
    #: Share of passive replies that fail (time out at WeChat's 5 s limit).
    fail_rate: float
    #: The account server's typical reply time, ms.
    reply_ms: float


class SourceCount(NamedTuple):
    """One getusersummary row's numbers."""

    user_source: int
    new_user: int
    cancel_user: int


@lru_cache(maxsize=4096)
def audience_profile(seed: int, appid: str) -> AudienceProfile:
    """The account's rates, from their own RNG stream (the article story stays as it is)."""
    rng = rng_for(seed, appid, "audience-profile")
    return AudienceProfile(
        churn=rng.uniform(0.0003, 0.0012),
        msg_rate=rng.uniform(0.001, 0.004),
        event_rate=rng.uniform(0.05, 0.3),
        fail_rate=rng.uniform(0.0005, 0.008),
        reply_ms=rng.uniform(300.0, 600.0),
    )


@lru_cache(maxsize=65536)
def cumulate_user(seed: int, appid: str, day: dt.date) -> int:
    """Total followers at the end of ``day``: the audience trend plus up to ± half a day's churn."""
    audience = followers(seed, appid, day)
    wobble = rng_for(seed, appid, day, "follow-wobble").uniform(-0.5, 0.5)
    return num(audience * (1 + audience_profile(seed, appid).churn * wobble))


def _weights(day: dt.date, active: list[int], rng: random.Random) -> list[float]:
    """Today's weights of the ``active`` sources (OTHER_SOURCE first), each varied by a draw.

    Source 0 also carries the channels that have no code of their own on ``day``.
    """
    merged = sum(share for share, first, last in FOLLOW_SOURCES.values() if not first <= day <= last)
    base = [OTHER_SHARE + merged, *(FOLLOW_SOURCES[s][0] for s in active[1:])]
    return [b * rng.uniform(0.5, 1.5) for b in base]


@lru_cache(maxsize=65536)
def follows_day(seed: int, appid: str, day: dt.date) -> tuple[SourceCount, ...]:
    """getusersummary's numbers for ``day``: source 0 always, then each coded source with activity."""
    rng = rng_for(seed, appid, day, "follows")
    net = cumulate_user(seed, appid, day) - cumulate_user(seed, appid, day - dt.timedelta(days=1))
    audience = followers(seed, appid, day)
    cancel = max(num(audience * audience_profile(seed, appid).churn * rng.uniform(0.6, 1.4)), -net)
    active = [OTHER_SOURCE] + [
        code for code, (_, first, last) in FOLLOW_SOURCES.items()
        if first <= day <= last and rng.random() < SOURCE_ACTIVE_RATE
    ]
    new_split = apportion(net + cancel, _weights(day, active, rng))
    cancel_split = apportion(cancel, _weights(day, active, rng))
    return tuple(
        SourceCount(source, new, gone)
        for source, new, gone in zip(active, new_split, cancel_split, strict=True)
        if source == OTHER_SOURCE or new or gone
    )
