"""WeChatDatacubeToPostgresOperator end to end: real Postgres, the simulator over real HTTP.

The operator is executed directly with a minimal context (DAG-level runs through Airflow
are tested in tests/dags/). The simulator's clock is frozen at a fixed instant and the
operator reads that clock, so nothing depends on today's date and no test sleeps.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg import sql
from wechat_datacube_dev.simulator import SimulatorServer

from tests.fixtures.simulator import TEST_APPID, TEST_SECRET
from tests.fixtures.wechat_conn import register_wechat_conn
from wechat_datacube.dates import BEIJING, chunk_range, iter_days
from wechat_datacube.endpoints import ENDPOINTS, get_endpoint
from wechat_datacube.errors import (
    BadPayloadError,
    ConfigError,
    DataNotReadyError,
    ErrorClass,
    HttpStatusError,
    MalformedResponseError,
    PermanentError,
    QuotaExceededError,
    SchemaDriftError,
    WeChatDatacubeError,
)
from wechat_datacube.operators import WeChatDatacubeToPostgresOperator, table_asset

ACCOUNT = "acme"
SCHEMA = "wechat"


def beijing(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=BEIJING)


#: 13:00 Beijing on 2026-06-20: everything up to 2026-06-19 is published and past its
#: readiness deadline (12:00 on the next day), so an empty answer is final.
TODAY = dt.date(2026, 6, 20)
NOW = beijing(TODAY, 13)
WEEK = (dt.date(2026, 6, 13), dt.date(2026, 6, 19))  # one getusershare window (span 7)


# --- fixtures and helpers ---------------------------------------------------------


@pytest.fixture
def sim(simulator: SimulatorServer, wechat_conn: str) -> SimulatorServer:
    simulator.state.clock.set(NOW)
    return simulator


@pytest.fixture
def dsn(fresh_pg: tuple[str, str]) -> str:
    return fresh_pg[1]


def make_operator(
    sim: SimulatorServer,
    endpoint: str,
    *,
    wechat_conn_id: str = "wechat_sim",
    begin: dt.date | None = None,
    end: dt.date | None = None,
    **kwargs: Any,
) -> WeChatDatacubeToPostgresOperator:
    """An operator on the test account whose clock (and retry sleeps) are the simulator's."""
    hook_kwargs = {"sleep": sim.state.clock.advance, "backoff_base": 0.01, "max_attempts": 2}
    return WeChatDatacubeToPostgresOperator(
        task_id=f"load_{endpoint}",
        endpoint=endpoint,
        account=ACCOUNT,
        wechat_conn_id=wechat_conn_id,
        postgres_conn_id="wechat_pg",
        schema=SCHEMA,
        begin_date=begin,
        end_date=end,
        clock=sim.state.clock.now,
        hook_kwargs=hook_kwargs,
        **kwargs,
    )


def run_range(sim: SimulatorServer, endpoint: str, begin: dt.date, end: dt.date, **kwargs: Any) -> dict[str, Any]:
    return make_operator(sim, endpoint, begin=begin, end=end, **kwargs).execute({})


def run_daily(sim: SimulatorServer, endpoint: str, day: dt.date, **kwargs: Any) -> dict[str, Any]:
    """The daily run of business date ``day``: its data interval starts at ``day`` 10:00 Beijing."""
    return make_operator(sim, endpoint, **kwargs).execute({"data_interval_start": beijing(day, 10)})


def data_calls(sim: SimulatorServer, endpoint: str) -> int:
    return sim.state.counters()["paths"].get(f"/datacube/{endpoint}", 0)


def all_calls(sim: SimulatorServer) -> int:
    return sum(sim.state.counters()["paths"].values())


def fault(sim: SimulatorServer, endpoint: str, **rule: Any) -> None:
    sim.state.set_faults([{"path": f"/datacube/{endpoint}", **rule}])


def fetch(dsn: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


def checksum(dsn: str, endpoint: str) -> tuple[int, str]:
    """(row count, md5) over every stored column except loaded_at and response_id."""
    spec = get_endpoint(endpoint)
    columns = sql.SQL(", ").join(map(sql.Identifier, ("account", *spec.column_names, "extra")))
    query = sql.SQL(
        "SELECT count(*), md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), '')) FROM (SELECT {} FROM {}) r"
    ).format(columns, sql.Identifier(SCHEMA, spec.table))
    with psycopg.connect(dsn) as conn:
        count, digest = conn.execute(query).fetchone()
    return count, digest


def load_log(dsn: str, endpoint: str) -> dict[dt.date, str]:
    rows = fetch(dsn, "SELECT ref_date, status FROM wechat.load_log WHERE account = %s AND endpoint = %s", ACCOUNT,
                 endpoint)
    return dict(rows)


def last_response(dsn: str, endpoint: str) -> tuple[str, Any, str | None]:
    """(status, payload, error) of the newest api_response of ``endpoint``."""
    (row,) = fetch(
        dsn,
        "SELECT status, payload, error FROM wechat.api_response WHERE endpoint = %s ORDER BY id DESC LIMIT 1",
        endpoint,
    )
    return row


def _comparable(value: Any) -> Any:
    """Dates as ISO text, everything else as JSON-equal Python (ints, floats, lists, dicts)."""
    return value.isoformat() if isinstance(value, dt.date) else value


def truth_flat(sim: SimulatorServer, endpoint: str, begin: dt.date, end: dt.date) -> dict[tuple[Any, ...], dict]:
    """The simulator's truth for [begin, end], flattened here independently of storage_rows.

    Nested rows become one row per element carrying the parent's columns, and a ``detail``
    object (where the replacement family keeps its numbers) is opened; every registry
    column is present (None when WeChat left it out). Keyed by the natural key.
    """

    def opened(item: dict[str, Any]) -> dict[str, Any]:
        return {**{k: v for k, v in item.items() if k != "detail"}, **item.get("detail", {})}

    spec = get_endpoint(endpoint)
    out: dict[tuple[Any, ...], dict] = {}
    for b, e in chunk_range(begin, end, spec.max_span):
        for row in sim.state.truth(TEST_APPID, endpoint, b, e):
            children = row[spec.nested] if spec.nested else [{}]
            for child in children:
                merged = {**opened({k: row[k] for k in row if k != spec.nested}), **opened(child)}
                flat = {c: merged.get(c) for c in spec.column_names}
                out[tuple(flat[k] for k in spec.key)] = flat
    return out


def stored_flat(dsn: str, endpoint: str, begin: dt.date, end: dt.date) -> dict[tuple[Any, ...], dict]:
    spec = get_endpoint(endpoint)
    query = sql.SQL("SELECT {} FROM {} WHERE account = %s AND ref_date BETWEEN %s AND %s").format(
        sql.SQL(", ").join(map(sql.Identifier, spec.column_names)), sql.Identifier(SCHEMA, spec.table)
    )
    out: dict[tuple[Any, ...], dict] = {}
    with psycopg.connect(dsn) as conn:
        for values in conn.execute(query, (ACCOUNT, begin, end)).fetchall():
            flat = {c: _comparable(v) for c, v in zip(spec.column_names, values, strict=True)}
            out[tuple(flat[k] for k in spec.key)] = flat
    return out


# --- idempotency and deletions ------------------------------------------------------


def test_running_a_window_three_times_leaves_identical_rows(sim: SimulatorServer, dsn: str) -> None:
    sums = []
    for _ in range(3):
        run_range(sim, "getusershare", *WEEK)
        sums.append(checksum(dsn, "getusershare"))
    assert sums[0][0] == 7 * 3  # 7 days x 3 share scenes
    assert sums[0] == sums[1] == sums[2]
    assert len(fetch(dsn, "SELECT id FROM wechat.api_response WHERE status = 'loaded'")) == 3


def test_running_a_nested_window_three_times_leaves_identical_rows(sim: SimulatorServer, dsn: str) -> None:
    day = dt.date(2026, 6, 12)  # three articles sent, seven stat dates each by now
    sums = []
    for _ in range(3):
        run_range(sim, "getarticletotal", day, day)
        sums.append(checksum(dsn, "getarticletotal"))
    assert sums[0][0] == 3 * 7
    assert sums[0] == sums[1] == sums[2]


def test_rows_that_vanish_upstream_are_kept_unless_the_run_opts_in(sim: SimulatorServer, dsn: str) -> None:
    begin, end = dt.date(2026, 6, 10), dt.date(2026, 6, 12)  # one getuserread window (span 3)
    run_range(sim, "getuserread", begin, end)
    assert checksum(dsn, "getuserread")[0] == 3 * 8  # the "all" row + 7 channels per day
    before = checksum(dsn, "getuserread")

    fault(sim, "getuserread", kind="fewer_rows", keep=2)
    summary = run_range(sim, "getuserread", begin, end)
    assert checksum(dsn, "getuserread") == before
    assert summary["windows"][0]["status"] == "kept"
    assert load_log(dsn, "getuserread") == {day: "kept" for day in iter_days(begin, end)}

    summary = run_range(sim, "getuserread", begin, end, replace_shrinking="true")  # as the run conf renders it
    kept = list(sim.state.truth(TEST_APPID, "getuserread", begin, end))[:2]
    stored = stored_flat(dsn, "getuserread", begin, end)
    assert sorted(stored) == sorted((r["ref_date"], r["user_source"]) for r in kept)
    assert summary["rows"] == 2
    assert load_log(dsn, "getuserread") == {begin: "loaded", begin + dt.timedelta(1): "empty", end: "empty"}


def test_empty_answers_for_an_old_day_leave_every_stored_row_in_place(sim: SimulatorServer, dsn: str) -> None:
    """The reproduction from the tracker: a loaded day must not become 0 rows when the API goes quiet."""
    day = dt.date(2026, 6, 1)  # a send date: every endpoint has rows
    endpoints = ("getarticlesummary", "getarticletotal", "getuserread", "getusershare")
    for endpoint in endpoints:
        run_range(sim, endpoint, day, day)
    before = {e: checksum(dsn, e) for e in endpoints}
    assert all(count > 0 for count, _ in before.values())
    sim.state.set_faults([{"kind": "empty"}])
    for endpoint in endpoints:
        run_range(sim, endpoint, day, day)
    assert {e: checksum(dsn, e) for e in endpoints} == before
    assert {e: load_log(dsn, e)[day] for e in endpoints} == dict.fromkeys(endpoints, "kept")


def test_replace_shrinking_that_is_not_a_flag_is_refused(sim: SimulatorServer, dsn: str) -> None:
    with pytest.raises(ConfigError, match="replace_shrinking must be true or false, not 'sometimes'"):
        run_range(sim, "getusershare", *WEEK, replace_shrinking="sometimes")
    assert data_calls(sim, "getusershare") == 0


def test_a_multi_day_window_refused_as_too_wide_is_fetched_one_day_at_a_time(sim: SimulatorServer, dsn: str) -> None:
    sim.state.config.max_spans["getbizsummary"] = 1  # WeChat's real span turns out narrower than ours
    begin, end = dt.date(2026, 6, 10), dt.date(2026, 6, 14)
    summary = run_range(sim, "getbizsummary", begin, end)
    assert data_calls(sim, "getbizsummary") == 1 + 5
    assert summary["windows"][0]["status"] == "loaded"
    sim.state.config.max_spans.clear()  # to ask the simulator for its truth in one call
    assert stored_flat(dsn, "getbizsummary", begin, end) == truth_flat(sim, "getbizsummary", begin, end)
    assert set(load_log(dsn, "getbizsummary").values()) == {"loaded"}


def test_a_retired_endpoint_fails_at_once_and_names_the_replacement_family(sim: SimulatorServer, dsn: str) -> None:
    fault(sim, "getusershare", kind="errcode", errcode=47009)
    with pytest.raises(PermanentError, match="configure the replacement family") as err:
        run_range(sim, "getusershare", *WEEK)
    assert err.value.errcode == 47009
    assert data_calls(sim, "getusershare") == 1


def test_daily_runs_store_the_full_seven_day_series_of_each_article(sim: SimulatorServer, dsn: str) -> None:
    """Runs at D+k+1 10:00 for business dates D..D+8: the send date D is re-fetched once it matured.

    An empty answer at 10:00 (a day without articles looks exactly like an unpublished
    day) is "not ready" until the 12:00 deadline. Such a day is tried again just after the
    deadline, as the retry policy's last retry is; each not-ready try costs one call, since
    the matured re-fetch waits for the try that finds the day published.
    """
    send_date = dt.date(2026, 6, 1)  # two articles sent
    calls_per_day: dict[dt.date, int] = {}
    not_ready_days = []
    for k in range(9):
        day = send_date + dt.timedelta(days=k)
        sim.state.clock.set(beijing(day + dt.timedelta(days=1), 10))
        before = data_calls(sim, "getarticletotal")
        try:
            run_daily(sim, "getarticletotal", day)
        except DataNotReadyError:
            not_ready_days.append(day)
            assert data_calls(sim, "getarticletotal") - before == 1  # the matured re-fetch waits for the day
            sim.state.clock.set(beijing(day + dt.timedelta(days=1), 12, 1))
            run_daily(sim, "getarticletotal", day)
        calls_per_day[day] = data_calls(sim, "getarticletotal") - before

    stored = stored_flat(dsn, "getarticletotal", send_date, send_date)
    truth = truth_flat(sim, "getarticletotal", send_date, send_date)  # at D+9: the mature series
    assert sorted({k[2] for k in stored}) == [(send_date + dt.timedelta(days=i)).isoformat() for i in range(7)]
    assert len(stored) == 2 * 7
    assert stored == truth
    assert not_ready_days == [dt.date(2026, 6, 3), dt.date(2026, 6, 9)]  # the days without articles
    for day, calls in calls_per_day.items():
        assert calls == (3 if day in not_ready_days else 2), day


def test_broken_payload_for_the_day_still_stores_the_send_date_that_matured(sim: SimulatorServer, dsn: str) -> None:
    day, matured = dt.date(2026, 6, 12), dt.date(2026, 6, 6)
    sim.state.clock.set(beijing(day + dt.timedelta(days=1), 10))
    fault(sim, "getarticletotal", kind="bad_rows", variant="wrong_type", count=1)
    with pytest.raises(BadPayloadError):
        run_daily(sim, "getarticletotal", day)
    assert load_log(dsn, "getarticletotal") == {day: "failed", matured: "loaded"}
    assert stored_flat(dsn, "getarticletotal", matured, matured) == truth_flat(sim, "getarticletotal", matured, matured)
    assert data_calls(sim, "getarticletotal") == 2


# --- readiness ---------------------------------------------------------------------------


def test_empty_answer_before_publication_is_not_ready_with_its_deadline(sim: SimulatorServer, dsn: str) -> None:
    yesterday = TODAY - dt.timedelta(days=1)
    sim.state.clock.set(beijing(TODAY, 7))  # WeChat publishes yesterday at 08:00
    with pytest.raises(DataNotReadyError) as info:
        run_daily(sim, "getusershare", yesterday)
    assert info.value.error_class is ErrorClass.NOT_READY and not isinstance(info.value, PermanentError)
    assert info.value.deadline == beijing(TODAY, 12)
    assert load_log(dsn, "getusershare") == {yesterday: "not_ready"}
    assert checksum(dsn, "getusershare")[0] == 0


def test_empty_fault_before_the_deadline_is_not_ready(sim: SimulatorServer, dsn: str) -> None:
    yesterday = TODAY - dt.timedelta(days=1)
    sim.state.clock.set(beijing(TODAY, 11, 59))
    fault(sim, "getusershare", kind="empty")
    with pytest.raises(DataNotReadyError):
        run_daily(sim, "getusershare", yesterday)
    status, payload, _ = last_response(dsn, "getusershare")
    assert (status, payload) == ("not_ready", {"list": []})
    assert load_log(dsn, "getusershare") == {yesterday: "not_ready"}


def test_empty_answer_after_the_deadline_is_stored_as_empty(sim: SimulatorServer, dsn: str) -> None:
    yesterday = TODAY - dt.timedelta(days=1)
    sim.state.clock.set(beijing(TODAY, 12))
    fault(sim, "getusershare", kind="empty")
    summary = run_daily(sim, "getusershare", yesterday)
    assert summary["windows"][0]["status"] == "empty"
    assert load_log(dsn, "getusershare") == {yesterday: "empty"}


def test_a_later_deadline_hour_keeps_waiting_longer(sim: SimulatorServer, dsn: str) -> None:
    yesterday = TODAY - dt.timedelta(days=1)
    sim.state.clock.set(beijing(TODAY, 13))
    fault(sim, "getusershare", kind="empty")
    with pytest.raises(DataNotReadyError) as info:
        run_daily(sim, "getusershare", yesterday, ready_deadline_hour=15)
    assert info.value.deadline == beijing(TODAY, 15)


@pytest.mark.parametrize("endpoint", ["getbizsummary", "getarticletotaldetail"])
def test_replacement_endpoint_flagged_is_delay_is_not_ready_before_the_deadline(
    sim: SimulatorServer, dsn: str, endpoint: str
) -> None:
    yesterday = TODAY - dt.timedelta(days=1)
    sim.state.clock.set(beijing(TODAY, 7))  # the simulator answers is_delay: true before 08:00
    with pytest.raises(DataNotReadyError) as info:
        run_daily(sim, endpoint, yesterday, refetch_matured=False)
    assert "is_delay" in str(info.value)
    assert last_response(dsn, endpoint)[1]["is_delay"] is True
    assert load_log(dsn, endpoint) == {yesterday: "not_ready"}


def test_replacement_endpoint_still_delayed_after_the_deadline_is_stored(sim: SimulatorServer, dsn: str) -> None:
    yesterday = TODAY - dt.timedelta(days=1)
    fault(sim, "getbizsummary", kind="empty")  # list [] and is_delay: true, at 13:00
    summary = run_daily(sim, "getbizsummary", yesterday)
    assert summary["windows"][0]["status"] == "empty"
    assert load_log(dsn, "getbizsummary") == {yesterday: "empty"}


def test_range_ending_on_an_unpublished_day_is_not_ready_instead_of_marking_it_empty(
    sim: SimulatorServer, dsn: str
) -> None:
    sim.state.clock.set(beijing(TODAY, 7))  # 06-19 not published yet; 06-13..06-18 are
    with pytest.raises(DataNotReadyError):
        run_range(sim, "getusershare", *WEEK)
    assert load_log(dsn, "getusershare")[WEEK[1]] == "not_ready"

    sim.state.clock.set(beijing(TODAY, 9))
    run_range(sim, "getusershare", *WEEK)
    assert set(load_log(dsn, "getusershare").values()) == {"loaded"}
    assert stored_flat(dsn, "getusershare", *WEEK) == truth_flat(sim, "getusershare", *WEEK)


# --- bad payloads ------------------------------------------------------------------------

BAD_PAYLOADS: dict[str, tuple[dict[str, Any], type[WeChatDatacubeError], Callable[[Any], bool]]] = {
    "malformed_json": (
        {"kind": "malformed_json"}, MalformedResponseError, lambda raw: raw.startswith('{"list": [{"ref_date"')
    ),
    "html": ({"kind": "html"}, MalformedResponseError, lambda raw: raw.startswith("<html>")),
    "http_502": (
        {"kind": "http_status", "status": 502}, HttpStatusError, lambda raw: raw.startswith("<html>") and "502" in raw
    ),
    "no_list": (
        {"kind": "bad_rows", "variant": "no_list"}, MalformedResponseError, lambda raw: raw["errmsg"] == "ok"
    ),
    "missing_key": (
        {"kind": "bad_rows", "variant": "missing_key"},
        BadPayloadError,
        lambda raw: "share_scene" not in raw["list"][0] and len(raw["list"]) == 21,
    ),
    "wrong_type": (
        {"kind": "bad_rows", "variant": "wrong_type"},
        BadPayloadError,
        lambda raw: raw["list"][0]["share_user"] == "n/a",
    ),
    # Undocumented top-level keys PostgreSQL jsonb cannot hold; kept as text, rows intact.
    "nan": (
        {"kind": "bad_rows", "variant": "nan"},
        BadPayloadError,
        lambda raw: raw["sim_unknown_value"] == "NaN" and len(raw["list"]) == 21,
    ),
    "nul": (
        {"kind": "bad_rows", "variant": "nul"},
        BadPayloadError,
        lambda raw: raw["sim_unknown_value"] == "note\ufffd" and len(raw["list"]) == 21,
    ),
}


@pytest.mark.parametrize("kind", sorted(BAD_PAYLOADS))
def test_bad_payload_raises_a_clear_error_keeps_the_raw_body_and_leaves_rows_alone(
    sim: SimulatorServer, dsn: str, kind: str
) -> None:
    rule, error_class, raw_is_kept = BAD_PAYLOADS[kind]
    run_range(sim, "getusershare", *WEEK)
    before = checksum(dsn, "getusershare")

    fault(sim, "getusershare", **rule)
    with pytest.raises(error_class) as info:
        run_range(sim, "getusershare", *WEEK)

    message = str(info.value)
    assert f"account={ACCOUNT}" in message and "endpoint=getusershare" in message
    assert "dates=2026-06-13..2026-06-19" in message
    status, payload, error = last_response(dsn, "getusershare")
    assert status == "failed" and error == message
    assert raw_is_kept(payload)
    assert checksum(dsn, "getusershare") == before
    assert set(load_log(dsn, "getusershare").values()) == {"loaded"}  # a failure never downgrades a stored date


def test_a_nan_beside_is_delay_fails_once_as_a_bad_payload_instead_of_waiting(sim: SimulatorServer, dsn: str) -> None:
    yesterday = TODAY - dt.timedelta(days=1)
    sim.state.clock.set(beijing(TODAY, 7))  # before 08:00 the simulator answers is_delay: true
    fault(sim, "getbizsummary", kind="bad_rows", variant="nan")
    with pytest.raises(BadPayloadError) as info:
        run_daily(sim, "getbizsummary", yesterday, refetch_matured=False)
    assert isinstance(info.value, PermanentError)  # the retry policy fails it: no second call for the same body
    message = str(info.value)
    assert "body['sim_unknown_value']" in message and "NaN" in message
    assert f"account={ACCOUNT}" in message and f"dates={yesterday}..{yesterday}" in message
    status, payload, error = last_response(dsn, "getbizsummary")
    assert (status, payload["is_delay"], payload["sim_unknown_value"], error) == ("failed", True, "NaN", message)
    assert load_log(dsn, "getbizsummary") == {yesterday: "failed"}
    assert data_calls(sim, "getbizsummary") == 1


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_a_changed_response_shape_is_schema_drift_and_writes_nothing(sim: SimulatorServer, dsn: str, endpoint: str) -> None:
    """The guard against the defect that once stored NULL metrics and succeeded: it must fire for every endpoint."""
    day = dt.date(2026, 6, 12)  # a send date: every endpoint has rows
    run_range(sim, endpoint, day, day)
    before = checksum(dsn, endpoint)
    assert before[0] > 0
    fault(sim, endpoint, kind="bad_rows", variant="drift")
    with pytest.raises(SchemaDriftError, match="schema drift") as info:
        run_range(sim, endpoint, day, day)
    assert info.value.unknown and set(info.value.missing) <= set(get_endpoint(endpoint).metric_names)
    assert all(name.endswith("_v2") for name in info.value.unknown if name != "title_v2")
    status, payload, _ = last_response(dsn, endpoint)
    assert status == "failed" and json.dumps(payload, ensure_ascii=False).count("_v2") >= len(info.value.unknown)
    assert checksum(dsn, endpoint) == before
    assert data_calls(sim, endpoint) == 2  # permanent: not retried


def test_nested_row_missing_its_stat_date_is_rejected(sim: SimulatorServer, dsn: str) -> None:
    day = dt.date(2026, 6, 12)
    fault(sim, "getarticletotal", kind="bad_rows", variant="missing_key")
    with pytest.raises(BadPayloadError, match="stat_date"):
        run_range(sim, "getarticletotal", day, day)
    assert checksum(dsn, "getarticletotal")[0] == 0


def test_unknown_fields_go_to_extra(sim: SimulatorServer, dsn: str) -> None:
    fault(sim, "getusershare", kind="extra_fields")
    run_range(sim, "getusershare", *WEEK)
    extras = fetch(dsn, "SELECT DISTINCT extra FROM wechat.user_share")
    assert extras == [({"sim_unknown_metric": 7, "sim_unknown_note": "field no document mentions"},)]
    assert stored_flat(dsn, "getusershare", *WEEK) == truth_flat(sim, "getusershare", *WEEK)


def test_unknown_fields_of_nested_rows_keep_both_the_parents_and_the_childs(sim: SimulatorServer, dsn: str) -> None:
    day = dt.date(2026, 6, 12)
    fault(sim, "getarticletotal", kind="extra_fields")
    run_range(sim, "getarticletotal", day, day)
    extras = fetch(dsn, "SELECT DISTINCT extra FROM wechat.article_total")
    assert extras == [(
        {"sim_unknown_metric": 7, "sim_unknown_note": "field no document mentions", "details.sim_unknown_metric": 3},
    )]
    assert stored_flat(dsn, "getarticletotal", day, day) == truth_flat(sim, "getarticletotal", day, day)


def test_stray_rows_outside_the_window_are_dropped(sim: SimulatorServer, dsn: str) -> None:
    fault(sim, "getusershare", kind="stray_rows")
    run_range(sim, "getusershare", *WEEK)
    (outside,) = fetch(dsn, "SELECT count(*) FROM wechat.user_share WHERE ref_date < %s", WEEK[0])[0]
    assert outside == 0
    assert stored_flat(dsn, "getusershare", *WEEK) == truth_flat(sim, "getusershare", *WEEK)
    assert len(last_response(dsn, "getusershare")[1]["list"]) > 21  # the raw body still has them


# --- every endpoint equals the truth -------------------------------------------------------


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_ten_day_range_of_every_endpoint_equals_the_simulator_truth(
    sim: SimulatorServer, dsn: str, endpoint: str
) -> None:
    begin, end = dt.date(2026, 6, 5), dt.date(2026, 6, 14)
    spec = get_endpoint(endpoint)
    summary = run_range(sim, endpoint, begin, end)

    truth = truth_flat(sim, endpoint, begin, end)
    stored = stored_flat(dsn, endpoint, begin, end)
    assert len(truth) > 0
    assert stored == truth
    assert summary["rows"] == len(truth)
    assert summary["calls"] == data_calls(sim, endpoint) == len(chunk_range(begin, end, spec.max_span))
    with_rows = {dt.date.fromisoformat(k[0]) for k in truth}
    assert load_log(dsn, endpoint) == {d: ("loaded" if d in with_rows else "empty") for d in iter_days(begin, end)}


# --- quota, permanent errors -----------------------------------------------------------


def test_quota_error_is_remembered_and_the_next_task_does_not_call(sim: SimulatorServer, dsn: str) -> None:
    yesterday = TODAY - dt.timedelta(days=1)
    fault(sim, "getusershare", kind="errcode", errcode=45009)
    with pytest.raises(QuotaExceededError) as first:
        run_daily(sim, "getusershare", yesterday)
    next_midnight = dt.datetime(2026, 6, 21, tzinfo=BEIJING)
    assert first.value.reset_at == next_midnight
    assert fetch(dsn, "SELECT account, endpoint, blocked_until FROM wechat.quota_block") == [
        (ACCOUNT, "getusershare", next_midnight)
    ]
    counters = sim.state.counters()

    with pytest.raises(QuotaExceededError) as second:
        run_daily(sim, "getusershare", yesterday - dt.timedelta(days=1))
    assert second.value.reset_at == next_midnight
    assert sim.state.counters() == counters  # not a single request, not even for a token


def test_quota_block_ends_at_the_reset(sim: SimulatorServer, dsn: str) -> None:
    yesterday = TODAY - dt.timedelta(days=1)
    fault(sim, "getusershare", kind="errcode", errcode=45009, count=1)
    with pytest.raises(QuotaExceededError):
        run_daily(sim, "getusershare", yesterday)
    sim.state.clock.set(beijing(TODAY + dt.timedelta(days=1), 0, 1))
    assert run_daily(sim, "getusershare", yesterday)["rows"] == 3


def test_quota_block_is_per_endpoint(sim: SimulatorServer, dsn: str) -> None:
    yesterday = TODAY - dt.timedelta(days=1)
    fault(sim, "getusershare", kind="errcode", errcode=45009)
    with pytest.raises(QuotaExceededError):
        run_daily(sim, "getusershare", yesterday)
    assert run_daily(sim, "getuserread", yesterday)["rows"] == 8


def test_permanent_errcode_fails_after_one_call_and_is_logged(sim: SimulatorServer, dsn: str) -> None:
    yesterday = TODAY - dt.timedelta(days=1)
    fault(sim, "getusershare", kind="errcode", errcode=48001)
    with pytest.raises(PermanentError) as info:
        run_daily(sim, "getusershare", yesterday)
    assert info.value.errcode == 48001
    assert data_calls(sim, "getusershare") == 1
    (message,) = fetch(dsn, "SELECT message FROM wechat.load_log WHERE status = 'failed'")[0]
    assert message == str(info.value) and "48001" in message
    status, payload, _ = last_response(dsn, "getusershare")
    assert status == "failed" and payload["errcode"] == 48001 and payload["errmsg"]


def test_caller_outside_the_ip_whitelist_fails_after_one_request(
    simulator_factory: Callable[..., SimulatorServer], fresh_pg: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
    wechat_conn: str,  # for its token-memo reset only
) -> None:
    server = simulator_factory(ip_whitelist=["10.9.9.9"])
    server.state.clock.set(NOW)
    conn_id = register_wechat_conn(monkeypatch, server.base_url, conn_id="wechat_walled")
    with pytest.raises(PermanentError) as info:
        run_daily(server, "getusershare", TODAY - dt.timedelta(days=1), wechat_conn_id=conn_id)
    assert info.value.errcode == 40164
    assert all_calls(server) == 1
    status, payload, error = last_response(fresh_pg[1], "getusershare")
    assert status == "failed" and payload["errcode"] == 40164 and "40164" in error
    assert load_log(fresh_pg[1], "getusershare") == {TODAY - dt.timedelta(days=1): "failed"}


# --- the task's contract -------------------------------------------------------------------


def test_return_value_is_a_small_summary_without_payloads(sim: SimulatorServer, dsn: str) -> None:
    sim.state.clock.set(beijing(dt.date(2026, 6, 13), 10))
    summary = run_daily(sim, "getarticletotal", dt.date(2026, 6, 12))
    assert summary == {
        "account": ACCOUNT,
        "endpoint": "getarticletotal",
        "rows": 3 + 3 * 7,  # the day's 3 articles (1 stat date so far) + the matured 06-06 (3 articles x 7)
        "calls": 2,
        "windows": [
            {"begin": "2026-06-12", "end": "2026-06-12", "status": "loaded", "rows": 3, "reason": "requested"},
            {"begin": "2026-06-06", "end": "2026-06-06", "status": "loaded", "rows": 21, "reason": "matured"},
        ],
    }
    assert len(json.dumps(summary)) < 1000


def test_outlets_are_the_tables_asset() -> None:
    op = WeChatDatacubeToPostgresOperator(task_id="t", endpoint="getuserreadhour", account=ACCOUNT, schema="stats")
    assert op.outlets == [table_asset("stats", "user_read_hour")]
    assert op.outlets[0].uri == "x-wechat-datacube://stats/user_read_hour"


def test_run_without_data_interval_or_dates_names_account_and_endpoint(sim: SimulatorServer, dsn: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_operator(sim, "getusershare").execute({})
    assert f"account={ACCOUNT}" in str(info.value) and "endpoint=getusershare" in str(info.value)
    assert all_calls(sim) == 0


def test_secret_and_tokens_never_reach_stored_rows(sim: SimulatorServer, dsn: str) -> None:
    yesterday = TODAY - dt.timedelta(days=1)
    run_daily(sim, "getusershare", yesterday)
    for rule in ({"kind": "html"}, {"kind": "errcode", "errcode": 40001}, {"kind": "errcode", "errcode": 45009}):
        fault(sim, "getuserread", **rule)
        with pytest.raises(WeChatDatacubeError):
            run_daily(sim, "getuserread", yesterday)
    sim.state.clock.set(beijing(TODAY, 7))
    sim.state.clear_faults()
    with pytest.raises(DataNotReadyError):
        run_daily(sim, "getbizsummary", yesterday)

    dump = "\n".join(
        str(row)
        for table in ("api_response", "load_log", "quota_block")
        for row in fetch(dsn, f"SELECT * FROM wechat.{table}")
    )
    tokens = sim.state.issued_tokens()
    assert tokens and "errcode" in dump
    assert TEST_SECRET not in dump
    assert not [t for t in tokens if t in dump]
