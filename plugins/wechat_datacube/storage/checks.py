"""Data-quality checks on a written window, run in the database.

They catch what typing alone cannot: a negative count, an impossible hour, a key that
appears twice (only possible if the primary key were ever lost). Which columns are
metrics is read from the registry's types: counts are ``bigint`` and rates ``float``,
while ``int`` is used for codes (user_source, share_scene, ref_hour, publish_type),
which are enumerations, not measurements, and key columns are identities.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg import sql

from wechat_datacube.endpoints import EndpointSpec
from wechat_datacube.errors import DataQualityError
from wechat_datacube.storage.columns import ACCOUNT_COLUMN, primary_key
from wechat_datacube.storage.connection import read_transaction, validate_schema_name

METRIC_TYPES = ("bigint", "float")


def metric_columns(spec: EndpointSpec) -> tuple[str, ...]:
    """Columns holding measurements (must not be negative)."""
    return tuple(c.name for c in spec.columns if c.type in METRIC_TYPES and c.name not in spec.key)


def _problems(
    cur: psycopg.Cursor[Any], schema: str, spec: EndpointSpec, account: str, begin: dt.date, end: dt.date
) -> list[str]:
    table = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(spec.table))
    where = sql.SQL("{} = %(account)s AND {} BETWEEN %(begin)s AND %(end)s").format(
        sql.Identifier(ACCOUNT_COLUMN), sql.Identifier(spec.date_column)
    )
    params = {"account": account, "begin": begin, "end": end}
    problems: list[str] = []
    metrics = metric_columns(spec)
    if metrics:
        counts = sql.SQL(", ").join(
            sql.SQL("count(*) FILTER (WHERE {c} < 0), min({c})").format(c=sql.Identifier(m)) for m in metrics
        )
        cur.execute(sql.SQL("SELECT {} FROM {} WHERE {}").format(counts, table, where), params, prepare=False)
        row = cur.fetchone() or ()
        for i, name in enumerate(metrics):
            n, lowest = row[2 * i], row[2 * i + 1]
            if n:
                problems.append(f"{n} row(s) with negative {name} (lowest {lowest})")
    if "ref_hour" in spec.column_names:
        cur.execute(
            sql.SQL(
                "SELECT count(*), array_agg(DISTINCT ref_hour) FROM {} WHERE {} "
                "AND NOT (ref_hour BETWEEN 0 AND 2300 AND ref_hour %% 100 = 0)"
            ).format(table, where),
            params,
            prepare=False,
        )
        n, bad = cur.fetchone() or (0, None)
        if n:
            problems.append(f"{n} row(s) with ref_hour outside 0, 100, ..., 2300 (seen {sorted(bad)[:5]})")
    key = sql.SQL(", ").join(map(sql.Identifier, primary_key(spec)))
    cur.execute(
        sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} GROUP BY {} HAVING count(*) > 1) d").format(
            table, where, key
        ),
        params,
        prepare=False,
    )
    dupes = (cur.fetchone() or (0,))[0]
    if dupes:
        problems.append(f"{dupes} key(s) ({', '.join(primary_key(spec))}) stored more than once")
    return problems


def check_window(
    cur: psycopg.Cursor[Any], schema: str, spec: EndpointSpec, account: str, begin: dt.date, end: dt.date
) -> None:
    """Raise DataQualityError listing every problem of the window (inside the caller's transaction)."""
    problems = _problems(cur, schema, spec, account, begin, end)
    if problems:
        raise DataQualityError(
            "data-quality check failed: " + "; ".join(problems),
            account=account,
            endpoint=spec.name,
            begin_date=begin,
            end_date=end,
        )


def run_checks(
    conn: psycopg.Connection[Any],
    schema: str,
    spec: EndpointSpec,
    account: str,
    begin_date: dt.date,
    end_date: dt.date,
) -> None:
    """Check the stored rows of (account, begin_date..end_date); raise DataQualityError if any is off."""
    schema = validate_schema_name(schema)
    with read_transaction(conn), conn.cursor() as cur:
        check_window(cur, schema, spec, account, begin_date, end_date)
