"""WeChatDatacubeHook against the simulator over real HTTP: calls, windows, errors, secrets."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from wechat_datacube_dev.connections import wechat_connection, wechat_connection_env
from wechat_datacube_dev.simulator import SimulatorServer

from tests.fixtures.simulator import TEST_APPID, TEST_SECRET
from tests.fixtures.wechat_conn import HOOK_CONN_ID, SIM_NOW, calls, sim_hook, use_hook_conn
from wechat_datacube.dates import BEIJING, DateRange
from wechat_datacube.endpoints import get_endpoint
from wechat_datacube.errors import (
    ERRCODES,
    ConfigError,
    DateRangeError,
    ErrorClass,
    MalformedResponseError,
    PermanentError,
    QuotaExceededError,
    TokenError,
    TransientError,
)
from wechat_datacube.hook import FetchedWindow, WeChatDatacubeHook

DATA = "/datacube/getusershare"


@pytest.fixture
def sim(hook_sim: SimulatorServer) -> SimulatorServer:
    """The simulator at SIM_NOW with the test account as HOOK_CONN_ID (classic tokens)."""
    return hook_sim


def make_hook(sim: Any, **kwargs: Any) -> WeChatDatacubeHook:
    """Three attempts unless said otherwise, so retry tests count to a known number."""
    kwargs.setdefault("max_attempts", 3)
    return sim_hook(sim, **kwargs)


def fault(sim: Any, **rule: Any) -> None:
    rule.setdefault("path", DATA)
    sim.state.set_faults([rule])


def truth(sim: Any, endpoint: str, begin: str, end: str) -> list[dict[str, Any]]:
    """What WeChat holds for the range, asked window by window (the simulator enforces spans too)."""
    span = get_endpoint(endpoint).max_span
    return [
        row
        for w in DateRange.parse(begin, end).windows(span)
        for row in sim.state.truth(TEST_APPID, endpoint, w.begin.isoformat(), w.end.isoformat())
    ]


def codes_of(cls: ErrorClass) -> list[int]:
    return sorted(code for code, (klass, _) in ERRCODES.items() if klass is cls)


# --- errcode classes -------------------------------------------------------------


@pytest.mark.parametrize("errcode", codes_of(ErrorClass.PERMANENT))
def test_permanent_errcode_fails_after_exactly_one_call(sim: Any, errcode: int) -> None:
    fault(sim, kind="errcode", errcode=errcode, rate=1.0)
    hook = make_hook(sim)
    with pytest.raises(PermanentError) as info:
        hook.call("getusershare", "2024-06-01", "2024-06-07")
    assert info.value.errcode == errcode
    assert info.value.endpoint == "getusershare" and info.value.account == TEST_APPID
    assert calls(sim, DATA) == 1


@pytest.mark.parametrize("errcode", codes_of(ErrorClass.TRANSIENT))
def test_transient_errcode_is_retried_up_to_max_attempts_then_raises(sim: Any, errcode: int) -> None:
    fault(sim, kind="errcode", errcode=errcode, rate=1.0)
    hook = make_hook(sim, max_attempts=3, max_retry_seconds=300)  # 45011 waits ~a minute each
    with pytest.raises(TransientError) as info:
        hook.call("getusershare", "2024-06-01", "2024-06-07")
    assert info.value.errcode == errcode
    assert calls(sim, DATA) == 3 == hook.data_calls


def test_transient_errcode_then_success_returns_the_body(sim: Any) -> None:
    fault(sim, kind="errcode", errcode=-1, count=2)
    hook = make_hook(sim, max_attempts=3)
    body = hook.call("getusershare", "2024-06-01", "2024-06-07")
    assert body["list"] == sim.state.truth(TEST_APPID, "getusershare", "2024-06-01", "2024-06-07")
    assert calls(sim, DATA) == 3


def test_frequency_limit_waits_for_the_next_minute(sim: Any) -> None:
    sim.state.clock.set(SIM_NOW.replace(second=20))
    fault(sim, kind="errcode", errcode=45011, count=1)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        sim.state.clock.advance(seconds)

    make_hook(sim, sleep=sleep).call("getusershare", "2024-06-01", "2024-06-07")
    assert len(waits) == 1 and 40 <= waits[0] <= 41


def test_retry_waits_are_capped_by_max_retry_seconds(sim: Any) -> None:
    fault(sim, kind="errcode", errcode=45011, rate=1.0)
    hook = make_hook(sim, max_attempts=10, max_retry_seconds=30)
    with pytest.raises(TransientError, match="gave up after 1 attempt"):
        hook.call("getusershare", "2024-06-01", "2024-06-07")
    assert calls(sim, DATA) == 1


def test_daily_quota_stops_at_once_with_the_reset_time(sim: Any) -> None:
    fault(sim, kind="errcode", errcode=45009, rate=1.0)
    hook = make_hook(sim)
    with pytest.raises(QuotaExceededError) as info:
        hook.fetch("getusershare", "2024-05-01", "2024-05-30")
    assert info.value.reset_at == dt.datetime(2024, 6, 16, 0, 0, tzinfo=BEIJING)
    assert calls(sim, DATA) == 1


@pytest.mark.parametrize("errcode", codes_of(ErrorClass.TOKEN))
def test_token_error_refreshes_once_then_succeeds(sim: Any, errcode: int) -> None:
    fault(sim, kind="errcode", errcode=errcode, count=1)
    hook = make_hook(sim)
    hook.call("getusershare", "2024-06-01", "2024-06-07")
    assert hook.token_calls == 2 == calls(sim, "/cgi-bin/token")
    assert calls(sim, DATA) == 2


@pytest.mark.parametrize("errcode", codes_of(ErrorClass.TOKEN))
def test_token_error_refreshes_once_then_fails(sim: Any, errcode: int) -> None:
    fault(sim, kind="errcode", errcode=errcode, rate=1.0)
    hook = make_hook(sim)
    with pytest.raises(TokenError, match="again after one refresh") as info:
        hook.call("getusershare", "2024-06-01", "2024-06-07")
    assert info.value.errcode == errcode
    assert calls(sim, DATA) == 2
    assert calls(sim, "/cgi-bin/token") == 2


# --- HTTP-level failures ----------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_http_5xx_is_retried_then_succeeds(sim: Any, status: int) -> None:
    fault(sim, kind="http_status", status=status, count=2)
    hook = make_hook(sim)
    assert hook.call("getusershare", "2024-06-01", "2024-06-07")["list"]
    assert calls(sim, DATA) == 3


@pytest.mark.parametrize("kind", ["malformed_json", "html"])
def test_broken_body_is_a_transient_malformed_response(sim: Any, kind: str) -> None:
    fault(sim, kind=kind, rate=1.0)
    hook = make_hook(sim, max_attempts=2)
    with pytest.raises(MalformedResponseError):
        hook.call("getusershare", "2024-06-01", "2024-06-07")
    assert calls(sim, DATA) == 2


def test_timeout_is_transient(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_hook_conn(monkeypatch, sim.base_url, read_timeout=0.2)
    fault(sim, kind="slow", delay=1.0, count=1)
    hook = make_hook(sim, max_attempts=1)
    with pytest.raises(TransientError, match="timeout"):
        hook.call("getusershare", "2024-06-01", "2024-06-07")


def test_dropped_connection_is_retried(sim: Any) -> None:
    fault(sim, kind="drop", count=1)
    hook = make_hook(sim)
    assert hook.call("getusershare", "2024-06-01", "2024-06-07")["list"]
    assert hook.data_calls == 2


# --- ranges and windows -----------------------------------------------------------


def test_thirty_days_of_getusershare_take_five_calls(sim: Any) -> None:
    hook = make_hook(sim)
    rows = hook.fetch("getusershare", "2024-05-01", "2024-05-30")
    assert calls(sim, DATA) == 5 == hook.data_calls
    assert rows == truth(sim, "getusershare", "2024-05-01", "2024-05-30")
    assert {r["ref_date"] for r in rows} == {f"2024-05-{d:02d}" for d in range(1, 31)}


def test_thirty_days_of_getuserread_take_ten_calls(sim: Any) -> None:
    hook = make_hook(sim)
    hook.fetch("getuserread", "2024-05-01", "2024-05-30")
    assert calls(sim, "/datacube/getuserread") == 10


def test_stray_rows_outside_the_window_are_dropped(sim: Any) -> None:
    fault(sim, kind="stray_rows", rate=1.0)
    fetched = make_hook(sim).fetch_windows("getusershare", "2024-05-01", "2024-05-14")
    assert [f.window for f in fetched] == [
        DateRange(dt.date(2024, 5, 1), dt.date(2024, 5, 7)),
        DateRange(dt.date(2024, 5, 8), dt.date(2024, 5, 14)),
    ]
    assert all(isinstance(f, FetchedWindow) and f.dropped > 0 for f in fetched)
    assert all(len(f.body["list"]) == len(f.rows) + f.dropped for f in fetched)
    kept = [r for f in fetched for r in f.rows]
    assert kept == truth(sim, "getusershare", "2024-05-01", "2024-05-14")


def test_range_reaching_today_in_beijing_is_refused_before_any_call(sim: Any) -> None:
    hook = make_hook(sim)
    with pytest.raises(DateRangeError):
        hook.fetch("getusershare", "2024-06-10", "2024-06-15")
    assert sim.state.counters()["paths"] == {}


def test_range_before_history_start_is_refused_before_any_call(sim: Any) -> None:
    hook = make_hook(sim)
    with pytest.raises(DateRangeError):
        hook.fetch("getusershare", "2014-11-30", "2014-12-03")
    assert sim.state.counters()["paths"] == {}


def test_call_refuses_a_span_wider_than_the_endpoint_allows(sim: Any) -> None:
    with pytest.raises(DateRangeError, match="at most 3"):
        make_hook(sim).call("getuserread", "2024-06-01", "2024-06-04")
    assert sim.state.counters()["paths"] == {}


@pytest.mark.parametrize("method", ["call", "fetch", "fetch_windows"])
@pytest.mark.parametrize(("begin", "end"), [("2024-06-07", "2024-06-01"), ("2024-06-01", "2024-06-31")])
def test_a_bad_range_is_refused_before_any_call_naming_account_endpoint_and_dates(
    sim: Any, method: str, begin: str, end: str
) -> None:
    with pytest.raises(DateRangeError) as info:
        getattr(make_hook(sim, account="shop"), method)("getusershare", begin, end)
    assert f"account=shop, endpoint=getusershare, dates={begin}..{end}" in str(info.value)
    assert sim.state.counters()["paths"] == {}


def test_replacement_endpoint_reports_is_delay(sim: Any) -> None:
    sim.state.clock.set(dt.datetime(2026, 1, 10, 2, 0, tzinfo=dt.UTC))
    fault(sim, path="/datacube/getarticleread", kind="empty", rate=1.0)
    (fetched,) = make_hook(sim).fetch_windows("getarticleread", "2026-01-09", "2026-01-09")
    assert fetched.is_delay is True and fetched.rows == []


# --- configuration ----------------------------------------------------------------


def test_missing_credentials_are_listed_in_one_error(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(*wechat_connection_env(HOOK_CONN_ID, sim.base_url, token_mode="authorizer"))
    with pytest.raises(ConfigError) as info:
        make_hook(sim).get_access_token()
    for name in ("component_appid", "authorizer_refresh_token", "component_token_variable"):
        assert name in str(info.value)


def test_unknown_token_mode_is_a_config_error(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_hook_conn(monkeypatch, sim.base_url, token_mode="magic")
    with pytest.raises(ConfigError, match="token_mode"):
        make_hook(sim).get_access_token()


def test_invalid_secret_is_permanent_and_not_retried(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_hook_conn(monkeypatch, sim.base_url, password="wrong-secret")
    with pytest.raises(PermanentError) as info:
        make_hook(sim).get_access_token()
    assert info.value.errcode == 40125
    assert calls(sim, "/cgi-bin/token") == 1


# --- secrets never leak -----------------------------------------------------------


def test_secret_and_tokens_never_reach_logs_or_exceptions(
    sim: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    hook = make_hook(sim, max_attempts=2)
    hook.fetch("getusershare", "2024-06-01", "2024-06-07")
    for rule in (
        {"kind": "errcode", "errcode": 40001, "rate": 1.0},
        {"kind": "errcode", "errcode": -1, "rate": 1.0},
        {"kind": "drop", "rate": 1.0},
        {"kind": "http_status", "status": 502, "rate": 1.0},
        {"kind": "html", "rate": 1.0},
    ):
        fault(sim, **rule)
        with pytest.raises(Exception) as info:
            hook.call("getusershare", "2024-06-01", "2024-06-07")
        texts.append(str(info.value) + repr(info.value))
    sim.state.clear_faults()
    use_hook_conn(monkeypatch, sim.base_url, read_timeout=0.2)
    fault(sim, kind="slow", delay=1.0, rate=1.0)
    with pytest.raises(TransientError) as info:
        make_hook(sim, max_attempts=1).call("getusershare", "2024-06-01", "2024-06-07")
    texts.append(str(info.value) + repr(info.value))

    out, err = capfd.readouterr()
    captured = "\n".join([caplog.text, out, err, *texts])
    secrets = [TEST_SECRET, *sim.state.issued_tokens()]
    assert len(secrets) >= 3
    assert "row(s) in" in caplog.text + out + err  # the per-call line was logged (without the token)
    leaked = [s for s in secrets if s in captured]
    assert leaked == []


# --- the connection's Test button ---------------------------------------------------


@pytest.mark.parametrize("mode", ["classic", "stable"])
def test_test_button_refuses_a_wrong_secret_although_a_token_is_cached(
    sim: Any, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    use_hook_conn(monkeypatch, sim.base_url, token_mode=mode)
    make_hook(sim).get_access_token()  # the right secret's token is in the memo and the local store
    use_hook_conn(monkeypatch, sim.base_url, token_mode=mode, password="wrong-secret")

    ok, message = make_hook(sim).test_connection()

    assert ok is False
    assert "errcode 40125" in message and "invalid AppSecret: check the connection's password" in message
    assert "wrong-secret" not in message and TEST_SECRET not in message


@pytest.mark.parametrize("mode", ["classic", "stable"])
def test_test_button_accepts_the_right_secret_without_touching_classic_tokens(
    sim: Any, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    use_hook_conn(monkeypatch, sim.base_url, token_mode=mode)
    hook = make_hook(sim)
    hook.get_access_token()  # a cached token must not answer for WeChat
    sim.state.reset_counters()

    ok, message = make_hook(sim).test_connection()

    assert ok is True, message
    assert f"WeChat accepted AppID {TEST_APPID}" in message and "force_refresh=false" in message
    assert calls(sim, "/cgi-bin/stable_token") == 1 and calls(sim, "/cgi-bin/token") == 0
    if mode == "classic":
        assert "five minutes" in message
        hook.fetch("getusershare", "2024-06-01", "2024-06-07")  # the workers' classic token still works
        sim.state.clock.advance(400)
        hook.fetch("getusershare", "2024-06-01", "2024-06-07")
        assert calls(sim, "/cgi-bin/token") == 0


def test_test_button_through_airflow_names_the_errcode(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the UI calls: Airflow's Connection.test_connection on a transient connection."""
    from airflow.models.connection import Connection

    def button(password: str) -> tuple[bool, str]:
        fields = wechat_connection(sim.base_url, TEST_APPID, password, token_mode="stable")
        conn = Connection(conn_id="wechat_ui_test", **fields)
        monkeypatch.setenv("AIRFLOW_CONN_WECHAT_UI_TEST", conn.get_uri())
        return conn.test_connection()

    assert button(TEST_SECRET)[0] is True
    ok, message = button("wrong-secret")
    assert ok is False and "errcode 40125" in message


def test_test_button_never_rotates_an_authorizer_refresh_token(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fixtures.simulator import TEST_AUTHORIZER_APPID, TEST_AUTHORIZER_REFRESH_TOKEN, TEST_COMPONENT_APPID

    extras = {
        "token_mode": "authorizer", "component_appid": TEST_COMPONENT_APPID, "authorizer_appid": TEST_AUTHORIZER_APPID,
        "authorizer_refresh_token": TEST_AUTHORIZER_REFRESH_TOKEN, "component_token_variable": "wechat_component_token",
    }  # fmt: skip
    use_hook_conn(monkeypatch, sim.base_url, login=TEST_AUTHORIZER_APPID, **extras)
    monkeypatch.delenv("AIRFLOW_VAR_WECHAT_COMPONENT_TOKEN", raising=False)
    ok, message = make_hook(sim).test_connection()
    assert ok is False and "wechat_component_token" in message

    monkeypatch.setenv("AIRFLOW_VAR_WECHAT_COMPONENT_TOKEN", "component-token-from-the-platform")
    ok, message = make_hook(sim).test_connection()
    assert ok is True and "rotates it" in message
    assert sim.state.counters()["paths"] == {}  # WeChat was not asked: the refresh token is intact


def test_test_button_in_external_mode_checks_the_variable(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_hook_conn(monkeypatch, sim.base_url, token_mode="external", token_variable="wechat_central_token")
    monkeypatch.delenv("AIRFLOW_VAR_WECHAT_CENTRAL_TOKEN", raising=False)
    assert make_hook(sim).test_connection()[0] is False
    monkeypatch.setenv("AIRFLOW_VAR_WECHAT_CENTRAL_TOKEN", "token-from-the-central-service")
    ok, message = make_hook(sim).test_connection()
    assert ok is True and "wechat_central_token" in message and "token-from-the-central-service" not in message
