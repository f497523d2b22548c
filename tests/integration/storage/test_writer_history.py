"""History is never erased by a shrinking answer: the writer keeps what :mod:`storage.history` says would shrink."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.fixtures.storage import (
    ACCOUNT,
    SCHEMA,
    SHARE,
    checksum,
    day,
    query,
    share_rows,
    statuses,
    write_share,
)
from wechat_datacube.endpoints import get_endpoint
from wechat_datacube.storage.load_log import loaded_dates
from wechat_datacube.storage.writer import WriteResult, write_window

TOTAL = get_endpoint("getarticletotal")


# --- history is never erased by a shrinking answer ------------------------------------------


def total_body(stat_days: int, *, reads: int = 10, articles: tuple[str, ...] = ("1000_1",)) -> dict[str, Any]:
    """getarticletotal for articles sent on day(0), with ``stat_days`` cumulative detail rows each."""
    return {
        "list": [
            {
                "ref_date": day(0).isoformat(),
                "msgid": msgid,
                "title": "t",
                "details": [
                    {"stat_date": day(k).isoformat(), "int_page_read_user": reads * (k + 1), "target_user": 100}
                    for k in range(stat_days)
                ],
            }
            for msgid in articles
        ]
    }


def write_total(conn: psycopg.Connection[Any], body: dict[str, Any], **kw: Any) -> WriteResult:
    return write_window(conn, SCHEMA, spec=TOTAL, account=ACCOUNT, begin_date=day(0), end_date=day(0), body=body, **kw)


def test_an_empty_answer_for_a_loaded_day_keeps_its_rows_and_says_why(db: psycopg.Connection[Any]) -> None:
    write_share(db, share_rows(range(7)))
    before = checksum(db, SHARE)
    result = write_share(db, share_rows([3]))  # the other six days answered empty
    assert checksum(db, SHARE) == before
    assert result.kept_dates == tuple(day(i) for i in range(7) if i != 3)
    assert result.kept_reasons[0] == f"the answer has 0 row(s) for {day(0)} where 3 are stored"
    assert statuses(db, SHARE) == {day(i): ("loaded" if i == 3 else "kept") for i in range(7)}
    [(message, count)] = query(
        db, f"SELECT message, row_count FROM {SCHEMA}.load_log WHERE ref_date = %s", (day(0),)
    )
    assert "where 3 are stored" in message and count == 3
    [(status, error)] = query(db, f"SELECT status, error FROM {SCHEMA}.api_response WHERE id = %s", (result.response_id,))
    assert status == "kept" and "replace_shrinking" in error


def test_fewer_rows_for_a_loaded_day_keep_the_stored_ones(db: psycopg.Connection[Any]) -> None:
    write_share(db, share_rows([0]), first=0, last=0)
    result = write_share(db, share_rows([0], scenes=(1,)), first=0, last=0)
    assert result.kept_dates == (day(0),)
    assert query(db, f"SELECT count(*) FROM {SCHEMA}.user_share") == [(3,)]


def test_an_answer_as_long_as_the_stored_one_replaces_it(db: psycopg.Connection[Any]) -> None:
    write_share(db, share_rows([0]), first=0, last=0)
    result = write_share(db, share_rows([0], base=40), first=0, last=0)
    assert (result.kept_dates, result.loaded_dates) == ((), (day(0),))
    assert query(db, f"SELECT min(share_user) FROM {SCHEMA}.user_share") == [(41,)]


def test_replace_shrinking_empties_a_day_on_request(db: psycopg.Connection[Any]) -> None:
    write_share(db, share_rows([0]), first=0, last=0)
    result = write_share(db, [], first=0, last=0, replace_shrinking=True)
    assert (result.kept_dates, result.empty_dates) == ((), (day(0),))
    assert checksum(db, SHARE)[0] == 0
    assert statuses(db, SHARE, 0, 0) == {day(0): "empty"}


def test_a_kept_day_counts_as_done_for_the_backfill_planner(db: psycopg.Connection[Any]) -> None:
    write_share(db, share_rows([0]), first=0, last=0)
    write_share(db, [], first=0, last=0)
    assert loaded_dates(db, SCHEMA, ACCOUNT, SHARE.name, day(0), day(0)) == {day(0)}


def test_a_maturing_series_is_upserted_by_stat_date(db: psycopg.Connection[Any]) -> None:
    write_total(db, total_body(3))
    write_total(db, total_body(3, reads=20))
    assert query(db, f"SELECT stat_date, int_page_read_user FROM {SCHEMA}.article_total ORDER BY 1") == [
        (day(0), 20), (day(1), 40), (day(2), 60)
    ]


def test_a_shorter_cumulative_series_keeps_the_stored_stat_dates(db: psycopg.Connection[Any]) -> None:
    write_total(db, total_body(7))
    result = write_total(db, total_body(1, reads=99))
    assert result.kept_dates == (day(0),)
    assert result.kept_reasons == (f"the answer has 1 row(s) for {day(0)} where 7 are stored",)
    assert query(db, f"SELECT count(*), min(int_page_read_user) FROM {SCHEMA}.article_total") == [(7, 10)]


def test_an_article_missing_from_the_answer_is_a_shrink_even_when_another_appears(db: psycopg.Connection[Any]) -> None:
    write_total(db, total_body(2, articles=("1000_1", "1000_2")))
    result = write_total(db, total_body(2, articles=("1000_1", "1000_3")))
    assert result.kept_dates == (day(0),)
    assert "1 article(s) of 2025-03-10 would lose stat dates (e.g. 1000_2: 0 in the answer, 2 stored)" in (
        result.kept_reasons[0]
    )
    assert sorted(r[0] for r in query(db, f"SELECT DISTINCT msgid FROM {SCHEMA}.article_total")) == ["1000_1", "1000_2"]
