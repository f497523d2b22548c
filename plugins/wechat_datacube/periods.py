"""Reporting periods of the datacube endpoints: days, weeks and months — pure date math.

Most endpoints describe one day per ``ref_date``. The week and month variants of the message
analysis (getupstreammsgweek, getupstreammsgmonth and their ``dist`` twins) label each period
by its first day — the Monday of a Monday..Sunday week, the 1st of a month — and WeChat serves
a period only once it is over (the official note: "每个月/周的周期数据的数据标注日期在当月/当周的第一天
(当月1日或周一)。在某一月/周过后去调用接口,才能获取到该周期的数据"). So:

* a *label* is a date that can carry rows (every day, every Monday, every 1st);
* a label's *last day* is the last business date its numbers cover; the label is published
  with that day (after 08:00 Beijing on the next day) and a run for that business date is
  the one that fetches it;
* a range of business dates asks for the labels whose last day lies in it, so daily runs,
  catchup and a backfill split any way all cover every period exactly once.

No I/O and nothing but :mod:`datetime`: this is read at DAG-parse time.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

Period = Literal["day", "week", "month"]

_ONE_DAY = dt.timedelta(days=1)


def label_of(day: dt.date, period: Period) -> dt.date:
    """The label of the period holding ``day`` (the day itself, its Monday, or its 1st)."""
    if period == "week":
        return day - dt.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def is_label(day: dt.date, period: Period) -> bool:
    """Whether ``day`` can carry rows of an endpoint with this period."""
    return label_of(day, period) == day


def last_day(label: dt.date, period: Period) -> dt.date:
    """The last business date the period labelled ``label`` covers (Sunday, month end, or the day)."""
    if period == "week":
        return label + dt.timedelta(days=6)
    if period == "month":
        following = (label.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return following - _ONE_DAY
    return label


def labels_ending_between(begin: dt.date, end: dt.date, period: Period) -> list[dt.date]:
    """Labels whose period's last day lies in [begin, end], oldest first."""
    if begin > end:
        return []
    if period == "day":
        return [begin + dt.timedelta(days=n) for n in range((end - begin).days + 1)]
    labels = []
    label = label_of(begin, period)
    while (stop := last_day(label, period)) <= end:
        if stop >= begin:
            labels.append(label)
        label = stop + _ONE_DAY
    return labels


def earliest_label(day: dt.date) -> dt.date:
    """The oldest label whose period can end on or after ``day`` (for reading what is stored)."""
    return min(label_of(day, "week"), label_of(day, "month"))


def describe(period: Period) -> str:
    """How rows of this period are dated, in words (docs, messages)."""
    return {
        "day": "one ref_date per day",
        "week": "ref_date is the Monday of a Monday..Sunday week, served after the week ends",
        "month": "ref_date is the 1st of the month, served after the month ends",
    }[period]
