"""Transactional window writes, failures and checks on real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from wechat_datacube.endpoints import EndpointSpec, get_endpoint
from wechat_datacube.errors import BadPayloadError, ConfigError, DataQualityError, MalformedResponseError
from wechat_datacube.storage import (
    WriteResult,
    load_status,
    loaded_dates,
    migrate,
    record_failure,
    run_checks,
    write_window,
)

SCHEMA = "wechat"
ACCOUNT = "wx_acc"
D1 = dt.date(2025, 3, 10)
SHARE = get_endpoint("getusershare")
SHARE_HOUR = get_endpoint("getusersharehour")
TOTAL = get_endpoint("getarticletotal")


@pytest.fixture
def db(fresh_pg: tuple[str, str]) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(fresh_pg[1]) as conn:
        migrate(conn, SCHEMA)
        yield conn


def day(n: int) -> dt.date:
    return D1 + dt.timedelta(days=n)


def share_rows(days: range | list[int], scenes: tuple[int, ...] = (1, 2, 255), base: int = 0) -> list[dict[str, Any]]:
    return [
        {"ref_date": day(d).isoformat(), "share_scene": s, "share_user": base + s + d, "share_count": str(2 * s + d)}
        for d in days
        for s in scenes
    ]


def write_share(
    conn: psycopg.Connection[Any], rows: list[Any], first: int = 0, last: int = 6, **kw: Any
) -> WriteResult:
    return write_window(
        conn,
        SCHEMA,
        spec=SHARE,
        account=kw.pop("account", ACCOUNT),
        begin_date=day(first),
        end_date=day(last),
        body={"list": rows},
        **kw,
    )


def fail_share(
    conn: psycopg.Connection[Any], body_or_text: Any, status: str, message: str, first: int = 0, last: int = 0
) -> int:
    """record_failure for ACCOUNT's share window of days ``first``..``last``; returns the api_response id."""
    return record_failure(
        conn,
        SCHEMA,
        spec=SHARE,
        account=ACCOUNT,
        begin_date=day(first),
        end_date=day(last),
        body_or_text=body_or_text,
        status=status,
        message=message,
    )


def query(conn: psycopg.Connection[Any], text: str, params: Any = ()) -> list[tuple[Any, ...]]:
    rows = conn.execute(text, params).fetchall()
    conn.rollback()
    return rows


def checksum(conn: psycopg.Connection[Any], spec: EndpointSpec) -> tuple[int, str | None]:
    """Row count and md5 of the ordered rows, without the columns that change on every write."""
    order = ", ".join(("account", *spec.key))
    [(n, md5)] = query(
        conn,
        f"SELECT count(*), md5(string_agg((to_jsonb(t) - 'loaded_at' - 'response_id')::text, '|' ORDER BY {order}))"
        f" FROM {SCHEMA}.{spec.table} t",
    )
    return n, md5


def statuses(conn: psycopg.Connection[Any], spec: EndpointSpec, first: int = 0, last: int = 6) -> dict[dt.date, str]:
    return load_status(conn, SCHEMA, ACCOUNT, spec.name, day(first), day(last))


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


# --- loaded_dates -------------------------------------------------------------------------------


def test_loaded_dates_lists_loaded_and_empty_dates_only(db: psycopg.Connection[Any]) -> None:
    write_share(db, share_rows([0]), first=0, last=1)
    fail_share(db, {"list": []}, "not_ready", "not yet", first=2, last=3)
    assert loaded_dates(db, SCHEMA, ACCOUNT, "getusershare", day(0), day(5)) == {day(0), day(1)}
    assert loaded_dates(db, SCHEMA, "someone_else", "getusershare", day(0), day(5)) == set()
    assert loaded_dates(db, SCHEMA, ACCOUNT, "getuserread", day(0), day(5)) == set()


# --- checks -----------------------------------------------------------------------------------------


def test_a_negative_metric_fails_the_check_and_rolls_the_window_back(db: psycopg.Connection[Any]) -> None:
    write_share(db, share_rows([0]), first=0, last=0)
    before = checksum(db, SHARE)
    bad = share_rows([0])
    bad[1]["share_count"] = -4
    with pytest.raises(DataQualityError, match=r"1 row\(s\) with negative share_count \(lowest -4\)") as err:
        write_share(db, bad, first=0, last=0)
    assert "account=wx_acc" in str(err.value) and "endpoint=getusershare" in str(err.value)
    assert checksum(db, SHARE) == before


def test_an_impossible_ref_hour_fails_the_check(db: psycopg.Connection[Any]) -> None:
    rows = [{"ref_date": D1.isoformat(), "ref_hour": h, "share_scene": 1, "share_user": 1} for h in (0, 100, 150, 2400)]
    with pytest.raises(
        DataQualityError, match=r"2 row\(s\) with ref_hour outside 0, 100, ..., 2300 \(seen \[150, 2400\]\)"
    ):
        write_window(db, SCHEMA, spec=SHARE_HOUR, account=ACCOUNT, begin_date=D1, end_date=D1, body={"list": rows})
    assert checksum(db, SHARE_HOUR)[0] == 0


def test_run_checks_passes_on_a_clean_window(db: psycopg.Connection[Any]) -> None:
    rows = [{"ref_date": D1.isoformat(), "ref_hour": h * 100, "share_scene": 1, "share_user": h} for h in range(24)]
    write_window(db, SCHEMA, spec=SHARE_HOUR, account=ACCOUNT, begin_date=D1, end_date=D1, body={"list": rows})
    run_checks(db, SCHEMA, SHARE_HOUR, ACCOUNT, D1, D1)  # raises on failure
    assert db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_run_checks_finds_duplicate_keys_if_the_primary_key_was_lost(db: psycopg.Connection[Any]) -> None:
    result = write_share(db, share_rows([0]), first=0, last=0)
    db.execute(f"ALTER TABLE {SCHEMA}.user_share DROP CONSTRAINT user_share_pkey")
    db.execute(
        f"INSERT INTO {SCHEMA}.user_share (account, ref_date, share_scene, share_user, response_id)"
        " VALUES (%s, %s, 1, 0, %s)",
        (ACCOUNT, D1, result.response_id),
    )
    db.commit()
    with pytest.raises(DataQualityError, match=r"1 key\(s\) \(account, ref_date, share_scene\) stored more than once"):
        run_checks(db, SCHEMA, SHARE, ACCOUNT, D1, D1)


# --- batched insert ------------------------------------------------------------------------------


def statements_sent(conn: psycopg.Connection[Any], action: Any) -> int:
    """Count the statements the client sends (libpq protocol trace: Query and Execute messages)."""
    with tempfile.TemporaryFile() as trace:
        conn.pgconn.trace(trace.fileno())
        conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS | psycopg.pq.Trace.REGRESS_MODE)
        try:
            action()
        finally:
            conn.pgconn.untrace()
        os.fsync(trace.fileno())
        trace.seek(0)
        lines = trace.read().decode(errors="replace").splitlines()
    return sum(
        1
        for line in lines
        if line.split("\t")[:1] == ["F"] and line.split("\t")[2].split(" ")[0] in ("Query", "Execute")
    )


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
