"""The account server's passive replies (被动回复) per hour: getinterfacesummary(hour)'s story.

Every message a follower sends (:mod:`.inbound`) reaches the server URL and gets a reply,
and so do follow events and menu clicks: callbacks ≈ messages. A reply takes the
account's typical time (300-600 ms, the unit the official example reads as); a failed
one is cut at WeChat's 5 s limit, which is why the pages' max_time_cost sits just past
5000. The day's row is the hours' sums (max for max_time_cost), so the two endpoints agree.
"""

from __future__ import annotations

import datetime as dt
import random
from functools import lru_cache
from typing import NamedTuple

from wechat_datacube_dev.simulator.audience import AudienceProfile, audience_profile, follows_day
from wechat_datacube_dev.simulator.data import apportion, num, rng_for
from wechat_datacube_dev.simulator.inbound import hour_weights, inbound_day, inbound_hours


class CallbackStats(NamedTuple):
    """One getinterfacesummary(hour) row's numbers (times in ms)."""

    callback_count: int
    fail_count: int
    total_time_cost: int
    max_time_cost: int


NONE = CallbackStats(0, 0, 0, 0)


def _hour_stats(calls: int, profile: AudienceProfile, rng: random.Random) -> CallbackStats:
    """An hour with ``calls`` (> 0) replies: fewer failures than calls, the longest within the total."""
    expected = calls * profile.fail_rate * rng.uniform(0.0, 2.0)
    fails = min(calls - 1, int(expected) + (rng.random() < expected % 1))  # rare failures still happen
    average = profile.reply_ms * rng.uniform(0.8, 1.25)
    timeout = 5000 + int(rng.random() * 51)  # cut at WeChat's 5 s limit, plus the network
    total = num((calls - fails) * average) + fails * timeout
    if fails:
        longest = timeout
    elif calls == 1:
        longest = total
    else:  # the others took at least 40% of the average each
        others = (calls - 1) * num(average * 0.4)
        longest = max(-(-total // calls), min(total - others, num(average * rng.uniform(1.3, 4.0))))
    return CallbackStats(calls, fails, total, longest)


@lru_cache(maxsize=65536)
def callback_hours(seed: int, appid: str, day: dt.date) -> tuple[tuple[int, CallbackStats], ...]:
    """(hour 0..23, its numbers) for the hours with callbacks."""
    rng = rng_for(seed, appid, day, "callbacks")
    profile = audience_profile(seed, appid)
    messages = [0] * 24
    for hour, types in inbound_hours(seed, appid, day):
        messages[hour] = sum(t.msg_count for t in types)
    follows = sum(s.new_user for s in follows_day(seed, appid, day))
    clicks = num(inbound_day(seed, appid, day).messages * profile.event_rate * rng.uniform(0.7, 1.3))
    events = apportion(follows + clicks, hour_weights(seed, appid, day))
    return tuple(
        (hour, _hour_stats(messages[hour] + events[hour], profile, rng))
        for hour in range(24)
        if messages[hour] + events[hour]
    )


@lru_cache(maxsize=65536)
def callback_day(seed: int, appid: str, day: dt.date) -> CallbackStats:
    """The day's numbers: sums of the hours, and their longest reply (all 0 without callbacks)."""
    hours = [stats for _, stats in callback_hours(seed, appid, day)]
    if not hours:
        return NONE
    return CallbackStats(
        sum(h.callback_count for h in hours),
        sum(h.fail_count for h in hours),
        sum(h.total_time_cost for h in hours),
        max(h.max_time_cost for h in hours),
    )
