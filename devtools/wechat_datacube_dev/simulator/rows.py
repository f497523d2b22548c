"""One endpoint's rows for one ref_date: which builder answers which endpoint, quiet days and periods.

Availability (first date, readiness) is :mod:`.datacube`'s job; this only needs the
newest published day to cut cumulative series there and to hold back a week or month
until it is over (:mod:`.periods`): a week/month endpoint answers only for a label date
(Monday / 1st) whose whole period is published, so the live answer, ``state.truth`` and
stray rows all follow the rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import partial
from typing import Any

from wechat_datacube_dev.simulator import audience_rows, legacy_rows, replacement_rows
from wechat_datacube_dev.simulator.data import DayQuery, is_quiet
from wechat_datacube_dev.simulator.facts import FACTS, endpoint_facts
from wechat_datacube_dev.simulator.periods import is_served

Builder = Callable[[DayQuery], list[dict[str, Any]]]

BUILDERS: dict[str, Builder] = {
    "getarticlesummary": legacy_rows.summary_rows,
    "getarticletotal": partial(legacy_rows.total_rows, series_days=FACTS["getarticletotal"].series_days),
    "getuserread": partial(legacy_rows.user_read_rows, hourly=False),
    "getuserreadhour": partial(legacy_rows.user_read_rows, hourly=True),
    "getusershare": partial(legacy_rows.user_share_rows, hourly=False),
    "getusersharehour": partial(legacy_rows.user_share_rows, hourly=True),
    "getarticleread": replacement_rows.article_read_rows,
    "getarticleshare": replacement_rows.article_share_rows,
    "getbizsummary": replacement_rows.biz_summary_rows,
    "getarticletotaldetail": partial(
        replacement_rows.total_detail_rows, series_days=FACTS["getarticletotaldetail"].series_days
    ),
    "getusersummary": audience_rows.user_summary_rows,
    "getusercumulate": audience_rows.user_cumulate_rows,
    "getupstreammsghour": audience_rows.upstream_msg_hour_rows,
    "getinterfacesummary": audience_rows.interface_summary_rows,
    "getinterfacesummaryhour": audience_rows.interface_summary_hour_rows,
    **{
        name: partial(build, period=FACTS[name].period)
        for build, names in (
            (audience_rows.upstream_msg_rows, ("getupstreammsg", "getupstreammsgweek", "getupstreammsgmonth")),
            (audience_rows.upstream_msg_dist_rows,
             ("getupstreammsgdist", "getupstreammsgdistweek", "getupstreammsgdistmonth")),
        )
        for name in names
    },
}


def rows_for_day(
    name: str, seed: int, appid: str, day: dt.date, last_ready: dt.date, quiet_day_rate: float = 0.0
) -> list[dict[str, Any]]:
    """The list items endpoint ``name`` returns for ref_date ``day`` when ``last_ready`` is the newest published day.

    On a quiet day (nothing changed, see :func:`.data.is_quiet`) the replacement family
    answers nothing; the other families still answer, as WeChat's old endpoints do. A
    week/month endpoint answers nothing for a day that labels no period, or whose
    period is not over at ``last_ready``.
    """
    facts = endpoint_facts(name)
    if not is_served(facts.period, day, last_ready):
        return []
    if facts.family == "replacement" and is_quiet(seed, appid, day, quiet_day_rate):
        return []
    return BUILDERS[name](DayQuery(seed, appid, day, last_ready, quiet_day_rate))
