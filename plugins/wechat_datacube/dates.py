"""Beijing time, the one date range, span windows and the availability rules.

Every date the datacube API speaks is a calendar date in Asia/Shanghai; Airflow hands
out UTC datetimes. Keeping the conversion here means no other module does date math:
every Beijing-time helper lives here, and every range that enters the package (operator
arguments, run conf, backfill params, the hook's public calls) becomes a :class:`DateRange`
through :meth:`DateRange.parse`, the only place that checks begin <= end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Union

from wechat_datacube.endpoints import EndpointSpec
from wechat_datacube.errors import DateRangeError

DateLike = Union[dt.date, str]

#: Beijing time (Asia/Shanghai). China has kept UTC+8 without daylight saving since 1991,
#: so a fixed offset is exact for every date the datacube covers (2014 on) and, unlike
#: ``zoneinfo``, costs nothing at DAG parse time.
BEIJING = dt.timezone(dt.timedelta(hours=8), "CST")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def beijing_moment(day: dt.date, hour: int = 0) -> dt.datetime:
    """``hour``:00 on ``day`` in Beijing, as an aware datetime."""
    return dt.datetime.combine(day, dt.time(hour), tzinfo=BEIJING)


def next_beijing_midnight(now: dt.datetime | None = None) -> dt.datetime:
    """When WeChat's daily quotas reset (00:00 Asia/Shanghai), as an aware datetime."""
    return beijing_moment(beijing_today(now) + dt.timedelta(days=1))


def readiness_deadline(ref_date: dt.date, deadline_hour: int) -> dt.datetime:
    """Until this moment an empty answer for ``ref_date`` means "not published yet"."""
    return beijing_moment(ref_date + dt.timedelta(days=1), deadline_hour)


def parse_date(value: DateLike, *, what: str = "date") -> dt.date:
    """Accept a ``date`` or a ``YYYY-MM-DD`` string; anything else is a clear error."""
    if isinstance(value, dt.datetime):
        raise DateRangeError(f"{what} must be a calendar date, not a datetime: {value!r}")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise DateRangeError(f"{what} is not a YYYY-MM-DD date: {value!r}")


def beijing_today(now: dt.datetime | None = None) -> dt.date:
    return (now or utcnow()).astimezone(BEIJING).date()


def beijing_yesterday(now: dt.datetime | None = None) -> dt.date:
    return beijing_today(now) - dt.timedelta(days=1)


def to_beijing_date(moment: dt.datetime) -> dt.date:
    """Calendar date in Beijing of an aware datetime (naive ones are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(BEIJING).date()


def beijing_clock(moment: dt.datetime | str) -> str:
    """``2026-06-20 12:00``: a moment (aware, naive = UTC, or ISO text) as a person in Beijing reads it.

    How messages (task logs, the backfill report, alerts) state times; stored and logged times stay UTC.
    """
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return f"{moment.astimezone(BEIJING):%Y-%m-%d %H:%M}"


def business_date(context: Mapping[str, Any]) -> dt.date | None:
    """The business date of a run from its task context: the data interval's start (else the logical
    date) in Beijing, as the daily timetable defines it; None for a run with neither."""
    start = context.get("data_interval_start") or context.get("logical_date")
    return None if start is None else to_beijing_date(start)


@dataclass(frozen=True)
class DateRange:
    """An inclusive range of Beijing calendar dates, begin <= end by construction.

    ``DateRange.parse`` is how dates enter the package; the context it is given (account,
    endpoint) goes into the :class:`DateRangeError` a bad range raises, so the message
    names what was being asked for. The constructor is where begin <= end is checked,
    for parsed ranges and for the ranges derived from them alike.
    """

    begin: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.begin > self.end:
            raise DateRangeError(
                f"begin_date {self.begin} is after end_date {self.end}", begin_date=self.begin, end_date=self.end
            )

    @classmethod
    def parse(
        cls,
        begin: DateLike,
        end: DateLike | None = None,
        *,
        account: str | None = None,
        endpoint: str | None = None,
    ) -> DateRange:
        """Parse ``begin``/``end`` (``date`` or ``YYYY-MM-DD``); ``end`` defaults to ``begin``."""
        try:
            first = parse_date(begin, what="begin_date")
            return cls(first, first if end is None else parse_date(end, what="end_date"))
        except DateRangeError as exc:
            last = begin if end is None else end
            raise DateRangeError(exc.message, account=account, endpoint=endpoint, begin_date=begin, end_date=last) from None

    @property
    def days(self) -> int:
        """Number of days in the range, both ends included."""
        return days_between(self.begin, self.end)

    def __iter__(self) -> Iterator[dt.date]:
        return iter_days(self.begin, self.end)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.begin <= day <= self.end

    def windows(self, span: int) -> list[DateRange]:
        """Consecutive windows of at most ``span`` days covering the range: one API call each."""
        if span < 1:
            raise ValueError("span must be >= 1")
        windows = []
        start = self.begin
        while start <= self.end:
            stop = min(self.end, start + dt.timedelta(days=span - 1))
            windows.append(DateRange(start, stop))
            start = stop + dt.timedelta(days=1)
        return windows

    def clipped(self, lower: dt.date | None = None, upper: dt.date | None = None) -> DateRange | None:
        """The part of the range within [lower, upper] (a missing bound does not clip); None when nothing is left."""
        begin = max(self.begin, lower) if lower else self.begin
        end = min(self.end, upper) if upper else self.end
        return DateRange(begin, end) if begin <= end else None

    def __str__(self) -> str:
        return f"{self.begin.isoformat()}..{self.end.isoformat()}"


def days_between(begin: dt.date, end: dt.date) -> int:
    """Number of days in the inclusive range [begin, end]."""
    return (end - begin).days + 1


def iter_days(begin: dt.date, end: dt.date) -> Iterator[dt.date]:
    day = begin
    while day <= end:
        yield day
        day += dt.timedelta(days=1)


def check_servable(
    spec: EndpointSpec, dates: DateRange, *, now: dt.datetime | None = None, account: str | None = None
) -> None:
    """Refuse, before any call, a range the endpoint cannot serve.

    That is: dates before the endpoint's first date, or an end on or after today in Beijing
    (WeChat answers 61501 for that; at ``now``, default the real clock).
    """
    ctx = {"endpoint": spec.name, "begin_date": dates.begin, "end_date": dates.end, "account": account}
    if dates.begin < spec.first_date:
        raise DateRangeError(f"{spec.name} has no data before {spec.first_date.isoformat()}", **ctx)
    yesterday = beijing_yesterday(now)
    if dates.end > yesterday:
        raise DateRangeError(
            f"end_date must be <= yesterday in Beijing ({yesterday.isoformat()}); today's data is not published",
            **ctx,
        )
