"""Views derived from the typed tables, generated from the registry.

* One view per scene-list column (``EndpointSpec.scene_lists``): the table's key plus
  ``scene_desc`` and ``user_count``, one row per scene, so nobody has to unnest jsonb to
  ask "readers from search per day". The 全部 (all) entry is a row too: scenes overlap, so
  totals come from it, never from a sum.
* ``daily_readers``: one readers-per-day series per account across the cutover from the
  legacy family (getuserread's all-sources row) to the replacement family (getbizsummary),
  with a column naming the endpoint each day came from.
* ``daily_followers``: follows, unfollows, net and total followers per account and day, from
  getusersummary (summed over every follow source: its rows are a split, with no total row)
  and getusercumulate, so analysts need no source codes.

Views hold no data, so they are (re)created, never migrated: :func:`ensure_views` runs in
the schema reconcile (:mod:`.reconcile`) and replaces a view whose definition changed (a
digest of its SQL is kept in the view's comment), and does nothing otherwise.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from wechat_datacube.endpoints import ALL_SOURCES, ENDPOINTS, ColumnType, get_endpoint
from wechat_datacube.storage.catalog import relation_comment
from wechat_datacube.storage.columns import ACCOUNT_COLUMN

#: Registry type -> PostgreSQL cast of a text value.
_CASTS: dict[ColumnType, str] = {
    "int": "integer",
    "bigint": "bigint",
    "float": "double precision",
    "date": "date",
    "text": "text",
    "bool": "boolean",
}


def jsonb_as(value: sql.Composable, type_: ColumnType) -> sql.Composable:
    """SQL turning the jsonb ``value`` into ``type_``, or NULL when it does not fit (never an error).

    Used where stored JSON becomes typed in SQL (views, migrations): a bad value must give
    NULL for that cell, not fail a query over years of rows.
    """
    if type_ == "jsonb":
        return sql.SQL("CASE WHEN jsonb_typeof({v}) <> 'null' THEN {v} END").format(v=value)
    text = sql.SQL("({} #>> '{{}}')").format(value)
    if type_ in ("int", "bigint"):
        return sql.SQL(
            "CASE WHEN jsonb_typeof({v}) = 'number' AND {t} ~ '^-?[0-9]+(\\.0+)?$' THEN {t}::numeric::{c}"
            " WHEN jsonb_typeof({v}) = 'string' AND {t} ~ '^\\s*[+-]?[0-9]+\\s*$' THEN trim({t})::{c} END"
        ).format(v=value, t=text, c=sql.SQL(_CASTS[type_]))
    if type_ == "float":
        return sql.SQL(
            "CASE WHEN jsonb_typeof({v}) = 'number' THEN {t}::double precision"
            " WHEN jsonb_typeof({v}) = 'string' AND {t} ~ '^\\s*[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?\\s*$'"
            " THEN trim({t})::double precision END"
        ).format(v=value, t=text)
    if type_ == "text":
        return sql.SQL("CASE WHEN jsonb_typeof({v}) IN ('string', 'number') THEN {t} END").format(v=value, t=text)
    if type_ == "date":
        return sql.SQL(
            "CASE WHEN jsonb_typeof({v}) = 'string' AND {t} ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$' THEN {t}::date END"
        ).format(v=value, t=text)
    return sql.SQL("CASE WHEN jsonb_typeof({v}) = 'boolean' THEN {t}::boolean END").format(v=value, t=text)


class View(NamedTuple):
    name: str
    comment: str
    select: sql.Composable


def _scene_views(schema: str) -> list[View]:
    views = []
    for spec in ENDPOINTS.values():
        for scenes in spec.scene_lists:
            column = sql.SQL("t.{}").format(sql.Identifier(scenes.column))
            keys = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(k)) for k in (ACCOUNT_COLUMN, *spec.key))
            select = sql.SQL(
                "SELECT {keys}, e ->> 'scene_desc' AS scene_desc, {count} AS user_count"
                " FROM {table} t"
                " CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof({col}) = 'array' THEN {col}"
                " ELSE '[]'::jsonb END) AS e"
            ).format(
                keys=keys,
                count=jsonb_as(sql.SQL("(e -> 'user_count')"), "bigint"),
                table=sql.Identifier(schema, spec.table),
                col=column,
            )
            comment = (
                f"{spec.table}.{scenes.column} unnested: one row per ({', '.join(spec.key)}, scene_desc). "
                "The 全部 row is the total; scenes overlap, never sum them."
            )
            views.append(View(scenes.view, comment, select))
    return views


def _daily_readers(schema: str) -> View:
    legacy, replacement = get_endpoint("getuserread"), get_endpoint("getbizsummary")
    select = sql.SQL(
        "WITH cutover AS (SELECT account, min(ref_date) AS first_day FROM {biz}"
        " WHERE read_user IS NOT NULL GROUP BY account)"
        " SELECT u.account, u.ref_date, u.int_page_read_user AS read_user, {legacy_name}::text AS source_endpoint"
        " FROM {read} u LEFT JOIN cutover c ON c.account = u.account"
        " WHERE u.user_source = {all_sources} AND u.int_page_read_user IS NOT NULL"
        " AND (c.first_day IS NULL OR u.ref_date < c.first_day)"
        " UNION ALL"
        " SELECT b.account, b.ref_date, b.read_user, {replacement_name}::text FROM {biz} b WHERE b.read_user IS NOT NULL"
    ).format(
        biz=sql.Identifier(schema, replacement.table),
        read=sql.Identifier(schema, legacy.table),
        legacy_name=sql.Literal(legacy.name),
        replacement_name=sql.Literal(replacement.name),
        all_sources=sql.Literal(ALL_SOURCES),
    )
    comment = (
        "Readers per account and day across the cutover: getuserread's all-sources row "
        f"(user_source {ALL_SOURCES}, int_page_read_user) before the account's first getbizsummary day, "
        "getbizsummary.read_user from then on. Comparable, not identical: the two families count "
        "readers of article pages with their own rules."
    )
    return View("daily_readers", comment, select)


def _daily_followers(schema: str) -> View:
    """One row per (account, ref_date) that getusersummary or getusercumulate has.

    A FULL JOIN: getusersummary may lack a day getusercumulate has (it can answer ``[]`` for
    one day alone) and the other way round; the day still shows, the missing side NULL.
    The sums are cast back to bigint (``sum(bigint)`` is numeric) so the columns keep the
    tables' type. ``USING`` makes ``account = ...`` reach both tables' primary keys (the
    planner derives it for each side of the full join); a date range filters after the join,
    over one account's days.
    """
    summary, cumulate = get_endpoint("getusersummary"), get_endpoint("getusercumulate")
    select = sql.SQL(
        "WITH by_day AS (SELECT account, ref_date, sum(new_user)::bigint AS new_user,"
        " sum(cancel_user)::bigint AS cancel_user FROM {summary} GROUP BY account, ref_date)"
        " SELECT ref_date, account, s.new_user, s.cancel_user, s.new_user - s.cancel_user AS net_user,"
        " c.cumulate_user"
        " FROM by_day s FULL JOIN {cumulate} c USING (account, ref_date)"
    ).format(summary=sql.Identifier(schema, summary.table), cumulate=sql.Identifier(schema, cumulate.table))
    comment = (
        "Followers per account and day; analysts need no source codes. new_user and cancel_user: "
        f"the day's {summary.table} rows summed over every user_source (source 0 is 'other sources', "
        f"not a total); net_user = new_user - cancel_user; cumulate_user: {cumulate.table}'s total "
        "followers. A day in only one of the two tables has its row, the other side NULL."
    )
    return View("daily_followers", comment, select)


def views(schema: str) -> list[View]:
    """Every derived view of ``schema``, in creation order."""
    return [*_scene_views(schema), _daily_readers(schema), _daily_followers(schema)]


def _digest(conn: psycopg.Connection[Any] | psycopg.Cursor[Any], view: View) -> str:
    return hashlib.sha1(view.select.as_string(conn).encode()).hexdigest()[:12]


def ensure_views(cur: psycopg.Cursor[Any], schema: str) -> list[str]:
    """Create or replace each view whose definition changed; return what was done."""
    changes = []
    for view in views(schema):
        comment = f"{view.comment} [definition {_digest(cur, view)}]"
        if relation_comment(cur, schema, view.name) == comment:
            continue
        name = sql.Identifier(schema, view.name)
        cur.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(name))
        cur.execute(sql.SQL("CREATE VIEW {} AS {}").format(name, view.select))
        cur.execute(sql.SQL("COMMENT ON VIEW {} IS {}").format(name, sql.Literal(comment)))
        changes.append(f"created view {view.name}")
    return changes
