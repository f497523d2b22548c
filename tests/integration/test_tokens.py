"""Token modes and the shared Postgres token cache, against the simulator and real Postgres."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

import psycopg
import pytest

from tests.fixtures.simulator import (
    TEST_APPID,
    TEST_AUTHORIZER_APPID,
    TEST_AUTHORIZER_REFRESH_TOKEN,
    TEST_COMPONENT_APPID,
)
from tests.fixtures.token_requests import component_token, stable_token
from tests.fixtures.wechat_conn import (
    HOOK_CONN_ID,
    SIM_NOW,
    calls,
    clear_token_caches,
    sim_hook,
    use_hook_conn,
)
from wechat_datacube.errors import PermanentError, TokenError
from wechat_datacube.hook import WeChatDatacubeHook
from wechat_datacube.simulator import SimulatorServer
from wechat_datacube.tokens import CachedToken, IssuedToken, clear_token_memo, decrypt

DATA = "/datacube/getusershare"
WEEK = ("2024-06-01", "2024-06-07")


@pytest.fixture
def sim(hook_sim: SimulatorServer) -> SimulatorServer:
    """The simulator at SIM_NOW with the test account as HOOK_CONN_ID (classic tokens)."""
    return hook_sim


# --- the four modes ---------------------------------------------------------------


def test_stable_mode_uses_stable_token_and_reuses_it(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_hook_conn(monkeypatch, sim.base_url, token_mode="stable")
    first = sim_hook(sim)
    first.fetch("getusershare", *WEEK)
    first_token = first.get_access_token()
    clear_token_caches()
    second = sim_hook(sim)  # a fresh process, in effect: WeChat hands back the same token
    second.fetch("getusershare", *WEEK)
    assert calls(sim, "/cgi-bin/stable_token") == 2 and calls(sim, "/cgi-bin/token") == 0
    assert second.get_access_token() == first_token


def test_stable_mode_token_error_takes_a_newer_stable_token(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_hook_conn(monkeypatch, sim.base_url, token_mode="stable")
    hook = sim_hook(sim)
    old = hook.get_access_token()
    new = stable_token(sim, force_refresh=True)["access_token"]  # someone else forced a refresh: old is dead now
    hook.fetch("getusershare", *WEEK)
    assert hook.get_access_token() == new != old


def test_classic_mode_uses_cgi_bin_token_once_per_token_lifetime(sim: Any) -> None:
    hook = sim_hook(sim)
    for _ in range(3):
        hook.fetch("getusershare", *WEEK)
    assert calls(sim, "/cgi-bin/token") == 1 == hook.token_calls
    assert calls(sim, "/cgi-bin/stable_token") == 0


def test_external_mode_reads_the_variable_and_never_fetches(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    token = stable_token(sim)["access_token"]
    monkeypatch.setenv("AIRFLOW_VAR_WECHAT_CENTRAL_TOKEN", token)
    use_hook_conn(monkeypatch, sim.base_url, token_mode="external", token_variable="wechat_central_token")
    sim.state.reset_counters()
    hook = sim_hook(sim)
    assert hook.fetch("getusershare", *WEEK)
    assert hook.get_access_token() == token
    assert hook.token_calls == 0
    assert set(sim.state.counters()["paths"]) == {DATA}


def test_external_mode_rereads_a_rotated_variable_after_a_token_error(
    sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_WECHAT_CENTRAL_TOKEN", stable_token(sim)["access_token"])
    use_hook_conn(monkeypatch, sim.base_url, token_mode="external", token_variable="wechat_central_token")
    hook = sim_hook(sim)
    hook.fetch("getusershare", *WEEK)
    rotated = stable_token(sim, force_refresh=True)["access_token"]  # the central service rotated it
    monkeypatch.setenv("AIRFLOW_VAR_WECHAT_CENTRAL_TOKEN", rotated)
    assert hook.fetch("getusershare", *WEEK)
    assert hook.get_access_token() == rotated and hook.token_calls == 0


def test_external_mode_raises_when_the_variable_still_holds_the_failed_token(
    sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_WECHAT_CENTRAL_TOKEN", "not-a-token-wechat-knows")
    use_hook_conn(monkeypatch, sim.base_url, token_mode="external", token_variable="wechat_central_token")
    hook = sim_hook(sim)
    with pytest.raises(TokenError, match="has not changed") as info:
        hook.call("getusershare", *WEEK)
    assert "not-a-token-wechat-knows" not in str(info.value)
    assert calls(sim, DATA) == 1 and hook.token_calls == 0


def _authorizer_conn(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_WECHAT_COMPONENT_TOKEN", component_token(sim)["component_access_token"])
    use_hook_conn(
        monkeypatch,
        sim.base_url,
        login=TEST_AUTHORIZER_APPID,
        token_mode="authorizer",
        component_appid=TEST_COMPONENT_APPID,
        component_token_variable="wechat_component_token",
        authorizer_appid=TEST_AUTHORIZER_APPID,
        authorizer_refresh_token=TEST_AUTHORIZER_REFRESH_TOKEN,
    )


def test_authorizer_mode_fetches_with_the_component_token_from_a_variable(
    sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _authorizer_conn(sim, monkeypatch)
    hook = sim_hook(sim)
    rows = hook.fetch("getusershare", *WEEK)
    assert rows == sim.state.truth(TEST_AUTHORIZER_APPID, "getusershare", *WEEK)
    assert calls(sim, "/cgi-bin/component/api_authorizer_token") == 1 == hook.token_calls


def test_rotated_refresh_token_is_persisted_and_preferred_over_the_connection(
    sim: Any, monkeypatch: pytest.MonkeyPatch, fresh_pg: tuple[str, str]
) -> None:
    pg_conn_id, dsn = fresh_pg
    _authorizer_conn(sim, monkeypatch)
    sim_hook(sim, token_store_conn_id=pg_conn_id).get_access_token()
    clear_token_memo()
    # The connection still holds the initial refresh token, which WeChat no longer accepts.
    second = sim_hook(sim, token_store_conn_id=pg_conn_id)
    assert second.get_access_token(force_refresh=True)
    assert second.fetch("getusershare", *WEEK)
    assert calls(sim, "/cgi-bin/component/api_authorizer_token") == 2
    with psycopg.connect(dsn) as conn:
        stored, encrypted = conn.execute(
            "SELECT refresh_token, encrypted FROM wechat.authorizer_refresh_token WHERE authorizer_appid = %s",
            (TEST_AUTHORIZER_APPID,),
        ).fetchone()
    assert encrypted is True and TEST_AUTHORIZER_REFRESH_TOKEN != decrypt(stored, encrypted)


def test_without_persistence_a_rotated_refresh_token_is_lost(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Why the refresh token must be persisted: the initial one is dead after one rotation."""
    _authorizer_conn(sim, monkeypatch)
    sim_hook(sim).get_access_token()
    clear_token_caches()
    with pytest.raises(PermanentError) as info:
        sim_hook(sim).get_access_token()
    assert info.value.errcode == 61023


# --- the shared cache -------------------------------------------------------------


def test_fifty_hook_instances_share_one_token_through_postgres(sim: Any, fresh_pg: tuple[str, str]) -> None:
    pg_conn_id, _ = fresh_pg
    for _ in range(50):
        clear_token_memo()
        sim_hook(sim, token_store_conn_id=pg_conn_id).fetch("getusershare", *WEEK)
    assert calls(sim, "/cgi-bin/token") == 1
    assert calls(sim, DATA) == 50


def test_tokens_at_rest_are_encrypted(sim: Any, fresh_pg: tuple[str, str]) -> None:
    pg_conn_id, dsn = fresh_pg
    token = sim_hook(sim, token_store_conn_id=pg_conn_id).get_access_token()
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT appid, mode, token, encrypted FROM wechat.access_token_cache").fetchall()
    assert [(r[0], r[1], r[3]) for r in rows] == [(TEST_APPID, "classic", True)]
    assert token not in rows[0][2] and decrypt(rows[0][2], True) == token


def test_token_expiry_mid_run_refreshes_exactly_once(sim: Any, fresh_pg: tuple[str, str]) -> None:
    hook = sim_hook(sim, token_store_conn_id=fresh_pg[0])
    hook.fetch("getusershare", *WEEK)
    sim.state.clock.advance(7000)  # inside the refresh margin
    for _ in range(3):
        hook.fetch("getusershare", *WEEK)
    assert calls(sim, "/cgi-bin/token") == 2


def test_token_error_does_not_invalidate_a_newer_cached_token(
    sim: Any, monkeypatch: pytest.MonkeyPatch, fresh_pg: tuple[str, str]
) -> None:
    pg_conn_id, _ = fresh_pg
    # Two connections to the same account: separate in-process memos, one shared store row.
    other_conn = json.loads(os.environ[f"AIRFLOW_CONN_{HOOK_CONN_ID.upper()}"])
    monkeypatch.setenv("AIRFLOW_CONN_WECHAT_TOKENS_OTHER", json.dumps(other_conn))
    stale_holder = sim_hook(sim, token_store_conn_id=pg_conn_id)
    old = stale_holder.get_access_token()
    newer_holder = WeChatDatacubeHook(
        "wechat_tokens_other", token_store_conn_id=pg_conn_id, clock=sim.state.clock.now
    )
    newer = newer_holder.get_access_token(force_refresh=True)
    assert newer != old
    sim.state.set_faults([{"kind": "errcode", "errcode": 40001, "count": 1, "path": DATA}])
    stale_holder.call("getusershare", *WEEK)  # fails with the old token, retried with the newer
    assert calls(sim, "/cgi-bin/token") == 2  # no third token: the newer one was kept
    assert stale_holder.get_access_token() == newer
    clear_token_memo()
    assert sim_hook(sim, token_store_conn_id=pg_conn_id).get_access_token() == newer


def test_process_local_cache_is_shared_by_hooks_in_one_process(sim: Any) -> None:
    for _ in range(5):
        clear_token_memo()  # so each hook must find the token in the local store, not the memo
        sim_hook(sim).fetch("getusershare", *WEEK)
    assert calls(sim, "/cgi-bin/token") == 1


def test_short_lived_stable_token_is_not_refreshed_in_a_loop() -> None:
    """A stable token can arrive with less life than the margin: refresh half-way, not at once."""
    cached = CachedToken.from_issued(IssuedToken("t", expires_in=400), SIM_NOW, margin=600)
    assert cached.refresh_at == SIM_NOW + dt.timedelta(seconds=200)
    full = CachedToken.from_issued(IssuedToken("t", expires_in=7200), SIM_NOW, margin=600)
    assert full.refresh_at == SIM_NOW + dt.timedelta(seconds=6600)
