"""The official pages' examples through the real hook, operator and storage: stored rows equal the page.

A server that knows nothing but the examples (:mod:`tests.fixtures.page_examples`) answers
every call; the operator plans its windows as in production (week and month labels,
getusersummary's two-day window, stray rows dropped), and what lands in PostgreSQL is
compared with the example's own fields — no code of ours computes the expected values.
Only the flat endpoints are compared field by field here (the legacy five without nesting
and the user, message and interface families); the nested shapes are walked by
tests/unit/storage/test_rows_samples.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.fixtures.page_examples import TOKEN, PageExampleServer, page_example_server, sample
from tests.fixtures.wechat_conn import register_wechat_conn
from wechat_datacube.dates import BEIJING
from wechat_datacube.endpoints import ENDPOINTS, get_endpoint
from wechat_datacube.operators import WeChatDatacubeToPostgresOperator
from wechat_datacube.periods import last_day

FLAT = sorted(name for name, spec in ENDPOINTS.items() if spec.nested is None and spec.detail is None)
#: After every example's dates are published and past their readiness deadline.
NOW = dt.datetime(2025, 11, 10, 13, 0, tzinfo=BEIJING)


@pytest.fixture
def pages(monkeypatch: pytest.MonkeyPatch, fresh_pg: tuple[str, str]) -> Iterator[PageExampleServer]:
    with page_example_server() as server:
        register_wechat_conn(monkeypatch, server.base_url, "wechat_pages", token_mode="classic")
        yield server


def business_dates(endpoint: str) -> tuple[dt.date, dt.date]:
    """From the example's first ref_date to the last business date its last row covers (a week's Sunday ...)."""
    days = sorted(dt.date.fromisoformat(row["ref_date"]) for row in sample(endpoint)["list"])
    return days[0], last_day(days[-1], get_endpoint(endpoint).period)


def stored(dsn: str, endpoint: str) -> list[dict[str, Any]]:
    spec = get_endpoint(endpoint)
    query = sql.SQL("SELECT {}, extra FROM {} WHERE account = 'pages'").format(
        sql.SQL(", ").join(map(sql.Identifier, spec.column_names)), sql.Identifier("wechat", spec.table)
    )
    with psycopg.connect(dsn) as conn:
        cur = conn.execute(query)
        names = [d.name for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


@pytest.mark.parametrize("endpoint", FLAT)
def test_the_page_example_is_stored_field_by_field(pages: PageExampleServer, fresh_pg: tuple[str, str], endpoint: str) -> None:
    begin, end = business_dates(endpoint)
    operator = WeChatDatacubeToPostgresOperator(
        task_id=endpoint, endpoint=endpoint, account="pages", wechat_conn_id="wechat_pages",
        postgres_conn_id="wechat_pg", begin_date=begin, end_date=end, clock=lambda: NOW,
        hook_kwargs={"max_attempts": 1},
    )  # fmt: skip
    summary = operator.execute({})

    example = sample(endpoint)["list"]
    rows = stored(fresh_pg[1], endpoint)
    spec = get_endpoint(endpoint)
    assert summary["rows"] == len(rows) == len(example)
    by_key = {tuple(str(row[k]) for k in spec.key): row for row in rows}
    for item in example:
        row = by_key[tuple(str(item[k]) for k in spec.key)]
        for name, value in item.items():
            assert (row[name].isoformat() if isinstance(row[name], dt.date) else row[name]) == value, (endpoint, name)
        assert row["extra"] in (None, {}), (endpoint, row["extra"])  # every documented field has its column
    asked = [body for path, body in pages.calls if path == spec.path]
    assert len(asked) == summary["calls"] and all(b["begin_date"] <= b["end_date"] for b in asked)
    with psycopg.connect(fresh_pg[1]) as conn:  # the token travels in the URL; nothing stored may carry it
        kept = conn.execute("SELECT count(*) FROM wechat.api_response WHERE payload::text LIKE %s", (f"%{TOKEN}%",))
        assert kept.fetchone()[0] == 0 and TOKEN not in str(summary)


def test_week_and_month_examples_are_asked_for_by_their_labels(pages: PageExampleServer, fresh_pg: tuple[str, str]) -> None:
    """One call per Monday / 1st at span 1, both labels in one call at span 15; each call dated by its labels."""
    for endpoint in ("getupstreammsgweek", "getupstreammsgdistweek", "getupstreammsgmonth", "getupstreammsgdistmonth"):
        begin, end = business_dates(endpoint)
        WeChatDatacubeToPostgresOperator(
            task_id=endpoint, endpoint=endpoint, account="pages", wechat_conn_id="wechat_pages",
            postgres_conn_id="wechat_pg", begin_date=begin, end_date=end, clock=lambda: NOW,
        ).execute({})  # fmt: skip
    asked = {path.removeprefix("/datacube/"): [] for path, _ in pages.calls}
    for path, body in pages.calls:
        asked[path.removeprefix("/datacube/")].append((body["begin_date"], body["end_date"]))
    labels = {e: sorted({row["ref_date"] for row in sample(e)["list"]}) for e in asked}
    assert asked["getupstreammsgweek"] == [(d, d) for d in labels["getupstreammsgweek"]]
    assert asked["getupstreammsgmonth"] == [(d, d) for d in labels["getupstreammsgmonth"]]
    assert asked["getupstreammsgdistweek"] == [tuple(labels["getupstreammsgdistweek"])]  # 8 days <= span 15
    assert asked["getupstreammsgdistmonth"] == [(d, d) for d in labels["getupstreammsgdistmonth"]]
