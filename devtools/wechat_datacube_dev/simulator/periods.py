"""Week and month periods of the message family: how a label date maps to the days it covers.

The official pages (getupstreammsgweek; getupstreammsgmonth, English): "每个月/周的周期数据的数据
标注日期在当月/当周的第一天(当月1日或周一)。在某一月/周过后去调用接口,才能获取到该周期的数据。"
So a week Mon..Sun is labelled by its Monday, a calendar month by its 1st, and neither is
served before its last day is published. Other days never label a period.
"""

from __future__ import annotations

import datetime as dt

from wechat_datacube_dev.simulator.facts import Period


def period_end(period: Period, label: dt.date) -> dt.date | None:
    """The last day of the period labelled ``label``, or None when ``label`` labels none."""
    if period == "day":
        return label
    if period == "week":
        return label + dt.timedelta(days=6) if label.weekday() == 0 else None
    if label.day != 1:
        return None
    next_first = (label.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return next_first - dt.timedelta(days=1)


def period_days(period: Period, label: dt.date) -> list[dt.date]:
    """Every day of the period labelled ``label`` (empty when it labels none)."""
    end = period_end(period, label)
    if end is None:
        return []
    return [label + dt.timedelta(days=k) for k in range((end - label).days + 1)]


def is_served(period: Period, label: dt.date, last_ready: dt.date) -> bool:
    """Whether ``label``'s period is over and published when ``last_ready`` is the newest published day."""
    end = period_end(period, label)
    return end is not None and end <= last_ready
