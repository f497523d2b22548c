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
from collections.abc import Iterable
from typing import Any

from psycopg import Cursor, sql

from wechat_datacube.dashboard.labels import share_scene_label, user_source_label
from wechat_datacube.endpoints import ALL_SOURCES, get_endpoint
from wechat_datacube.storage import DONE_STATUSES

Row = dict[str, Any]

#: The tables the charts read (the legacy article-analysis tables and the load log).
USER_READ = get_endpoint("getuserread").table
USER_READ_HOUR = get_endpoint("getuserreadhour").table
USER_SHARE = get_endpoint("getusershare").table
USER_SHARE_HOUR = get_endpoint("getusersharehour").table
ARTICLE_TOTAL = get_endpoint("getarticletotal").table
LOAD_LOG = "load_log"

DAILY_METRICS = (
    "int_page_read_user",
    "int_page_read_count",
    "share_user",
    "share_count",
    "add_to_fav_user",
    "add_to_fav_count",
)
CURVE_METRICS = ("int_page_read_user", "int_page_read_count", "share_count", "add_to_fav_count")
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


def _fetch(cur: Cursor[Any], query: sql.Composable, params: tuple[Any, ...]) -> list[Row]:
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


def _series(rows: list[Row], key: str, label: Any, metrics: tuple[str, ...]) -> list[Row]:
    """Group rows (ordered by key, ref_date) into one series per ``key`` value."""
    series: dict[int, Row] = {}
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


def top_articles(
    cur: Cursor[Any], schema: str, account: str, begin: dt.date, end: dt.date, limit: int = 5
) -> list[Row]:
    """The articles sent in the range with the most readers, each with its cumulative curve.

    Rank by each article's latest cumulative readers (its last stat_date); the curve is
    every stored stat_date, ``day`` 0 being the send date (up to 7 points for getarticletotal).
    """
    limit = max(1, min(limit, MAX_TOP_ARTICLES))
    tbl = _table(schema, ARTICLE_TOTAL)
    latest = sql.SQL(
        """
        SELECT ref_date, msgid, title, target_user, int_page_read_user, int_page_read_count, stat_date
          FROM (SELECT DISTINCT ON (ref_date, msgid) ref_date, msgid, title, target_user,
                       int_page_read_user, int_page_read_count, stat_date
                  FROM {tbl} WHERE account = %s AND ref_date BETWEEN %s AND %s
                 ORDER BY ref_date, msgid, stat_date DESC) latest
         ORDER BY int_page_read_user DESC NULLS LAST, ref_date DESC, msgid
         LIMIT %s
        """
    ).format(tbl=tbl)
    articles = _fetch(cur, latest, (account, begin, end, limit))
    if not articles:
        return []
    curves = _fetch(
        cur,
        sql.SQL(
            "SELECT ref_date, msgid, stat_date, {metrics} FROM {tbl}"
            " WHERE account = %s AND ref_date BETWEEN %s AND %s AND msgid = ANY(%s) ORDER BY stat_date"
        ).format(metrics=sql.SQL(", ").join(map(sql.Identifier, CURVE_METRICS)), tbl=tbl),
        (account, begin, end, [a["msgid"] for a in articles]),
    )
    by_article: dict[tuple[dt.date, str], list[Row]] = {}
    for row in curves:
        point = {"day": (row["stat_date"] - row["ref_date"]).days, "stat_date": row["stat_date"]}
        point.update({m: row[m] for m in CURVE_METRICS})
        by_article.setdefault((row["ref_date"], row["msgid"]), []).append(point)
    for article in articles:
        article["latest_stat_date"] = article.pop("stat_date")
        article["curve"] = by_article.get((article["ref_date"], article["msgid"]), [])
    return articles


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
               max(ref_date) FILTER (WHERE status = 'loaded') AS last_loaded,
               max(ref_date) FILTER (WHERE status = ANY(%s)) AS last_final,
               max(updated_at) AS last_updated_at
          FROM {tbl} WHERE account = %s GROUP BY endpoint
        """
    ).format(tbl=_table(schema, LOAD_LOG))
    return {r["endpoint"]: r for r in _fetch(cur, query, (list(DONE_STATUSES), account))}


def latest_loaded_day(cur: Cursor[Any], schema: str, account: str) -> dt.date | None:
    """The newest day any endpoint loaded for the account (the page's default range ends there)."""
    cur.execute(
        sql.SQL("SELECT max(ref_date) FROM {tbl} WHERE account = %s AND status = 'loaded'").format(
            tbl=_table(schema, LOAD_LOG)
        ),
        (account,),
    )
    row = cur.fetchone()
    return row[0] if row is not None else None
