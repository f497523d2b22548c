"""WindowLoader: one window fetched through the real hook and stored in real PostgreSQL.

What a response *means* is decided here, and these tests pin it: an empty answer before
the readiness deadline is "not ready" (kept raw, retried), after it "empty"; a day whose
new answer would erase stored rows is "kept"; a failed or unusable response is kept raw
with the typed rows untouched; a 45009 is remembered so no other task calls the endpoint
before the reset; a window WeChat refuses as too wide (61501) is fetched one day at a time.
The simulator's clock is frozen and the loader reads it, so nothing depends on today.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import pytest
from wechat_datacube_dev.simulator import SimulatorServer

from tests.fixtures import loads
from tests.fixtures.loads import ACCOUNT, NOW, SCHEMA, TODAY, WEEK, YESTERDAY, beijing
from tests.fixtures.wechat_conn import register_wechat_conn
from wechat_datacube.alerts.events import AlertKind
from wechat_datacube.endpoints import get_endpoint
from wechat_datacube.errors import (
    BadPayloadError,
    DataNotReadyError,
    ErrorClass,
    HttpStatusError,
    MalformedResponseError,
    PermanentError,
    QuotaExceededError,
    WeChatDatacubeError,
)
from wechat_datacube.hook import WeChatDatacubeHook
from wechat_datacube.load_status import LoadStatus
from wechat_datacube.window_loader import LoadResult, WindowLoader
from wechat_datacube.windows import Window

META = {"dag_id": "test_window_loader", "run_id": "manual__1", "try_number": 1}


@pytest.fixture
def sim(simulator: SimulatorServer, wechat_conn: str) -> SimulatorServer:
    """The session simulator at load time, the test account registered as ``wechat_sim``."""
    return loads.at_load_time(simulator)


@pytest.fixture
def dsn(fresh_pg: tuple[str, str]) -> str:
    """A fresh database, registered as ``wechat_pg``: the hook's token store and the loader's tables."""
    return fresh_pg[1]


def load(
    sim: SimulatorServer,
    endpoint: str,
    begin: dt.date,
    end: dt.date | None = None,
    *,
    wechat_conn_id: str = "wechat_sim",
    ready_deadline_hour: int = 12,
    replace_shrinking: bool = False,
    events: list[Any] | None = None,
) -> LoadResult:
    """Load one window of the test account, on the simulator's clock, through a fresh hook and loader.

    ``events``, when given, receives the alert events the loader collected (even when it raised).
    """
    clock = sim.state.clock
    hook = WeChatDatacubeHook(
        wechat_conn_id, token_store_conn_id="wechat_pg", schema=SCHEMA, account=ACCOUNT, clock=clock.now,
        sleep=clock.advance, backoff_base=0.01, max_attempts=2,
    )
    loader = WindowLoader(
        hook=hook, postgres_conn_id="wechat_pg", schema=SCHEMA, spec=get_endpoint(endpoint), account=ACCOUNT,
        ready_deadline_hour=ready_deadline_hour, clock=clock.now, meta=META, log=logging.getLogger(__name__),
    )
    try:
        return loader.load(Window(begin, end or begin), replace_shrinking=replace_shrinking)
    finally:
        if events is not None:
            events.extend(loader.events)
        loader.close()
        hook.close()


# --- what a window's answer becomes -------------------------------------------------------------


def test_a_window_with_rows_is_loaded_and_labelled_with_its_task(sim: SimulatorServer, dsn: str) -> None:
    result = load(sim, "getusershare", *WEEK)
    assert (result.status, result.rows) == (LoadStatus.LOADED, 7 * 3)
    assert loads.stored_flat(dsn, "getusershare", *WEEK) == loads.truth_flat(sim, "getusershare", *WEEK)
    assert set(loads.load_log(dsn, "getusershare").values()) == {LoadStatus.LOADED}
    ((dag_id, run_id, try_number, response_id),) = loads.fetch(
        dsn, "SELECT dag_id, run_id, try_number, id FROM wechat.api_response WHERE status = 'loaded'"
    )
    assert (dag_id, run_id, try_number, response_id) == (*META.values(), result.response_id)


def test_a_shrinking_answer_keeps_the_stored_rows_unless_told_to_replace_them(
    sim: SimulatorServer, dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    begin, end = dt.date(2026, 6, 10), dt.date(2026, 6, 12)  # one getuserread window (span 3)
    load(sim, "getuserread", begin, end)
    before = loads.checksum(dsn, "getuserread")
    loads.fault(sim, "getuserread", kind="fewer_rows", keep=2)

    with caplog.at_level(logging.WARNING):
        kept = load(sim, "getuserread", begin, end)
    assert kept.status is LoadStatus.KEPT and loads.checksum(dsn, "getuserread") == before
    assert set(loads.load_log(dsn, "getuserread").values()) == {LoadStatus.KEPT}
    assert "kept the stored rows of 2026-06-10" in caplog.text and "set replace_shrinking" in caplog.text

    replaced = load(sim, "getuserread", begin, end, replace_shrinking=True)
    assert (replaced.status, replaced.rows) == (LoadStatus.LOADED, 2)
    assert loads.checksum(dsn, "getuserread")[0] == 2


def test_a_multi_day_window_refused_as_too_wide_is_fetched_one_day_at_a_time(sim: SimulatorServer, dsn: str) -> None:
    sim.state.config.max_spans["getbizsummary"] = 1  # WeChat's real span turns out narrower than ours
    begin, end = dt.date(2026, 6, 10), dt.date(2026, 6, 14)
    result = load(sim, "getbizsummary", begin, end)
    assert loads.data_calls(sim, "getbizsummary") == 1 + 5
    assert result.status is LoadStatus.LOADED
    sim.state.config.max_spans.clear()  # to ask the simulator for its truth in one call
    assert loads.stored_flat(dsn, "getbizsummary", begin, end) == loads.truth_flat(sim, "getbizsummary", begin, end)
    assert set(loads.load_log(dsn, "getbizsummary").values()) == {"loaded"}


def test_a_one_day_window_refused_as_too_wide_fails_without_a_second_try(sim: SimulatorServer, dsn: str) -> None:
    loads.fault(sim, "getusershare", kind="errcode", errcode=61501)
    with pytest.raises(PermanentError) as info:
        load(sim, "getusershare", YESTERDAY)
    assert info.value.errcode == 61501
    assert loads.data_calls(sim, "getusershare") == 1
    assert loads.load_log(dsn, "getusershare") == {YESTERDAY: "failed"}


# --- readiness ---------------------------------------------------------------------------


def test_empty_answer_before_publication_is_not_ready_with_its_deadline(sim: SimulatorServer, dsn: str) -> None:
    sim.state.clock.set(beijing(TODAY, 7))  # WeChat publishes yesterday at 08:00
    with pytest.raises(DataNotReadyError) as info:
        load(sim, "getusershare", YESTERDAY)
    assert info.value.error_class is ErrorClass.NOT_READY and not isinstance(info.value, PermanentError)
    assert info.value.deadline == beijing(TODAY, 12)
    assert loads.load_log(dsn, "getusershare") == {YESTERDAY: "not_ready"}
    assert loads.checksum(dsn, "getusershare")[0] == 0


def test_empty_fault_before_the_deadline_is_not_ready(sim: SimulatorServer, dsn: str) -> None:
    sim.state.clock.set(beijing(TODAY, 11, 59))
    loads.fault(sim, "getusershare", kind="empty")
    with pytest.raises(DataNotReadyError):
        load(sim, "getusershare", YESTERDAY)
    status, payload, _ = loads.last_response(dsn, "getusershare")
    assert (status, payload) == ("not_ready", {"list": []})
    assert loads.load_log(dsn, "getusershare") == {YESTERDAY: "not_ready"}


def test_empty_answer_after_the_deadline_is_stored_as_empty(sim: SimulatorServer, dsn: str) -> None:
    sim.state.clock.set(beijing(TODAY, 12))
    loads.fault(sim, "getusershare", kind="empty")
    result = load(sim, "getusershare", YESTERDAY)
    assert result.status == "empty"
    assert loads.load_log(dsn, "getusershare") == {YESTERDAY: "empty"}


def test_a_later_deadline_hour_keeps_waiting_longer(sim: SimulatorServer, dsn: str) -> None:
    sim.state.clock.set(beijing(TODAY, 13))
    loads.fault(sim, "getusershare", kind="empty")
    with pytest.raises(DataNotReadyError) as info:
        load(sim, "getusershare", YESTERDAY, ready_deadline_hour=15)
    assert info.value.deadline == beijing(TODAY, 15)


@pytest.mark.parametrize("endpoint", ["getbizsummary", "getarticletotaldetail"])
def test_replacement_endpoint_flagged_is_delay_is_not_ready_before_the_deadline(
    sim: SimulatorServer, dsn: str, endpoint: str
) -> None:
    sim.state.clock.set(beijing(TODAY, 7))  # the simulator answers is_delay: true before 08:00
    with pytest.raises(DataNotReadyError) as info:
        load(sim, endpoint, YESTERDAY)
    assert "is_delay" in str(info.value)
    assert loads.last_response(dsn, endpoint)[1]["is_delay"] is True
    assert loads.load_log(dsn, endpoint) == {YESTERDAY: "not_ready"}


def test_replacement_endpoint_still_delayed_after_the_deadline_is_stored(sim: SimulatorServer, dsn: str) -> None:
    loads.fault(sim, "getbizsummary", kind="empty")  # list [] and is_delay: true, at 13:00
    result = load(sim, "getbizsummary", YESTERDAY)
    assert result.status == "empty"
    assert loads.load_log(dsn, "getbizsummary") == {YESTERDAY: "empty"}


def test_range_ending_on_an_unpublished_day_is_not_ready_instead_of_marking_it_empty(
    sim: SimulatorServer, dsn: str
) -> None:
    sim.state.clock.set(beijing(TODAY, 7))  # 06-19 not published yet; 06-13..06-18 are
    with pytest.raises(DataNotReadyError, match="no rows yet for 2026-06-19"):
        load(sim, "getusershare", *WEEK)
    assert loads.load_log(dsn, "getusershare")[WEEK[1]] == "not_ready"

    sim.state.clock.set(beijing(TODAY, 9))
    load(sim, "getusershare", *WEEK)
    assert set(loads.load_log(dsn, "getusershare").values()) == {"loaded"}
    assert loads.stored_flat(dsn, "getusershare", *WEEK) == loads.truth_flat(sim, "getusershare", *WEEK)


# --- failed and unusable responses ---------------------------------------------------------------

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
    load(sim, "getusershare", *WEEK)
    before = loads.checksum(dsn, "getusershare")

    loads.fault(sim, "getusershare", **rule)
    with pytest.raises(error_class) as info:
        load(sim, "getusershare", *WEEK)

    message = str(info.value)
    assert f"account={ACCOUNT}" in message and "endpoint=getusershare" in message
    assert "dates=2026-06-13..2026-06-19" in message
    status, payload, error = loads.last_response(dsn, "getusershare")
    assert status == "failed" and error == message
    assert raw_is_kept(payload)
    assert loads.checksum(dsn, "getusershare") == before
    assert set(loads.load_log(dsn, "getusershare").values()) == {"loaded"}  # a failure never downgrades a stored date


def test_a_nan_beside_is_delay_fails_once_as_a_bad_payload_instead_of_waiting(sim: SimulatorServer, dsn: str) -> None:
    sim.state.clock.set(beijing(TODAY, 7))  # before 08:00 the simulator answers is_delay: true
    loads.fault(sim, "getbizsummary", kind="bad_rows", variant="nan")
    with pytest.raises(BadPayloadError) as info:
        load(sim, "getbizsummary", YESTERDAY)
    assert isinstance(info.value, PermanentError)  # the retry policy fails it: no second call for the same body
    message = str(info.value)
    assert "body['sim_unknown_value']" in message and "NaN" in message
    assert f"account={ACCOUNT}" in message and f"dates={YESTERDAY}..{YESTERDAY}" in message
    status, payload, error = loads.last_response(dsn, "getbizsummary")
    assert (status, payload["is_delay"], payload["sim_unknown_value"], error) == ("failed", True, "NaN", message)
    assert loads.load_log(dsn, "getbizsummary") == {YESTERDAY: "failed"}
    assert loads.data_calls(sim, "getbizsummary") == 1


def test_permanent_errcode_fails_after_one_call_and_is_logged(sim: SimulatorServer, dsn: str) -> None:
    loads.fault(sim, "getusershare", kind="errcode", errcode=48001)
    with pytest.raises(PermanentError) as info:
        load(sim, "getusershare", YESTERDAY)
    assert info.value.errcode == 48001
    assert loads.data_calls(sim, "getusershare") == 1
    (message,) = loads.fetch(dsn, "SELECT message FROM wechat.load_log WHERE status = 'failed'")[0]
    assert message == str(info.value) and "48001" in message
    status, payload, _ = loads.last_response(dsn, "getusershare")
    assert status == "failed" and payload["errcode"] == 48001 and payload["errmsg"]


def test_caller_outside_the_ip_whitelist_fails_after_one_request(
    simulator_factory: Callable[..., SimulatorServer], fresh_pg: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
    wechat_conn: str,  # for its token-memo reset only
) -> None:
    server = simulator_factory(ip_whitelist=["10.9.9.9"])
    server.state.clock.set(NOW)
    conn_id = register_wechat_conn(monkeypatch, server.base_url, conn_id="wechat_walled")
    with pytest.raises(PermanentError) as info:
        load(server, "getusershare", YESTERDAY, wechat_conn_id=conn_id)
    assert info.value.errcode == 40164
    assert loads.all_calls(server) == 1
    status, payload, error = loads.last_response(fresh_pg[1], "getusershare")
    assert status == "failed" and payload["errcode"] == 40164 and "40164" in error
    assert loads.load_log(fresh_pg[1], "getusershare") == {YESTERDAY: "failed"}


# --- the daily quota ---------------------------------------------------------------------------


def test_quota_error_is_remembered_and_the_next_load_does_not_call(sim: SimulatorServer, dsn: str) -> None:
    loads.fault(sim, "getusershare", kind="errcode", errcode=45009)
    with pytest.raises(QuotaExceededError) as first:
        load(sim, "getusershare", YESTERDAY)
    next_midnight = beijing(TODAY + dt.timedelta(days=1), 0)
    assert first.value.reset_at == next_midnight
    assert loads.fetch(dsn, "SELECT account, endpoint, blocked_until FROM wechat.quota_block") == [
        (ACCOUNT, "getusershare", next_midnight)
    ]
    counters = sim.state.counters()

    with pytest.raises(QuotaExceededError) as second:
        load(sim, "getusershare", YESTERDAY - dt.timedelta(days=1))
    assert second.value.reset_at == next_midnight
    assert sim.state.counters() == counters  # not a single request, not even for a token


def test_quota_block_ends_at_the_reset(sim: SimulatorServer, dsn: str) -> None:
    loads.fault(sim, "getusershare", kind="errcode", errcode=45009, count=1)
    with pytest.raises(QuotaExceededError):
        load(sim, "getusershare", YESTERDAY)
    sim.state.clock.set(beijing(TODAY + dt.timedelta(days=1), 0, 1))
    assert load(sim, "getusershare", YESTERDAY).rows == 3


def test_quota_block_is_per_endpoint(sim: SimulatorServer, dsn: str) -> None:
    loads.fault(sim, "getusershare", kind="errcode", errcode=45009)
    with pytest.raises(QuotaExceededError):
        load(sim, "getusershare", YESTERDAY)
    assert load(sim, "getuserread", YESTERDAY).rows == 8


# --- what the loader reports (alert events) ---------------------------------------------------


def test_a_kept_day_is_reported_with_its_reason(sim: SimulatorServer, dsn: str) -> None:
    begin, end = dt.date(2026, 6, 10), dt.date(2026, 6, 12)
    load(sim, "getuserread", begin, end)
    loads.fault(sim, "getuserread", kind="fewer_rows", keep=2)
    events: list[Any] = []
    load(sim, "getuserread", begin, end, events=events)
    (event,) = events
    assert (event.kind, event.account, event.endpoint) == (AlertKind.DAY_KEPT, ACCOUNT, "getuserread")
    assert (event.begin_date, event.end_date) == ("2026-06-10", "2026-06-12")
    assert any(line.startswith("**2026-06-10**") for line in event.details)
    assert "replace_shrinking" in " ".join(event.details)


def test_a_load_that_keeps_nothing_reports_nothing(sim: SimulatorServer, dsn: str) -> None:
    events: list[Any] = []
    load(sim, "getuserread", dt.date(2026, 6, 10), dt.date(2026, 6, 12), events=events)
    load(sim, "getuserread", dt.date(2026, 6, 10), dt.date(2026, 6, 12), events=events)  # the same rows again
    assert events == []


def test_an_account_summary_without_rows_at_the_deadline_is_reported_as_not_published(
    sim: SimulatorServer, dsn: str
) -> None:
    sim.state.clock.set(beijing(TODAY, 12, 1))
    loads.fault(sim, "getuserread", kind="empty")
    events: list[Any] = []
    assert load(sim, "getuserread", YESTERDAY, events=events).status == "empty"
    (event,) = events
    assert (event.kind, event.endpoint, event.begin_date) == (AlertKind.NOT_PUBLISHED, "getuserread", "2026-06-19")
    assert "2026-06-20 12:00 (Beijing)" in " ".join(event.details)


def test_a_per_article_endpoint_without_rows_is_a_quiet_day_not_an_alert(sim: SimulatorServer, dsn: str) -> None:
    loads.fault(sim, "getusershare", kind="empty")
    events: list[Any] = []
    assert load(sim, "getusershare", YESTERDAY, events=events).status == "empty"
    assert events == []


def test_a_day_still_flagged_is_delay_after_the_deadline_is_reported(sim: SimulatorServer, dsn: str) -> None:
    loads.fault(sim, "getbizsummary", kind="empty")  # list [] and is_delay: true, at 13:00
    events: list[Any] = []
    load(sim, "getbizsummary", YESTERDAY, events=events)
    (event,) = events
    assert event.kind is AlertKind.NOT_PUBLISHED and "is_delay" in " ".join(event.details)


def test_an_old_day_without_rows_is_no_news(sim: SimulatorServer, dsn: str) -> None:
    old = YESTERDAY - dt.timedelta(days=3)  # its deadline passed days ago: a backfill, not today's data
    loads.fault(sim, "getuserread", kind="empty")
    events: list[Any] = []
    assert load(sim, "getuserread", old, events=events).status == "empty"
    assert events == []


# --- week and month endpoints, and getusersummary's quirk -----------------------------------------

#: The week 2026-06-08 (Monday) .. 06-14 (Sunday): published at 08:00 on Monday 06-15.
WEEK_LABEL = dt.date(2026, 6, 8)
WEEK_DONE = dt.date(2026, 6, 15)


def test_a_week_is_not_ready_until_its_sunday_is_published(sim: SimulatorServer, dsn: str) -> None:
    """The Monday label's readiness is that of the week's last day, not of the Monday itself."""
    sim.state.clock.set(beijing(WEEK_DONE, 7))
    with pytest.raises(DataNotReadyError, match="the list is empty") as info:
        load(sim, "getupstreammsgweek", WEEK_LABEL)
    assert info.value.deadline == beijing(WEEK_DONE, 12)
    assert loads.load_log(dsn, "getupstreammsgweek") == {WEEK_LABEL: "not_ready"}

    sim.state.clock.set(beijing(WEEK_DONE, 9))
    assert load(sim, "getupstreammsgweek", WEEK_LABEL).status == "loaded"
    stored = loads.stored_flat(dsn, "getupstreammsgweek", WEEK_LABEL, WEEK_LABEL)
    assert stored and stored == loads.truth_flat(sim, "getupstreammsgweek", WEEK_LABEL, WEEK_LABEL)


def test_a_window_of_several_weeks_judges_only_its_mondays(sim: SimulatorServer, dsn: str) -> None:
    """Days between the labels never carry rows: their emptiness is neither "not ready" nor an alert."""
    sim.state.clock.set(beijing(WEEK_DONE, 9))
    first = WEEK_LABEL - dt.timedelta(days=14)
    events: list[Any] = []
    result = load(sim, "getupstreammsgdistweek", first, WEEK_LABEL, events=events)
    assert result.status == "loaded" and events == []
    stored = loads.stored_flat(dsn, "getupstreammsgdistweek", first, WEEK_LABEL)
    assert {key[0] for key in stored} == {d.isoformat() for d in (first, first + dt.timedelta(days=7), WEEK_LABEL)}


def test_getusersummary_yesterday_alone_is_not_ready_and_two_days_hold_both(sim: SimulatorServer, dsn: str) -> None:
    """The simulator plays the reported quirk (yesterday alone answers []); the planner's two-day window avoids it."""
    sim.state.clock.set(beijing(TODAY, 9))
    with pytest.raises(DataNotReadyError, match="the list is empty"):
        load(sim, "getusersummary", YESTERDAY)
    result = load(sim, "getusersummary", YESTERDAY - dt.timedelta(days=1), YESTERDAY)
    assert result.status == "loaded"
    assert loads.load_log(dsn, "getusersummary") == {YESTERDAY - dt.timedelta(days=1): "loaded", YESTERDAY: "loaded"}
    days = {key[0] for key in loads.stored_flat(dsn, "getusersummary", YESTERDAY - dt.timedelta(days=1), YESTERDAY)}
    assert days == {(YESTERDAY - dt.timedelta(days=1)).isoformat(), YESTERDAY.isoformat()}


def test_getusersummary_yesterday_alone_after_the_deadline_keeps_stored_rows(sim: SimulatorServer, dsn: str) -> None:
    """Never-shrink holds for the quirk: an empty one-day answer does not erase a day already stored."""
    sim.state.clock.set(beijing(TODAY, 9))
    load(sim, "getusersummary", YESTERDAY - dt.timedelta(days=1), YESTERDAY)
    before = loads.stored_flat(dsn, "getusersummary", YESTERDAY, YESTERDAY)
    sim.state.clock.set(beijing(TODAY, 13))
    events: list[Any] = []
    assert load(sim, "getusersummary", YESTERDAY, events=events).status == "kept"
    assert before and loads.stored_flat(dsn, "getusersummary", YESTERDAY, YESTERDAY) == before
    assert AlertKind.DAY_KEPT in {e.kind for e in events}
