"""WeChatDatacubeToPostgresOperator end to end: real Postgres, the simulator over real HTTP.

The operator is executed directly with a minimal context (DAG-level runs through Airflow
are tested in tests/dags/). What one window's answer becomes (not ready, empty, kept, a
failure kept raw, a quota block) is the window loader's and is tested in
test_window_loader.py; here: which dates a run covers, in which order, what it returns,
and whole loads checked against the simulator's truth. The simulator's clock is frozen at
a fixed instant and the operator reads that clock, so nothing depends on today's date and
no test sleeps.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from wechat_datacube_dev.simulator import SimulatorServer

from tests.fixtures.loads import (
    ACCOUNT,
    SCHEMA,
    TODAY,
    WEEK,
    all_calls,
    at_load_time,
    beijing,
    checksum,
    data_calls,
    fault,
    fetch,
    last_response,
    load_log,
    stored_flat,
    truth_flat,
)
from tests.fixtures.simulator import TEST_APPID, TEST_SECRET
from wechat_datacube.dates import DateRange
from wechat_datacube.endpoints import ENDPOINTS, get_endpoint
from wechat_datacube.errors import (
    BadPayloadError,
    ConfigError,
    DataNotReadyError,
    DateRangeError,
    PermanentError,
    SchemaDriftError,
    WeChatDatacubeError,
)
from wechat_datacube.operators import WeChatDatacubeToPostgresOperator, table_asset

# --- fixtures and helpers ---------------------------------------------------------


@pytest.fixture
def sim(simulator: SimulatorServer, wechat_conn: str) -> SimulatorServer:
    return at_load_time(simulator)


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
    assert load_log(dsn, "getuserread") == {day: "kept" for day in DateRange(begin, end)}

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


# --- payloads the registry refuses, fields it does not know ----------------------------------

@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_a_changed_response_shape_is_schema_drift_and_writes_nothing(sim: SimulatorServer, dsn: str, endpoint: str) -> None:
    """The guard against the defect that once stored NULL metrics and succeeded: it must fire for every endpoint."""
    # A send date: every endpoint has rows; a Sunday at a month's end for the week and month endpoints.
    day = dt.date(2026, 6, 12) if get_endpoint(endpoint).period == "day" else PERIODS_END
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


@pytest.mark.parametrize("endpoint", sorted(e for e in ENDPOINTS if get_endpoint(e).period == "day"))
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
    assert summary["calls"] == data_calls(sim, endpoint) == len(DateRange(begin, end).windows(spec.max_span))
    with_rows = {dt.date.fromisoformat(k[0]) for k in truth}
    assert load_log(dsn, endpoint) == {d: ("loaded" if d in with_rows else "empty") for d in DateRange(begin, end)}


#: Sunday 2026-05-31 ends a week and a month.
PERIODS_END = dt.date(2026, 5, 31)
#: Wednesday 05-27 .. Sunday 06-14 ends the weeks of Mondays 05-25, 06-01 and 06-08 and the month of May.
#: Calls written out: one label per call at span 1; the three Mondays fit one 15-day call.
PERIOD_CALLS = {"getupstreammsgweek": 3, "getupstreammsgdistweek": 1, "getupstreammsgmonth": 1, "getupstreammsgdistmonth": 1}
PERIOD_LABELS = {"week": ("2026-05-25", "2026-06-01", "2026-06-08"), "month": ("2026-05-01",)}


@pytest.mark.parametrize("endpoint", sorted(PERIOD_CALLS))
def test_week_and_month_endpoints_store_the_periods_ending_in_the_range_equal_to_the_truth(
    sim: SimulatorServer, dsn: str, endpoint: str
) -> None:
    """Rows are dated by the period's label, which may lie before the range; nothing else is stored."""
    begin, end = dt.date(2026, 5, 27), dt.date(2026, 6, 14)
    labels = PERIOD_LABELS[get_endpoint(endpoint).period]
    summary = run_range(sim, endpoint, begin, end)

    first = dt.date.fromisoformat(labels[0])
    truth = truth_flat(sim, endpoint, first, end)
    assert {key[0] for key in truth} == set(labels)
    assert stored_flat(dsn, endpoint, first - dt.timedelta(days=40), end) == truth
    assert summary["rows"] == len(truth)
    assert summary["calls"] == data_calls(sim, endpoint) == PERIOD_CALLS[endpoint]
    logged = load_log(dsn, endpoint)
    assert {d.isoformat() for d, status in logged.items() if status == "loaded"} == set(labels)
    assert all(status == "empty" for d, status in logged.items() if d.isoformat() not in labels)


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


@pytest.mark.parametrize(("begin", "end"), [("2026-06-19", "2026-06-13"), ("2026-06-13", "2026-06-31")])
def test_a_bad_range_fails_before_any_call_naming_account_endpoint_and_dates(
    sim: SimulatorServer, dsn: str, begin: str, end: str
) -> None:
    with pytest.raises(DateRangeError) as info:
        make_operator(sim, "getusershare", begin=begin, end=end).execute({})  # type: ignore[arg-type]
    assert f"account={ACCOUNT}, endpoint=getusershare, dates={begin}..{end}" in str(info.value)
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
