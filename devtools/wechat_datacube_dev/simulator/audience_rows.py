"""The user, message and interface families' answers: flat rows, field names as on the official pages.

Only the magnitudes come from the stories (:mod:`.audience`, :mod:`.inbound`,
:mod:`.callbacks`). Which week or month labels are served at all (a period is served
only once it is over) is :mod:`.rows`' job; a builder here gets a label date and answers
for the period it labels. Hours are HHMM of their start (0, 100, ..., 2300), as the
old message page defines ref_hour.
"""

from __future__ import annotations

from typing import Any

from wechat_datacube_dev.simulator.audience import OTHER_SOURCE, cumulate_user, follows_day
from wechat_datacube_dev.simulator.callbacks import callback_day, callback_hours
from wechat_datacube_dev.simulator.data import DayQuery
from wechat_datacube_dev.simulator.facts import Period
from wechat_datacube_dev.simulator.inbound import TypeCount, inbound, inbound_hours

Row = dict[str, Any]


def user_summary_rows(q: DayQuery) -> list[Row]:
    """getusersummary: the user_source 0 row, then one row per other source with follows or unfollows."""
    return [{"ref_date": q.day.isoformat(), **s._asdict()} for s in follows_day(q.seed, q.appid, q.day)]


def user_cumulate_rows(q: DayQuery) -> list[Row]:
    """getusercumulate: one row, with the ``user_source: 0`` real answers carry (undocumented)."""
    return [{"ref_date": q.day.isoformat(), "user_source": OTHER_SOURCE,
             "cumulate_user": cumulate_user(q.seed, q.appid, q.day)}]


def _type_row(q: DayQuery, counts: TypeCount, **hour: int) -> Row:
    return {"ref_date": q.day.isoformat(), **hour, **counts._asdict()}


def upstream_msg_rows(q: DayQuery, period: Period) -> list[Row]:
    """getupstreammsg(week, month): one row per msg_type with messages in the day or period."""
    return [_type_row(q, t) for t in inbound(q.seed, q.appid, period, q.day).types]


def upstream_msg_hour_rows(q: DayQuery) -> list[Row]:
    """getupstreammsghour: one row per (hour, msg_type) with messages."""
    return [_type_row(q, t, ref_hour=hour * 100)
            for hour, types in inbound_hours(q.seed, q.appid, q.day) for t in types]


def upstream_msg_dist_rows(q: DayQuery, period: Period) -> list[Row]:
    """getupstreammsgdist(week, month): senders per count_interval bucket (never bucket 0)."""
    return [{"ref_date": q.day.isoformat(), "count_interval": interval, "msg_user": users}
            for interval, users in inbound(q.seed, q.appid, period, q.day).buckets]


def interface_summary_rows(q: DayQuery) -> list[Row]:
    """getinterfacesummary: one row per day, zeros on a day without callbacks."""
    return [{"ref_date": q.day.isoformat(), **callback_day(q.seed, q.appid, q.day)._asdict()}]


def interface_summary_hour_rows(q: DayQuery) -> list[Row]:
    """getinterfacesummaryhour: one row per hour with callbacks."""
    return [{"ref_date": q.day.isoformat(), "ref_hour": hour * 100, **stats._asdict()}
            for hour, stats in callback_hours(q.seed, q.appid, q.day)]
