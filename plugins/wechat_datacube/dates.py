"""Beijing calendar arithmetic, span chunking and the availability rules.

Every date the datacube API speaks is a calendar date in Asia/Shanghai; Airflow hands
out UTC datetimes. Keeping the conversion here means no other module does date math.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Union

from wechat_datacube.endpoints import EndpointSpec
from wechat_datacube.errors import BEIJING, DateRangeError

DateLike = Union[dt.date, str]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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


def days_between(begin: dt.date, end: dt.date) -> int:
    """Number of days in the inclusive range [begin, end]."""
    return (end - begin).days + 1


def iter_days(begin: dt.date, end: dt.date) -> Iterator[dt.date]:
    day = begin
    while day <= end:
        yield day
        day += dt.timedelta(days=1)


def chunk_range(begin: dt.date, end: dt.date, span: int) -> list[tuple[dt.date, dt.date]]:
    """Split [begin, end] into consecutive inclusive windows of at most ``span`` days."""
    if span < 1:
        raise ValueError("span must be >= 1")
    chunks = []
    start = begin
    while start <= end:
        stop = min(end, start + dt.timedelta(days=span - 1))
        chunks.append((start, stop))
        start = stop + dt.timedelta(days=1)
    return chunks


def validate_range(
    spec: EndpointSpec,
    begin: DateLike,
    end: DateLike,
    *,
    now: dt.datetime | None = None,
    account: str | None = None,
) -> tuple[dt.date, dt.date]:
    """Check a requested range against the endpoint's availability; return it as dates.

    Refused before any call: begin > end, begin before the endpoint's first date, end on
    or after today in Beijing (WeChat answers 61501 for that).
    """
    ctx = {"endpoint": spec.name, "begin_date": begin, "end_date": end, "account": account}
    b = parse_date(begin, what="begin_date")
    e = parse_date(end, what="end_date")
    if b > e:
        raise DateRangeError("begin_date is after end_date", **ctx)
    if b < spec.first_date:
        raise DateRangeError(f"{spec.name} has no data before {spec.first_date.isoformat()}", **ctx)
    yesterday = beijing_yesterday(now)
    if e > yesterday:
        raise DateRangeError(
            f"end_date must be <= yesterday in Beijing ({yesterday.isoformat()}); today's data is not published",
            **ctx,
        )
    return b, e
