"""write_window and record_failure on real PostgreSQL: exact-window replacement, atomicity,
bad payloads kept raw, failures that never downgrade a done date, batched inserts."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from tests.fixtures.storage import (
    ACCOUNT,
    D1,
    SCHEMA,
    SHARE,
    checksum,
    day,
    fail_share,
    query,
    share_rows,
    statements_sent,
    statuses,
    write_share,
)
from wechat_datacube.endpoints import get_endpoint
from wechat_datacube.errors import BadPayloadError, ConfigError, MalformedResponseError
from wechat_datacube.storage.migrations import migrate
from wechat_datacube.storage.writer import write_window

TOTAL = get_endpoint("getarticletotal")


# --- idempotent, exact-window replacement ----------------------------------------------


def test_writing_a_window_three_times_gives_identical_tables(db: psycopg.Connection[Any]) -> None:
    sums = []
    for _ in range(3):
        write_share(db, share_rows(range(7)))
        sums.append(checksum(db, SHARE))
    assert sums[0][0] == 21
    assert sums[0] == sums[1] == sums[2]


def test_rows_removed_upstream_are_removed_on_rewrite_only_when_the_run_opts_in(db: psycopg.Connection[Any]) -> None:
    write_share(db, share_rows(range(7)))
    write_share(db, share_rows(range(7), scenes=(1, 2)))
    assert query(db, f"SELECT count(*) FROM {SCHEMA}.user_share WHERE share_scene = 255") == [(7,)]
    write_share(db, share_rows(range(7), scenes=(1, 2)), replace_shrinking=True)
    assert query(db, f"SELECT count(*) FROM {SCHEMA}.user_share WHERE share_scene = 255") == [(0,)]
    assert checksum(db, SHARE)[0] == 14
    assert set(statuses(db, SHARE).values()) == {"loaded"}


def test_rewrite_replaces_only_its_own_account_and_dates(db: psycopg.Connection[Any]) -> None:
    write_share(db, share_rows(range(7)), account="other")
    write_share(db, share_rows(range(7)))
    write_share(db, share_rows([2], scenes=(1,), base=100), first=2, last=2, replace_shrinking=True)
    rows = query(db, f"SELECT account, ref_date, count(*) FROM {SCHEMA}.user_share GROUP BY 1, 2 ORDER BY 1, 2")
    assert [(a, d, n) for a, d, n in rows if a == "other"] == [("other", day(i), 3) for i in range(7)]
    assert [(d, n) for a, d, n in rows if a == ACCOUNT] == [(day(i), 1 if i == 2 else 3) for i in range(7)]


def test_each_date_of_the_window_is_marked_loaded_or_empty(db: psycopg.Connection[Any]) -> None:
    result = write_share(db, share_rows([0, 3]))
    assert result.row_count == 6
    assert result.loaded_dates == (day(0), day(3))
    assert statuses(db, SHARE) == {day(i): ("loaded" if i in (0, 3) else "empty") for i in range(7)}
    counts = query(db, f"SELECT ref_date, row_count, response_id FROM {SCHEMA}.load_log ORDER BY 1")
    assert [(d, n) for d, n, _ in counts] == [(day(i), 3 if i in (0, 3) else 0) for i in range(7)]
    assert {r for _, _, r in counts} == {result.response_id}


def test_an_empty_list_marks_every_date_empty(db: psycopg.Connection[Any]) -> None:
    result = write_share(db, [])
    assert (result.row_count, result.empty_dates) == (0, tuple(day(i) for i in range(7)))
    assert query(db, f"SELECT status, row_count FROM {SCHEMA}.api_response") == [("empty", 0)]


def test_the_response_is_kept_as_received_with_its_run_metadata(db: psycopg.Connection[Any]) -> None:
    body = {"list": share_rows([0]), "is_delay": False}
    result = write_window(
        db,
        SCHEMA,
        spec=SHARE,
        account=ACCOUNT,
        begin_date="2025-03-10",
        end_date="2025-03-10",
        body=body,
        meta={"dag_id": "wechat_daily", "run_id": "scheduled__x", "try_number": 2},
    )
    [row] = query(
        db,
        f"SELECT account, endpoint, begin_date, end_date, dag_id, run_id, try_number, row_count, status, error, payload"
        f" FROM {SCHEMA}.api_response WHERE id = %s",
        (result.response_id,),
    )
    assert row == (ACCOUNT, "getusershare", D1, D1, "wechat_daily", "scheduled__x", 2, 3, "loaded", None, body)


def test_nested_article_totals_are_stored_one_row_per_stat_date(db: psycopg.Connection[Any]) -> None:
    details = [{"stat_date": day(i).isoformat(), "int_page_read_user": 10 * (i + 1), "new_field": i} for i in range(3)]
    body = {"list": [{"ref_date": D1.isoformat(), "msgid": "100_1", "title": "T", "details": details}]}
    write_window(db, SCHEMA, spec=TOTAL, account=ACCOUNT, begin_date=D1, end_date=D1, body=body)
    rows = query(db, f"SELECT msgid, stat_date, int_page_read_user, extra FROM {SCHEMA}.article_total ORDER BY 2")
    assert rows == [("100_1", day(i), 10 * (i + 1), {"new_field": i}) for i in range(3)]


def test_text_and_jsonb_with_special_characters_round_trip(db: psycopg.Connection[Any]) -> None:
    tricky = "tab\there\nnewline \\backslash 'single' \"double\" \\N 中文 😀"
    source = [{"scene_desc": tricky, "user_count": 1}]
    row = {
        "ref_date": D1.isoformat(),
        "msgid": tricky,
        "detail": {"read_user": 1, "read_user_source": source, "surprise": {"k": tricky}},
    }
    spec = get_endpoint("getarticleread")
    write_window(db, SCHEMA, spec=spec, account=ACCOUNT, begin_date=D1, end_date=D1, body={"list": [row]})
    assert query(db, f"SELECT msgid, read_user_source, extra FROM {SCHEMA}.article_read") == [
        (tricky, source, {"surprise": {"k": tricky}})
    ]


# --- atomicity ------------------------------------------------------------------------------


def test_a_failure_after_the_delete_and_before_commit_leaves_previous_rows_intact(db: psycopg.Connection[Any]) -> None:
    first = write_share(db, share_rows(range(7)))
    before = checksum(db, SHARE)
    seen_inside: list[int] = []

    def crash(cur: psycopg.Cursor[Any]) -> None:
        cur.execute(f"SELECT count(*) FROM {SCHEMA}.user_share WHERE share_scene = 255")
        seen_inside.append(cur.fetchone()[0])  # type: ignore[index]
        raise RuntimeError("worker killed")

    with pytest.raises(RuntimeError, match="worker killed"):
        write_share(db, share_rows(range(7), scenes=(1,), base=50), before_commit=crash, replace_shrinking=True)
    assert seen_inside == [0]  # the delete and new insert had happened inside the transaction
    assert checksum(db, SHARE) == before
    assert query(db, f"SELECT DISTINCT response_id FROM {SCHEMA}.load_log") == [(first.response_id,)]
    assert query(db, f"SELECT count(*) FROM {SCHEMA}.api_response") == [(1,)]
    assert db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_write_refuses_a_connection_with_an_open_transaction(db: psycopg.Connection[Any]) -> None:
    db.execute("SELECT 1")
    with pytest.raises(ConfigError, match="no open transaction"):
        write_share(db, share_rows([0]))


# --- bad payloads ------------------------------------------------------------------------------


BAD_BODIES = {
    "list-absent": ({"errcode": 0, "errmsg": "ok"}, "has no 'list'"),
    "list-not-a-list": ({"list": "oops"}, "has a 'list' that is a str"),
    "row-not-an-object": ({"list": [["2025-03-10", 1]]}, "row 0 is a list, not an object"),
    "missing-key": ({"list": [{"ref_date": "2025-03-10", "share_user": 1}]}, r"missing key field\(s\) share_scene"),
    "text-for-int": ({"list": [{"ref_date": "2025-03-10", "share_scene": 1, "share_user": "abc"}]}, "not an integer"),
    "list-for-number": (
        {"list": [{"ref_date": "2025-03-10", "share_scene": 1, "share_count": [3]}]},
        "holds a list where a bigint belongs",
    ),
    "all-rows-elsewhere": (
        {"list": [{"ref_date": "2019-01-01", "share_scene": 1, "share_user": 1}]},
        "all 1 row.s. are dated outside the requested window",
    ),
}


@pytest.mark.parametrize("kind", sorted(BAD_BODIES))
def test_a_bad_payload_is_refused_clearly_kept_raw_and_leaves_typed_rows_unchanged(
    db: psycopg.Connection[Any], kind: str
) -> None:
    write_share(db, share_rows([0]), first=0, last=0)
    before = checksum(db, SHARE)
    body, message = BAD_BODIES[kind]
    with pytest.raises((BadPayloadError, MalformedResponseError), match=message) as err:
        write_window(db, SCHEMA, spec=SHARE, account=ACCOUNT, begin_date=day(0), end_date=day(1), body=body)
    text = str(err.value)
    assert f"account={ACCOUNT}" in text and "endpoint=getusershare" in text and "dates=2025-03-10..2025-03-11" in text
    assert query(db, f"SELECT count(*) FROM {SCHEMA}.api_response") == [(1,)]  # nothing written by the failed call

    response_id = fail_share(db, body, "failed", text, first=0, last=1)
    assert query(db, f"SELECT status, payload, error FROM {SCHEMA}.api_response WHERE id = %s", (response_id,)) == [
        ("failed", body, text)
    ]
    assert checksum(db, SHARE) == before
    assert statuses(db, SHARE, 0, 1) == {day(0): "loaded", day(1): "failed"}


#: Bodies whose rows are fine but which PostgreSQL jsonb cannot hold, and what the kept copy shows instead.
UNSTORABLE_BODIES: dict[str, tuple[dict[str, Any], str, Any]] = {
    "nan-beside-the-list": ({"list": share_rows([0]), "sim_ratio": float("nan")}, "sim_ratio", "NaN"),
    "infinity-beside-is-delay": ({"list": [], "is_delay": True, "sim_max": float("inf")}, "sim_max", "Infinity"),
    "nul-in-unknown-text": ({"list": share_rows([0]), "sim_note": "a\x00b"}, "sim_note", "a\ufffdb"),
}


@pytest.mark.parametrize("kind", sorted(UNSTORABLE_BODIES))
def test_a_body_postgres_cannot_store_is_a_bad_payload_before_anything_is_written(
    db: psycopg.Connection[Any], kind: str
) -> None:
    write_share(db, share_rows([0]), first=0, last=0)
    before = checksum(db, SHARE)
    body, key, kept = UNSTORABLE_BODIES[kind]
    with pytest.raises(BadPayloadError, match=f"body\\['{key}'\\]") as err:
        write_window(db, SCHEMA, spec=SHARE, account=ACCOUNT, begin_date=day(0), end_date=day(1), body=body)
    text = str(err.value)
    assert f"account={ACCOUNT}" in text and "endpoint=getusershare" in text and "dates=2025-03-10..2025-03-11" in text
    assert db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # refused before the transaction
    assert query(db, f"SELECT count(*) FROM {SCHEMA}.api_response") == [(1,)]

    response_id = fail_share(db, body, "failed", text, first=0, last=1)
    [(status, payload)] = query(db, f"SELECT status, payload FROM {SCHEMA}.api_response WHERE id = %s", (response_id,))
    assert status == "failed" and payload[key] == kept
    assert payload["list"] == body["list"]
    assert checksum(db, SHARE) == before
    assert statuses(db, SHARE, 0, 1) == {day(0): "loaded", day(1): "failed"}


# --- record_failure ---------------------------------------------------------------------------


def test_record_failure_never_downgrades_a_loaded_or_empty_date(db: psycopg.Connection[Any]) -> None:
    write_share(db, share_rows([0]), first=0, last=1)  # day 0 loaded, day 1 empty
    before = checksum(db, SHARE)
    fail_share(db, {"list": []}, "not_ready", "is_delay true", first=0, last=3)
    assert statuses(db, SHARE, 0, 3) == {day(0): "loaded", day(1): "empty", day(2): "not_ready", day(3): "not_ready"}
    assert checksum(db, SHARE) == before


def test_a_failed_date_becomes_loaded_when_a_later_write_succeeds(db: psycopg.Connection[Any]) -> None:
    fail_share(db, "<html>502</html>", "failed", "bad gateway")
    write_share(db, share_rows([0]), first=0, last=0)
    assert query(db, f"SELECT status, message FROM {SCHEMA}.load_log") == [("loaded", None)]


def test_a_body_that_is_not_json_is_stored_as_a_json_string(db: psycopg.Connection[Any]) -> None:
    text = '<html><body>502 Bad Gateway</body></html>{"list": ['
    response_id = fail_share(db, text.encode(), "failed", "malformed JSON")
    assert query(
        db, f"SELECT jsonb_typeof(payload), payload #>> '{{}}' FROM {SCHEMA}.api_response WHERE id = %s", (response_id,)
    ) == [("string", text)]


def test_a_json_text_body_is_stored_parsed(db: psycopg.Connection[Any]) -> None:
    response_id = fail_share(db, '{"errcode": 45009, "errmsg": "quota"}', "failed", "quota")
    assert query(db, f"SELECT payload FROM {SCHEMA}.api_response WHERE id = %s", (response_id,)) == [
        ({"errcode": 45009, "errmsg": "quota"},)
    ]


def test_record_failure_never_stores_an_access_token(db: psycopg.Connection[Any]) -> None:
    token = "TOKEN-1234567890-secret"
    body = f"<a href='https://api.weixin.qq.com/datacube/getusershare?access_token={token}'>"
    fail_share(db, body, "failed", f"POST /datacube/getusershare?access_token={token} failed")
    [(stored,)] = query(db, f"SELECT concat_ws(' ', payload::text, error) FROM {SCHEMA}.api_response")
    assert token not in stored
    assert "access_token=***" in stored


def test_record_failure_rejects_an_unknown_status(db: psycopg.Connection[Any]) -> None:
    with pytest.raises(ConfigError, match="status must be one of"):
        fail_share(db, "", "loaded", "")


# --- batched insert ------------------------------------------------------------------------------


def test_the_insert_is_batched_not_one_statement_per_row(db: psycopg.Connection[Any]) -> None:
    scenes = tuple(range(1, 401))
    small = statements_sent(db, lambda: write_share(db, share_rows([0]), first=0, last=6))
    large = statements_sent(db, lambda: write_share(db, share_rows(range(7), scenes=scenes), first=0, last=6))
    assert checksum(db, SHARE)[0] == 2800
    assert large == small, (small, large)
    assert large <= 15


def test_twenty_thousand_rows_are_written_in_under_five_seconds(db: psycopg.Connection[Any]) -> None:
    spec = get_endpoint("getuserreadhour")
    rows = [
        {
            "ref_date": D1.isoformat(),
            "ref_hour": h * 100,
            "user_source": s,
            "int_page_read_user": str(s),
            "share_user": h,
        }
        for h in range(24)
        for s in range(834)
    ]
    started = time.perf_counter()
    result = write_window(db, SCHEMA, spec=spec, account=ACCOUNT, begin_date=D1, end_date=D1, body={"list": rows})
    elapsed = time.perf_counter() - started
    assert result.row_count == 20016
    assert elapsed < 5.0, f"{elapsed:.2f}s"


def test_a_write_through_the_postgres_hook_connection_commits(fresh_pg: tuple[str, str]) -> None:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    conn = PostgresHook(postgres_conn_id=fresh_pg[0]).get_conn()
    try:
        migrate(conn)
        write_share(conn, share_rows([0]), first=0, last=0)
    finally:
        conn.close()
    with psycopg.connect(fresh_pg[1]) as other:
        assert checksum(other, SHARE)[0] == 3


def test_two_writers_of_one_window_never_leave_a_mix_of_both(db: psycopg.Connection[Any], fresh_pg: tuple[str, str]) -> None:
    """The second writer waits for the first and replaces its rows, instead of adding to them."""
    first_inside = threading.Event()
    release_first = threading.Event()

    def hold(_cursor: Any) -> None:
        first_inside.set()
        assert release_first.wait(30)

    def first_writer() -> None:
        with psycopg.connect(fresh_pg[1]) as conn:
            write_share(conn, share_rows([0], scenes=(1,)), first=0, last=0, before_commit=hold)

    def second_writer() -> None:
        with psycopg.connect(fresh_pg[1]) as conn:
            write_share(conn, share_rows([0], scenes=(2,)), first=0, last=0)

    one = threading.Thread(target=first_writer)
    two = threading.Thread(target=second_writer)
    one.start()
    try:
        assert first_inside.wait(30)
        two.start()
        two.join(1.0)
        assert two.is_alive(), "the second writer went ahead while the first held the window"
    finally:
        release_first.set()
        one.join(30)
        if two.ident is not None:  # started
            two.join(30)
    scenes = [r[0] for r in db.execute(f"SELECT share_scene FROM {SCHEMA}.user_share WHERE account = %s", (ACCOUNT,))]
    assert scenes == [2]
    (logged,) = db.execute(
        f"SELECT row_count FROM {SCHEMA}.load_log WHERE account = %s AND endpoint = 'getusershare'", (ACCOUNT,)
    ).fetchone()
    assert logged == 1


# --- plans that follow the table ---------------------------------------------------------


def test_window_statements_over_typed_tables_are_never_prepared(db: psycopg.Connection[Any]) -> None:
    """A cached generic plan made while a table was small turns every later window into a full scan.

    With ``prepare_threshold=0`` psycopg prepares every statement it may on the first run:
    after several window writes and rewrites, none of the statements that select rows of
    the typed table by window (stored profile, delete, checks) may be among the session's
    prepared statements, or a long-lived writer would keep their first plan.
    """
    db.prepare_threshold = 0
    for first in range(4):
        write_share(db, share_rows(range(first, 7)), first=first, replace_shrinking=True)
    prepared = [s for (s,) in query(db, "SELECT statement FROM pg_prepared_statements")]
    over_typed_table = [s for s in prepared if "user_share" in s]
    assert prepared, "psycopg prepared nothing: the check would be empty"
    assert over_typed_table == []
