"""The daily report's reads: one parameterised query per figure, over the typed tables.

Every function takes a psycopg tuple cursor, the account's schema and name and the days
to read, and returns plain values keyed by day. Which tables exist is the caller's
question (:func:`wechat_datacube.dashboard.queries.existing_tables`): these functions are
only called for tables that do, so an account that never loaded reads as "no data".
Identifiers go through ``sql.Identifier``, values are always parameters, and every table
and column name comes from the registry. The load-log reads are the dashboard's own
(:mod:`wechat_datacube.dashboard.queries`), so the report and the page never disagree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from psycopg import Cursor, sql

from wechat_datacube.dashboard import queries as q
from wechat_datacube.endpoints import Family, get_endpoint

#: The view of readers per account and day across the legacy -> replacement cutover (storage/views.py).
DAILY_READERS = "daily_readers"
#: The view of follows, unfollows, net and total followers per account and day (the dashboard reads it too).
DAILY_FOLLOWERS = q.DAILY_FOLLOWERS


class DailyTotal(NamedTuple):
    """Where one family keeps an account-wide number per day, and how a day's rows add up to it."""

    endpoint: str
    #: The column summed over the day's rows (getusershare: one row per share scene; scenes do not overlap).
    column: str
    #: What the number counts, in words for the message (the families count different things).
    measure: str

    @property
    def table(self) -> str:
        return get_endpoint(self.endpoint).table


class ArticleReads(NamedTuple):
    """Where one family keeps each article's readers of a day."""

    endpoint: str
    #: The readers column of the day's row.
    readers: str
    #: Whether the table itself carries titles (the replacement family sends none).
    has_title: bool

    @property
    def table(self) -> str:
        return get_endpoint(self.endpoint).table


#: Shares per family: legacy getusershare counts shares (share_count, summed over its scenes);
#: the replacement family only says how many users shared (getbizsummary.share_user).
SHARES: dict[Family, DailyTotal] = {
    "legacy": DailyTotal("getusershare", "share_count", "shares"),
    "replacement": DailyTotal("getbizsummary", "share_user", "sharers"),
}
#: Articles of the day by readers, per family.
ARTICLES: dict[Family, ArticleReads] = {
    "legacy": ArticleReads("getarticlesummary", "int_page_read_user", has_title=True),
    "replacement": ArticleReads("getarticleread", "read_user", has_title=False),
}


def readers_by_day(
    cur: Cursor[Any], schema: str, account: str, begin: dt.date, end: dt.date
) -> dict[dt.date, tuple[int, str]]:
    """{day: (readers, endpoint it came from)} from the ``daily_readers`` view, for [begin, end]."""
    cur.execute(
        sql.SQL(
            "SELECT ref_date, read_user, source_endpoint FROM {view}"
            " WHERE account = %s AND ref_date BETWEEN %s AND %s ORDER BY ref_date"
        ).format(view=sql.Identifier(schema, DAILY_READERS)),
        (account, begin, end),
    )
    return {day: (int(value), source) for day, value, source in cur.fetchall()}


def followers_by_day(
    cur: Cursor[Any], schema: str, account: str, begin: dt.date, end: dt.date
) -> dict[dt.date, tuple[int | None, int | None, int | None, int | None]]:
    """{day: (new, cancel, net, total followers)} from the ``daily_followers`` view, for [begin, end].

    A side the view has no row for is None (a day getusercumulate has and getusersummary not yet).
    """
    rows = q.daily_followers(cur, schema, account, begin, end)  # the dashboard's read of the same view
    return {r["ref_date"]: (r["new_user"], r["cancel_user"], r["net_user"], r["cumulate_user"]) for r in rows}


def totals_by_day(
    cur: Cursor[Any], schema: str, account: str, total: DailyTotal, begin: dt.date, end: dt.date
) -> dict[dt.date, int]:
    """{day: the day's rows of ``total.column`` summed} for the days of [begin, end] that have a value."""
    column = sql.Identifier(total.column)
    cur.execute(
        sql.SQL(
            "SELECT ref_date, sum({col})::bigint FROM {tbl} WHERE account = %s AND ref_date BETWEEN %s AND %s"
            " GROUP BY ref_date HAVING count({col}) > 0 ORDER BY ref_date"
        ).format(col=column, tbl=sql.Identifier(schema, total.table)),
        (account, begin, end),
    )
    return {day: int(value) for day, value in cur.fetchall()}


def top_articles(
    cur: Cursor[Any],
    schema: str,
    account: str,
    source: ArticleReads,
    day: dt.date,
    limit: int,
    title_tables: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """The ``limit`` articles with the most readers on ``day``: [{msgid, title, readers}], most read first.

    Ties go to the smaller msgid, so the same data always gives the same list. A table
    without titles borrows them from the legacy ``title_tables`` that exist (the
    dashboard's lookup); an article none of them knows has the title None.
    """
    if source.has_title:
        title = sql.SQL(", latest.title")
    else:
        title = q.title_lookup(schema, title_tables)
    query = sql.SQL(
        "SELECT latest.msgid, latest.{readers} AS readers{title} FROM {tbl} latest"
        " WHERE latest.account = %s AND latest.ref_date = %s AND latest.{readers} IS NOT NULL"
        " ORDER BY latest.{readers} DESC, latest.msgid LIMIT %s"
    ).format(readers=sql.Identifier(source.readers), title=title, tbl=sql.Identifier(schema, source.table))
    cur.execute(query, (account, day, limit))
    return [{"msgid": msgid, "readers": int(readers), "title": title} for msgid, readers, title in cur.fetchall()]


def load_log(
    cur: Cursor[Any], schema: str, account: str, day: dt.date
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """(the load log of ``day``, per endpoint its all-time latest days): what the dashboard's freshness reads."""
    return q.load_log_rows(cur, schema, account, day, day), q.load_log_latest(cur, schema, account)
