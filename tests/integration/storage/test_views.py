"""The daily_followers view on real PostgreSQL, over rows stored by the real writer."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from tests.fixtures.storage import SCHEMA, day, query
from wechat_datacube.endpoints import EndpointSpec, get_endpoint
from wechat_datacube.storage.writer import write_window

SUMMARY, CUMULATE = get_endpoint("getusersummary"), get_endpoint("getusercumulate")
D1, D2, D3 = day(0), day(1), day(2)
COLUMNS = ["ref_date", "account", "new_user", "cancel_user", "net_user", "cumulate_user"]


def store(
    conn: psycopg.Connection[Any], spec: EndpointSpec, account: str, first: dt.date, last: dt.date,
    rows: list[dict[str, Any]],
) -> None:
    """One window of ``spec`` for ``account`` as WeChat answers it (``{"list": [...]}``), through the writer."""
    body = {"list": [{**row, "ref_date": row["ref_date"].isoformat()} for row in rows]}
    write_window(conn, SCHEMA, spec=spec, account=account, begin_date=first, end_date=last, body=body)


def follows(ref_date: dt.date, source: int, new: int, cancel: int) -> dict[str, Any]:
    return {"ref_date": ref_date, "user_source": source, "new_user": new, "cancel_user": cancel}


def total(ref_date: dt.date, followers: int) -> dict[str, Any]:
    return {"ref_date": ref_date, "cumulate_user": followers, "user_source": 0}


def followers(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return query(conn, "SELECT * FROM wechat.daily_followers ORDER BY account, ref_date")


def test_daily_followers_sums_every_source_and_joins_the_totals_per_account_and_day(
    db: psycopg.Connection[Any],
) -> None:
    # acme: follows on d1 and d2 from several sources (0 = other sources, one of the rows, not a total),
    # totals on d2 and d3; beta: follows on d2 only, totals on d1 and d2 — same days, other numbers.
    store(db, SUMMARY, "acme", D1, D2, [
        follows(D1, 0, 5, 1), follows(D1, 1, 3, 0), follows(D1, 30, 2, 4),
        follows(D2, 0, 7, 9), follows(D2, 201, 1, 1),
    ])
    store(db, CUMULATE, "acme", D2, D3, [total(D2, 1000), total(D3, 1003)])
    store(db, SUMMARY, "beta", D2, D2, [follows(D2, 0, 100, 50)])
    store(db, CUMULATE, "beta", D1, D2, [total(D1, 7), total(D2, 20000)])

    assert followers(db) == [
        (D1, "acme", 10, 5, 5, None),  # summary only: no total that day
        (D2, "acme", 8, 10, -2, 1000),  # both: a net loss stays negative
        (D3, "acme", None, None, None, 1003),  # totals only
        (D1, "beta", None, None, None, 7),
        (D2, "beta", 100, 50, 50, 20000),
    ]


def test_daily_followers_has_the_documented_columns_all_typed_like_the_tables(db: psycopg.Connection[Any]) -> None:
    types = query(
        db,
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = 'wechat.daily_followers'::regclass AND attnum > 0 ORDER BY attnum",
    )
    # bigint, not numeric: sum() over bigint gives numeric unless the view casts it back.
    assert types == list(zip(COLUMNS, ["date", "text", "bigint", "bigint", "bigint", "bigint"], strict=True))


def test_daily_followers_is_commented_for_analysts(db: psycopg.Connection[Any]) -> None:
    ((comment,),) = query(db, "SELECT obj_description('wechat.daily_followers'::regclass, 'pg_class')")
    assert "analysts need no source codes" in comment
    assert f"{SUMMARY.table} rows summed over every user_source" in comment
    assert "source 0 is 'other sources', not a total" in comment
    assert "[definition " in comment  # the digest that lets the reconcile pass see a changed definition
