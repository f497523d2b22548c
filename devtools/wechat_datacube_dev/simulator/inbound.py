"""Messages followers send to the account (上行消息): per day, per hour, per week and month.

A tiny share of the followers writes each day (:attr:`.audience.AudienceProfile.msg_rate`).
Each day's senders fall into count_interval buckets (1: 1-5 messages, 2: 6-10, 3: more
than 10; bucket 0, "0", is on the page but a sender always sent something, so the
simulator never emits it); the day's messages are drawn within what those buckets allow
and split over msg_type (text, image, voice, video, link), every type's count at least its
senders. Hours split each type's day exactly (:func:`.data.apportion`), so hour rows add
up to the day rows. A week or month adds its days' counts; its distinct senders lie
between the busiest day's and the sum of all days' (some write on several days), and its
buckets are refitted to the period's totals.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import NamedTuple

from wechat_datacube_dev.simulator.audience import audience_profile, cumulate_user
from wechat_datacube_dev.simulator.data import HOUR_PROFILE, apportion, num, rng_for
from wechat_datacube_dev.simulator.facts import Period
from wechat_datacube_dev.simulator.periods import period_days

TEXT = 1
#: msg_type -> (least, most share of the day's senders who send it, extra messages per sender).
MSG_TYPES: dict[int, tuple[float, float, float]] = {
    TEXT: (0.75, 0.95, 1.0),  # text
    2: (0.05, 0.20, 0.5),  # image
    3: (0.03, 0.12, 0.7),  # voice
    4: (0.005, 0.03, 0.2),  # video
    6: (0.01, 0.05, 0.2),  # third-party app message (link)
}
#: How much heavier a period's senders are than a day's: bucket shares scale by this.
PERIOD_SPREAD: dict[Period, float] = {"day": 1.0, "week": 2.5, "month": 5.0}


class TypeCount(NamedTuple):
    """One msg_type's numbers: senders and messages."""

    msg_type: int
    msg_user: int
    msg_count: int


class Inbound(NamedTuple):
    """What followers sent over one day or period."""

    #: Distinct senders.
    senders: int
    #: Types with messages, in msg_type order.
    types: tuple[TypeCount, ...]
    #: (count_interval, msg_user) of the non-empty buckets; msg_user adds up to ``senders``.
    buckets: tuple[tuple[int, int], ...]

    @property
    def messages(self) -> int:
        return sum(t.msg_count for t in self.types)


NOTHING = Inbound(0, (), ())


def _split(senders: int, heavy: float, mid: float) -> tuple[int, int, int]:
    """Senders in buckets 1, 2 and 3 when ``heavy`` send more than 10 messages and ``mid`` 6-10."""
    b3 = min(senders, num(senders * heavy))
    b2 = min(senders - b3, num(senders * mid))
    return senders - b3 - b2, b2, b3


def fit_buckets(senders: int, messages: int, heavy: float, mid: float) -> tuple[tuple[int, int], ...]:
    """``senders`` split into buckets 1/2/3 whose bounds admit exactly ``messages`` (>= senders).

    Starts from the shares ``heavy`` (> 10 messages) and ``mid`` (6-10), then moves users
    down while the buckets need more messages than there are, or up while light and mid
    users alone could not have sent them all.
    """
    b1, b2, b3 = _split(senders, heavy, mid)
    over = b1 + 6 * b2 + 11 * b3 - messages
    if over > 0:  # each step down frees 5 messages
        step = min(b3, -(-over // 5))
        b3, b2, over = b3 - step, b2 + step, over - 5 * step
        step = min(b2, max(0, -(-over // 5)))
        b2, b1 = b2 - step, b1 + step
    while b3 == 0 and messages > 5 * b1 + 10 * b2:
        if b1:
            b1, b2 = b1 - 1, b2 + 1
        else:
            b2, b3 = b2 - 1, b3 + 1
    return tuple((interval, users) for interval, users in ((1, b1), (2, b2), (3, b3)) if users)


@lru_cache(maxsize=65536)
def inbound_day(seed: int, appid: str, day: dt.date) -> Inbound:
    """getupstreammsg and getupstreammsgdist's numbers for ``day``."""
    rng = rng_for(seed, appid, day, "inbound")
    weekday = 0.8 if day.weekday() >= 5 else 1.0
    rate = audience_profile(seed, appid).msg_rate
    senders = num(cumulate_user(seed, appid, day) * rate * weekday * rng.uniform(0.6, 1.4))
    if not senders:
        return NOTHING
    heavy, mid = rng.uniform(0.003, 0.015), rng.uniform(0.02, 0.06)
    b1, b2, b3 = _split(senders, heavy, mid)
    messages = num(b1 * rng.uniform(1.1, 2.0) + b2 * rng.uniform(6, 10) + b3 * rng.uniform(11, 20))
    users = {t: min(senders, num(senders * rng.uniform(lo, hi))) for t, (lo, hi, _) in MSG_TYPES.items()}
    others = sum(u for t, u in users.items() if t != TEXT)
    users[TEXT] = max(users[TEXT], senders - others)  # every sender sent some type
    messages = max(messages, sum(users.values()))
    extra = apportion(messages - sum(users.values()), [users[t] * w for t, (_, _, w) in MSG_TYPES.items()])
    types = tuple(TypeCount(t, u, u + e) for (t, u), e in zip(users.items(), extra, strict=True) if u)
    return Inbound(senders, types, fit_buckets(senders, messages, heavy, mid))


def _distinct(total: int, peak: int, share: float) -> int:
    """Distinct writers of a period: ``share`` of the daily sum, at least the busiest day's."""
    return min(total, max(peak, num(total * share)))


@lru_cache(maxsize=8192)
def inbound(seed: int, appid: str, period: Period, label: dt.date) -> Inbound:
    """The numbers of the day or period labelled ``label`` (a period's Monday or 1st)."""
    if period == "day":
        return inbound_day(seed, appid, label)
    days = [inbound_day(seed, appid, d) for d in period_days(period, label)]
    if not any(d.senders for d in days):
        return NOTHING
    rng = rng_for(seed, appid, period, label, "inbound-period")
    share = rng.uniform(0.55, 0.85)
    senders = _distinct(sum(d.senders for d in days), max(d.senders for d in days), share)
    types = []
    for msg_type in MSG_TYPES:
        of_type = [t for d in days for t in d.types if t.msg_type == msg_type]
        if of_type:
            users = _distinct(sum(t.msg_user for t in of_type), max(t.msg_user for t in of_type), share)
            types.append(TypeCount(msg_type, min(users, senders), sum(t.msg_count for t in of_type)))
    senders = min(senders, sum(t.msg_user for t in types))  # still >= the busiest day's: every sender sent some type
    spread = PERIOD_SPREAD[period]
    heavy, mid = rng.uniform(0.003, 0.015) * spread, rng.uniform(0.02, 0.06) * spread
    messages = sum(t.msg_count for t in types)
    return Inbound(senders, tuple(types), fit_buckets(senders, messages, heavy, mid))


@lru_cache(maxsize=65536)
def hour_weights(seed: int, appid: str, day: dt.date) -> tuple[float, ...]:
    """The day's activity per hour (0..23): messages and passive replies follow it."""
    rng = rng_for(seed, appid, day, "inbound-hours")
    return tuple(w * rng.uniform(0.7, 1.3) for w in HOUR_PROFILE)


@lru_cache(maxsize=65536)
def inbound_hours(seed: int, appid: str, day: dt.date) -> tuple[tuple[int, tuple[TypeCount, ...]], ...]:
    """(hour 0..23, its types) for the hours with messages; each type's counts add up to the day's.

    An hour's senders of a type are at most its messages and the day's senders of the type.
    """
    weights = hour_weights(seed, appid, day)
    split = [(t.msg_type, apportion(t.msg_count, weights), apportion(t.msg_user, weights))
             for t in inbound_day(seed, appid, day).types]
    hours = []
    for hour in range(24):
        types = tuple(TypeCount(t, min(counts[hour], max(users[hour], 1)), counts[hour])
                      for t, counts, users in split if counts[hour])
        if types:
            hours.append((hour, types))
    return tuple(hours)
