"""Parameterised reads of the typed tables, one function per chart.

Every function takes a psycopg tuple cursor (inside the read-only transaction of
:mod:`.source`), the account's schema, the account name and an inclusive Beijing date
range, and returns plain JSON-ready data with the API's own field names. Identifiers go
through ``sql.Identifier``; values are always parameters. A table that does not exist
yet (the pipeline never ran) reads as no rows: callers learn which ones from
:func:`missing_tables`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from psycopg import Cursor, sql

from wechat_datacube.dashboard.labels import (
    ALL_SCENE,
    follow_source_label,
    msg_type_label,
    scene_label,
    share_scene_label,
    user_source_label,
)
from wechat_datacube.endpoints import ALL_SOURCES, get_endpoint
from wechat_datacube.load_status import DONE, LoadStatus

Row = dict[str, Any]


def _scene_view(endpoint: str, column: str = "read_user_source") -> str:
    """The view unnesting ``endpoint``'s scene list: named by the registry, never spelled here."""
    (view,) = [s.view for s in get_endpoint(endpoint).scene_lists if s.column == column]
    return view


#: The tables the charts read: the legacy article-analysis tables and the load log ...
USER_READ = get_endpoint("getuserread").table
USER_READ_HOUR = get_endpoint("getuserreadhour").table
USER_SHARE = get_endpoint("getusershare").table
USER_SHARE_HOUR = get_endpoint("getusersharehour").table
ARTICLE_TOTAL = get_endpoint("getarticletotal").table
ARTICLE_SUMMARY = get_endpoint("getarticlesummary").table
LOAD_LOG = "load_log"
#: ... and the replacement family WeChat now points everyone to.
BIZ_SUMMARY = get_endpoint("getbizsummary").table
BIZ_SUMMARY_SCENE = _scene_view("getbizsummary")
ARTICLE_TOTAL_DETAIL = get_endpoint("getarticletotaldetail").table
#: ... and the user and message analysis families (accounts pull them beside either generation).
USER_SUMMARY = get_endpoint("getusersummary").table
UPSTREAM_MSG = get_endpoint("getupstreammsg").table
#: The view of followers per account and day over both user tables (storage.views names it;
#: it is no endpoint's, so the registry does not).
DAILY_FOLLOWERS = "daily_followers"
#: Tables that know article titles (the replacement family sends none): used when they exist.
TITLE_TABLES = (ARTICLE_TOTAL, ARTICLE_SUMMARY)

DAILY_METRICS = (
    "int_page_read_user",
    "int_page_read_count",
    "share_user",
    "share_count",
    "add_to_fav_user",
    "add_to_fav_count",
)
CURVE_METRICS = ("int_page_read_user", "int_page_read_count", "share_count", "add_to_fav_count")
#: getbizsummary's daily overview as charted: readers, sharers, Wow (在看), thumbs-up, comments.
BIZ_METRICS = ("read_user", "share_user", "zaikan_user", "like_user", "comment_count")
DETAIL_CURVE_METRICS = ("read_user", "share_user", "zaikan_user", "like_user", "comment_count")
#: Followers gained, lost and their difference (net = new - cancel: WeChat sends no net).
FOLLOW_METRICS = ("new_user", "cancel_user", "net_user")
#: getupstreammsg per message type: users who sent that type, and how many they sent.
MSG_METRICS = ("msg_user", "msg_count")
#: getarticletotaldetail counts up to this many days from the publish date (day 0..29).
DETAIL_DAYS = get_endpoint("getarticletotaldetail").maturity_days
MAX_TOP_ARTICLES = 20


def _table(schema: str, table: str) -> sql.Identifier:
    return sql.Identifier(schema, table)


def existing_tables(cur: Cursor[Any], schema: str, tables: Iterable[str]) -> set[str]:
    """Which of ``tables`` exist in ``schema`` (a fresh database has none)."""
    cur.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind IN ('r', 'p', 'v')",
        (schema, list(tables)),
    )
    return {r[0] for r in cur.fetchall()}


def missing_tables(cur: Cursor[Any], schema: str, tables: Iterable[str]) -> list[str]:
    wanted = list(tables)
    present = existing_tables(cur, schema, wanted)
    return [t for t in wanted if t not in present]


def _fetch(cur: Cursor[Any], query: sql.Composable, params: tuple[Any, ...] | dict[str, Any]) -> list[Row]:
    cur.execute(query, params)
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def daily_reads(cur: Cursor[Any], schema: str, account: str, begin: dt.date, end: dt.date) -> list[Row]:
    """Per day: readers, reads, shares and favourites of article pages (the 99999999 total row)."""
    query = sql.SQL(
        "SELECT ref_date, {metrics} FROM {tbl}"
        " WHERE account = %s AND ref_date BETWEEN %s AND %s AND user_source = %s ORDER BY ref_date"
    ).format(metrics=sql.SQL(", ").join(map(sql.Identifier, DAILY_METRICS)), tbl=_table(schema, USER_READ))
    return _fetch(cur, query, (account, begin, end, ALL_SOURCES))


def _series(rows: list[Row], key: str, label: Callable[[Any], str], metrics: tuple[str, ...]) -> list[Row]:
    """Group rows (ordered by key, ref_date) into one series per ``key`` value."""
    series: dict[Any, Row] = {}
    for row in rows:
        code = row[key]
        entry = series.setdefault(code, {key: code, "label": label(code), "points": []})
        entry["points"].append({"ref_date": row["ref_date"], **{m: row[m] for m in metrics}})
    return list(series.values())


def read_sources(cur: Cursor[Any], schema: str, account: str, begin: dt.date, end: dt.date) -> list[Row]:
    """Readers and reads per read source and day; the channels overlap, so no total is formed here."""
    metrics = ("int_page_read_user", "int_page_read_count")
    query = sql.SQL(
        "SELECT user_source, ref_date, int_page_read_user, int_page_read_count FROM {tbl}"
        " WHERE account = %s AND ref_date BETWEEN %s AND %s AND user_source <> %s ORDER BY user_source, ref_date"
    ).format(tbl=_table(schema, USER_READ))
    return _series(_fetch(cur, query, (account, begin, end, ALL_SOURCES)), "user_source", user_source_label, metrics)


def share_scenes(cur: Cursor[Any], schema: str, account: str, begin: dt.date, end: dt.date) -> list[Row]:
    """Sharers and shares per share scene and day."""
    query = sql.SQL(
        "SELECT share_scene, ref_date, share_user, share_count FROM {tbl}"
        " WHERE account = %s AND ref_date BETWEEN %s AND %s ORDER BY share_scene, ref_date"
    ).format(tbl=_table(schema, USER_SHARE))
    return _series(
        _fetch(cur, query, (account, begin, end)), "share_scene", share_scene_label, ("share_user", "share_count")
    )


def hourly_profile(cur: Cursor[Any], schema: str, account: str, begin: dt.date, end: dt.date) -> list[Row]:
    """Per hour of the day, the average over the range's days of reads (total row) and shares (all scenes).

    Share scenes do not overlap (unlike read sources), so an hour's shares are the sum of its scenes.
    """
    query = sql.SQL(
        """
        WITH reads AS (
          SELECT ref_hour, count(*) AS days,
                 avg(int_page_read_user)::float8 AS int_page_read_user,
                 avg(int_page_read_count)::float8 AS int_page_read_count
            FROM {reads} WHERE account = %s AND ref_date BETWEEN %s AND %s AND user_source = %s
           GROUP BY ref_hour
        ), shares AS (
          SELECT ref_hour, avg(share_user)::float8 AS share_user, avg(share_count)::float8 AS share_count
            FROM (SELECT ref_date, ref_hour, sum(share_user) AS share_user, sum(share_count) AS share_count
                    FROM {shares} WHERE account = %s AND ref_date BETWEEN %s AND %s
                   GROUP BY ref_date, ref_hour) per_day
           GROUP BY ref_hour
        )
        SELECT COALESCE(r.ref_hour, s.ref_hour) AS ref_hour, COALESCE(r.days, 0) AS days,
               r.int_page_read_user, r.int_page_read_count, s.share_user, s.share_count
          FROM reads r FULL JOIN shares s ON s.ref_hour = r.ref_hour
         ORDER BY 1
        """
    ).format(reads=_table(schema, USER_READ_HOUR), shares=_table(schema, USER_SHARE_HOUR))
    rows = _fetch(cur, query, (account, begin, end, ALL_SOURCES, account, begin, end))
    for row in rows:
        for name in ("int_page_read_user", "int_page_read_count", "share_user", "share_count"):
            if row[name] is not None:
                row[name] = round(row[name], 2)
    return rows


@dataclass(frozen=True)
class ArticleCurves:
    """A per-article cumulative table (one row per article and stat_date) read as a top-N chart.

    Both article families store "cumulative from the send date up to stat_date" rows, so one
    reader serves both; they differ only in columns, and in how many days a curve may have.
    """

    table: str
    #: The metric ranking the articles: its value on the article's latest stat_date.
    rank: str
    #: Columns of the article's latest row reported with it (``rank`` first).
    facts: tuple[str, ...]
    #: Metrics per point of the curve.
    curve: tuple[str, ...]
    #: Keep only days 0..days-1 after sending (None: every stored stat_date).
    days: int | None = None


LEGACY_ARTICLES = ArticleCurves(
    ARTICLE_TOTAL,
    rank="int_page_read_user",
    facts=("int_page_read_user", "title", "target_user", "int_page_read_count"),
    curve=CURVE_METRICS,
)
DETAIL_ARTICLES = ArticleCurves(
    ARTICLE_TOTAL_DETAIL,
    rank="read_user",
    facts=("read_user", "publish_type", "share_user", "zaikan_user", "like_user", "comment_count"),
    curve=DETAIL_CURVE_METRICS,
    days=DETAIL_DAYS,
)


def _day_filter(days: int | None) -> sql.Composable:
    if days is None:
        return sql.SQL("")
    return sql.SQL(" AND stat_date BETWEEN ref_date AND ref_date + {}").format(sql.Literal(days - 1))


def _ranked_articles(
    cur: Cursor[Any], spec: ArticleCurves, schema: str, account: str, begin: dt.date, end: dt.date, limit: int,
    extra: sql.Composable,
) -> list[Row]:
    """The ``limit`` articles sent in the range with the highest latest ``rank``, with their latest facts.

    Reads one row per article, not every row of the range: the recursive part walks the
    key's distinct (ref_date, msgid) pairs through the primary key (one probe per article,
    a "skip scan"), then each article's latest stat_date is one backward probe. Reading all
    the range's rows (up to 30 per article) and sorting them took ~300 ms for one account's
    year at 50 accounts x 3 years (bench/dashboard_volume.py, B7); this takes ~40 ms.
    """
    facts = sql.SQL(", ").join(sql.SQL("latest.{}").format(sql.Identifier(f)) for f in spec.facts)
    query = sql.SQL(
        """
        WITH RECURSIVE articles AS (
          (SELECT ref_date, msgid FROM {tbl}
            WHERE account = %(account)s AND ref_date BETWEEN %(begin)s AND %(end)s
            ORDER BY ref_date, msgid LIMIT 1)
          UNION ALL
          SELECT n.ref_date, n.msgid
            FROM articles p CROSS JOIN LATERAL (
                 SELECT ref_date, msgid FROM {tbl}
                  WHERE account = %(account)s AND (ref_date, msgid) > (p.ref_date, p.msgid) AND ref_date <= %(end)s
                  ORDER BY ref_date, msgid LIMIT 1) n
        )
        SELECT latest.ref_date, latest.msgid, latest.stat_date, {facts}{extra}
          FROM articles a CROSS JOIN LATERAL (
               SELECT account, ref_date, msgid, stat_date, {columns} FROM {tbl}
                WHERE account = %(account)s AND ref_date = a.ref_date AND msgid = a.msgid{days}
                ORDER BY stat_date DESC LIMIT 1) latest
         ORDER BY latest.{rank} DESC NULLS LAST, latest.ref_date DESC, latest.msgid
         LIMIT %(limit)s
        """
    ).format(
        facts=facts,
        columns=sql.SQL(", ").join(map(sql.Identifier, spec.facts)),
        extra=extra,
        tbl=_table(schema, spec.table),
        days=_day_filter(spec.days),
        rank=sql.Identifier(spec.rank),
    )
    return _fetch(cur, query, {"account": account, "begin": begin, "end": end, "limit": limit})


def _curves(
    cur: Cursor[Any], spec: ArticleCurves, schema: str, account: str, begin: dt.date, end: dt.date, msgids: list[str]
) -> dict[tuple[dt.date, str], list[Row]]:
    """Per (send date, msgid): the cumulative points, ``day`` 0 being the send date."""
    query = sql.SQL(
        "SELECT ref_date, msgid, stat_date, {metrics} FROM {tbl}"
        " WHERE account = %s AND ref_date BETWEEN %s AND %s AND msgid = ANY(%s){days} ORDER BY stat_date"
    ).format(
        metrics=sql.SQL(", ").join(map(sql.Identifier, spec.curve)),
        tbl=_table(schema, spec.table),
        days=_day_filter(spec.days),
    )
    by_article: dict[tuple[dt.date, str], list[Row]] = {}
    for row in _fetch(cur, query, (account, begin, end, msgids)):
        point = {"day": (row["stat_date"] - row["ref_date"]).days, "stat_date": row["stat_date"]}
        point.update({m: row[m] for m in spec.curve})
        by_article.setdefault((row["ref_date"], row["msgid"]), []).append(point)
    return by_article


def _top_curves(
    cur: Cursor[Any], spec: ArticleCurves, schema: str, account: str, begin: dt.date, end: dt.date, limit: int,
    extra: sql.Composable | None = None,
) -> list[Row]:
    """The top ``limit`` articles of ``spec`` with their curves; ``extra`` adds select items (``, x AS y``)."""
    limit = max(1, min(limit, MAX_TOP_ARTICLES))
    articles = _ranked_articles(cur, spec, schema, account, begin, end, limit, extra or sql.SQL(""))
    if not articles:
        return []
    curves = _curves(cur, spec, schema, account, begin, end, [a["msgid"] for a in articles])
    for article in articles:
        article["latest_stat_date"] = article.pop("stat_date")
        article["curve"] = curves.get((article["ref_date"], article["msgid"]), [])
    return articles


def top_articles(
    cur: Cursor[Any], schema: str, account: str, begin: dt.date, end: dt.date, limit: int = 5
) -> list[Row]:
    """The articles sent in the range with the most readers, each with its cumulative curve.

    Rank by each article's latest cumulative readers (its last stat_date); the curve is
    every stored stat_date, ``day`` 0 being the send date (up to 7 points for getarticletotal).
    """
    return _top_curves(cur, LEGACY_ARTICLES, schema, account, begin, end, limit)


def title_lookup(schema: str, title_tables: Iterable[str]) -> sql.Composable:
    """``, <title> AS title`` for a ``latest`` row: the first title a legacy table has for the msgid.

    getarticletotaldetail sends no title; the legacy tables do for articles they saw. Only
    tables that exist are asked (the caller knows which), so a replacement-only database
    reads titles as NULL instead of failing.
    """
    lookups = [
        sql.SQL(
            "(SELECT t.title FROM {tbl} t WHERE t.account = latest.account AND t.msgid = latest.msgid"
            " AND t.title IS NOT NULL ORDER BY t.ref_date DESC LIMIT 1)"
        ).format(tbl=_table(schema, table))
        for table in title_tables
    ]
    title = sql.SQL("COALESCE({})").format(sql.SQL(", ").join(lookups)) if lookups else sql.SQL("NULL::text")
    return sql.SQL(", {} AS title").format(title)


def article_curves(
    cur: Cursor[Any],
    schema: str,
    account: str,
    begin: dt.date,
    end: dt.date,
    limit: int = 5,
    title_tables: Iterable[str] = (),
) -> list[Row]:
    """getarticletotaldetail: the top articles published in the range, with 30-day cumulative curves.

    Ranked by read_user on each article's latest stat_date (readers from publishing up to
    then); the curve holds days 0..29 after publishing. ``title`` comes from the legacy
    ``title_tables`` when they know the msgid, else is None: label by msgid and date.
    """
    return _top_curves(
        cur, DETAIL_ARTICLES, schema, account, begin, end, limit, title_lookup(schema, title_tables)
    )


def scene_readers(cur: Cursor[Any], schema: str, account: str, begin: dt.date, end: dt.date) -> list[Row]:
    """getbizsummary readers per scene and day: one series per scene_desc, the 全部 total first.

    Scenes overlap (a reader may arrive through several), so no sum is formed: the total is
    WeChat's own 全部 entry. The other scenes follow by their readers over the range.
    """
    query = sql.SQL(
        "SELECT scene_desc, ref_date, user_count FROM {view} WHERE account = %s AND ref_date BETWEEN %s AND %s"
        " ORDER BY scene_desc IS NOT DISTINCT FROM %s DESC,"
        " sum(user_count) OVER (PARTITION BY scene_desc) DESC NULLS LAST, scene_desc NULLS LAST, ref_date"
    ).format(view=_table(schema, BIZ_SUMMARY_SCENE))
    series = _series(_fetch(cur, query, (account, begin, end, ALL_SCENE)), "scene_desc", scene_label, ("user_count",))
    for entry in series:
        entry["total"] = entry["scene_desc"] == ALL_SCENE
    return series


def _per_day(
    cur: Cursor[Any], schema: str, table: str, metrics: tuple[str, ...], account: str, begin: dt.date, end: dt.date
) -> list[Row]:
    """``metrics`` of a table or view with one row per account and day, in date order."""
    query = sql.SQL(
        "SELECT ref_date, {metrics} FROM {tbl} WHERE account = %s AND ref_date BETWEEN %s AND %s ORDER BY ref_date"
    ).format(metrics=sql.SQL(", ").join(map(sql.Identifier, metrics)), tbl=_table(schema, table))
    return _fetch(cur, query, (account, begin, end))


def biz_daily(cur: Cursor[Any], schema: str, account: str, begin: dt.date, end: dt.date) -> list[Row]:
    """getbizsummary per day: readers, sharers, Wow, thumbs-up and comments (one row per day)."""
    return _per_day(cur, schema, BIZ_SUMMARY, BIZ_METRICS, account, begin, end)


def daily_followers(cur: Cursor[Any], schema: str, account: str, begin: dt.date, end: dt.date) -> list[Row]:
    """Per day: followers gained, lost and net over every follow source, and the total followers.

    Read from the ``daily_followers`` view, which defines the day's figures once for the
    dashboard and analysts alike: getusersummary's rows summed over every source (user_source
    0 is "other sources", not a total), net = new - cancel, getusercumulate's total; a day
    only one of the two has is a row with the other's figures None (no invented zero).
    """
    return _per_day(cur, schema, DAILY_FOLLOWERS, (*FOLLOW_METRICS, "cumulate_user"), account, begin, end)


def _with_sums(series: list[Row], metrics: tuple[str, ...]) -> list[Row]:
    """Each series with ``sums``: its metrics added up over the range (None values skipped)."""
    for entry in series:
        entry["sums"] = {m: sum(p[m] for p in entry["points"] if p[m] is not None) for m in metrics}
    return series


def follow_sources(cur: Cursor[Any], schema: str, account: str, begin: dt.date, end: dt.date) -> list[Row]:
    """Followers gained, lost and net per follow source and day, the biggest sources first.

    Codes WeChat adds without notice come through, labelled "source <code>". Each series
    carries its range ``sums`` (the page's table by source).
    """
    query = sql.SQL(
        "SELECT user_source, ref_date, new_user, cancel_user, new_user - cancel_user AS net_user FROM {tbl}"
        " WHERE account = %s AND ref_date BETWEEN %s AND %s"
        " ORDER BY sum(new_user) OVER (PARTITION BY user_source) DESC NULLS LAST, user_source, ref_date"
    ).format(tbl=_table(schema, USER_SUMMARY))
    rows = _fetch(cur, query, (account, begin, end))
    return _with_sums(_series(rows, "user_source", follow_source_label, FOLLOW_METRICS), FOLLOW_METRICS)


def message_types(cur: Cursor[Any], schema: str, account: str, begin: dt.date, end: dt.date) -> list[Row]:
    """Messages users sent the account per message type and day (getupstreammsg), with range sums.

    Only messages are summed over the range: senders are counted per day, so their sum
    would count a user once per day (and a user who sent text and an image is in both types).
    """
    query = sql.SQL(
        "SELECT msg_type, ref_date, msg_user, msg_count FROM {tbl}"
        " WHERE account = %s AND ref_date BETWEEN %s AND %s ORDER BY msg_type, ref_date"
    ).format(tbl=_table(schema, UPSTREAM_MSG))
    rows = _fetch(cur, query, (account, begin, end))
    return _with_sums(_series(rows, "msg_type", msg_type_label, MSG_METRICS), ("msg_count",))


def load_log_rows(cur: Cursor[Any], schema: str, account: str, begin: dt.date, end: dt.date) -> list[Row]:
    """The load log of the account within the range: (endpoint, ref_date, status)."""
    query = sql.SQL(
        "SELECT endpoint, ref_date, status FROM {tbl} WHERE account = %s AND ref_date BETWEEN %s AND %s"
        " ORDER BY endpoint, ref_date"
    ).format(tbl=_table(schema, LOAD_LOG))
    return _fetch(cur, query, (account, begin, end))


def load_log_latest(cur: Cursor[Any], schema: str, account: str) -> dict[str, Row]:
    """Per endpoint, over all time: the last loaded day, the last final day and the last write."""
    query = sql.SQL(
        """
        SELECT endpoint,
               max(ref_date) FILTER (WHERE status = %s) AS last_loaded,
               max(ref_date) FILTER (WHERE status = ANY(%s)) AS last_final,
               max(updated_at) AS last_updated_at
          FROM {tbl} WHERE account = %s GROUP BY endpoint
        """
    ).format(tbl=_table(schema, LOAD_LOG))
    done = sorted(s.value for s in DONE)
    return {r["endpoint"]: r for r in _fetch(cur, query, (LoadStatus.LOADED.value, done, account))}


def latest_loaded_day(cur: Cursor[Any], schema: str, account: str) -> dt.date | None:
    """The newest day any endpoint loaded for the account (the page's default range ends there)."""
    cur.execute(
        sql.SQL("SELECT max(ref_date) FROM {tbl} WHERE account = %s AND status = %s").format(
            tbl=_table(schema, LOAD_LOG)
        ),
        (account, LoadStatus.LOADED.value),
    )
    row = cur.fetchone()
    return row[0] if row is not None else None
