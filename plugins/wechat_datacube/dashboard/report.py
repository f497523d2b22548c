"""The dashboard's data: one section per chart, for one account and date range.

Each section names the tables it reads; a section whose tables do not exist yet (an empty
database, or a pipeline that has not run) comes back empty and the response lists the
missing tables instead of failing. The JSON endpoints serve one section each; the page
reads them all over :data:`PAGE_CONNECTIONS` read-only connections at once (each
statement of a READ COMMITTED transaction sees its own snapshot anyway, so one
connection never gave the page one snapshot): PostgreSQL runs one statement per
connection, and a year of one account's page was ~250 ms of statements in a row (B7).
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from psycopg import Cursor

from wechat_datacube.accounts import AccountConfig
from wechat_datacube.dashboard import queries as q
from wechat_datacube.dashboard.freshness import endpoint_freshness
from wechat_datacube.dashboard.source import DashboardError, read_cursor
from wechat_datacube.dates import DateRange, beijing_yesterday
from wechat_datacube.endpoints import HISTORY_START
from wechat_datacube.errors import DateRangeError

#: Range shown when the request names none: this many days up to the newest loaded day
#: (or yesterday), starting no earlier than the account's start date.
DEFAULT_DAYS = 30
MAX_DAYS = 366
#: Connections one request reads its sections over (the request's own, plus helpers).
PAGE_CONNECTIONS = 2


@dataclass(frozen=True)
class Request:
    """What one section is asked for."""

    account: AccountConfig
    dates: DateRange
    top: int = 5
    #: The charted tables that exist: optional extras (article titles) are read only from these.
    present: frozenset[str] = frozenset()

    @property
    def args(self) -> tuple[str, str, dt.date, dt.date]:
        """(schema, account, begin, end): what every query takes."""
        return self.account.schema, self.account.name, self.dates.begin, self.dates.end


def _freshness(cur: Cursor[Any], req: Request) -> list[dict[str, Any]]:
    rows = q.load_log_rows(cur, *req.args)
    latest = q.load_log_latest(cur, req.account.schema, req.account.name)
    return endpoint_freshness(req.account, req.dates, rows, latest, beijing_yesterday())


def _article_curves(cur: Cursor[Any], req: Request) -> list[dict[str, Any]]:
    titles = [t for t in q.TITLE_TABLES if t in req.present]
    return q.article_curves(cur, *req.args, limit=req.top, title_tables=titles)


@dataclass(frozen=True)
class Section:
    tables: tuple[str, ...]
    read: Callable[[Cursor[Any], Request], Any]


SECTIONS: dict[str, Section] = {
    "daily": Section((q.USER_READ,), lambda cur, r: q.daily_reads(cur, *r.args)),
    "sources": Section((q.USER_READ,), lambda cur, r: q.read_sources(cur, *r.args)),
    "share_scenes": Section((q.USER_SHARE,), lambda cur, r: q.share_scenes(cur, *r.args)),
    "hourly": Section((q.USER_READ_HOUR, q.USER_SHARE_HOUR), lambda cur, r: q.hourly_profile(cur, *r.args)),
    "articles": Section((q.ARTICLE_TOTAL,), lambda cur, r: q.top_articles(cur, *r.args, limit=r.top)),
    "read_scenes": Section((q.BIZ_SUMMARY_SCENE,), lambda cur, r: q.scene_readers(cur, *r.args)),
    "biz_summary": Section((q.BIZ_SUMMARY,), lambda cur, r: q.biz_daily(cur, *r.args)),
    "article_curves": Section((q.ARTICLE_TOTAL_DETAIL,), _article_curves),
    "followers": Section((q.DAILY_FOLLOWERS,), lambda cur, r: q.daily_followers(cur, *r.args)),
    "follow_sources": Section((q.USER_SUMMARY,), lambda cur, r: q.follow_sources(cur, *r.args)),
    "messages": Section((q.UPSTREAM_MSG,), lambda cur, r: q.message_types(cur, *r.args)),
    "freshness": Section((q.LOAD_LOG,), _freshness),
}
#: Tables a section needs, then tables some section uses only when they exist.
ALL_TABLES = tuple(dict.fromkeys([*(t for s in SECTIONS.values() for t in s.tables), *q.TITLE_TABLES]))


def resolve_range(
    cur: Cursor[Any], account: AccountConfig, begin: dt.date | None, end: dt.date | None, present: set[str]
) -> DateRange:
    """The requested range, or the last :data:`DEFAULT_DAYS` days up to the newest loaded day."""
    if end is None:
        latest = q.latest_loaded_day(cur, account.schema, account.name) if q.LOAD_LOG in present else None
        end = latest or beijing_yesterday()
    if begin is None:
        # Not before the account's first day (when that is before the end): no empty lead-in on the charts.
        begin = max(end - dt.timedelta(days=DEFAULT_DAYS - 1), min(account.start_date, end), HISTORY_START)
    try:
        dates = DateRange.parse(begin, end, account=account.name)
    except DateRangeError as exc:  # begin after end: the request's fault (400), said as the package says it
        raise DashboardError(str(exc)) from None
    if dates.days > MAX_DAYS:
        raise DashboardError(f"the range may cover at most {MAX_DAYS} days")
    return dates


def build(
    account: AccountConfig,
    sections: list[str],
    begin: dt.date | None = None,
    end: dt.date | None = None,
    top: int = 5,
) -> dict[str, Any]:
    """Read ``sections`` for the account: {account, begin, end, missing_tables, <section>...}."""
    with read_cursor(account) as cur:
        present = q.existing_tables(cur, account.schema, ALL_TABLES)
        dates = resolve_range(cur, account, begin, end, present)
        req = Request(account, dates, top, frozenset(present))
        result: dict[str, Any] = {"account": account.name, "begin": dates.begin, "end": dates.end}
        missing: set[str] = set()
        to_read: list[str] = []
        for name in sections:
            absent = [t for t in SECTIONS[name].tables if t not in present]
            missing.update(absent)
            if not absent:
                to_read.append(name)
            elif name == "freshness":
                # Without load_log every expected day is a gap: that is the truth of an empty database.
                result[name] = _freshness_without_log(req)
            else:
                result[name] = []
        read = _read_sections(cur, req, to_read)
        for name in sections:
            result.setdefault(name, read.get(name))
        result["missing_tables"] = sorted(missing)
        return result


def _read_sections(cur: Cursor[Any], req: Request, names: list[str]) -> dict[str, Any]:
    """{section: data}: ``cur`` and up to ``PAGE_CONNECTIONS - 1`` more connections take sections off one queue.

    A failure on any connection (it cannot open, a statement fails) fails the request as
    reading on one connection did.
    """
    queue = deque(names)
    out: dict[str, Any] = {}

    def drain(on: Cursor[Any]) -> None:
        while queue:
            try:
                name = queue.popleft()
            except IndexError:  # another connection took the last one
                return
            out[name] = SECTIONS[name].read(on, req)

    def helper() -> None:
        with read_cursor(req.account) as own:
            drain(own)

    extra = min(PAGE_CONNECTIONS, len(names)) - 1
    if extra <= 0:
        drain(cur)
        return out
    with ThreadPoolExecutor(extra, thread_name_prefix="dashboard-read") as pool:
        helpers = [pool.submit(helper) for _ in range(extra)]
        try:
            drain(cur)
        finally:
            queue.clear()  # on failure here, the helpers stop after their current section
        for done in helpers:
            done.result()
    return out


def _freshness_without_log(req: Request) -> list[dict[str, Any]]:
    return endpoint_freshness(req.account, req.dates, [], {}, beijing_yesterday())
