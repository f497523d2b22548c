"""Token modes and the shared Postgres token cache, against the simulator and real Postgres."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import multiprocessing as mp
import os
import signal
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from airflow.sdk.crypto import get_fernet
from cryptography.fernet import Fernet
from wechat_datacube_dev.simulator import SimulatorServer

from tests.fixtures.simulator import (
    TEST_APPID,
    TEST_AUTHORIZER_APPID,
    TEST_AUTHORIZER_REFRESH_TOKEN,
    TEST_COMPONENT_APPID,
    TEST_SECRET,
)
from tests.fixtures.token_requests import authorizer_token, component_token, stable_token
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
from wechat_datacube.tokens import (
    DEFAULT_REFRESH_MARGIN,
    EXPIRES_IN_MAX,
    TOKEN_SCHEMA,
    CachedToken,
    IssuedToken,
    PostgresTokenStore,
    clear_token_memo,
    credential_fingerprint,
    decrypt,
    encrypt,
)
from wechat_datacube.transport import Transport

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


def _authorizer_conn(
    sim: Any, monkeypatch: pytest.MonkeyPatch, refresh_token: str = TEST_AUTHORIZER_REFRESH_TOKEN
) -> None:
    """The test authorizer as HOOK_CONN_ID, configured with ``refresh_token``."""
    monkeypatch.setenv("AIRFLOW_VAR_WECHAT_COMPONENT_TOKEN", component_token(sim)["component_access_token"])
    use_hook_conn(
        monkeypatch,
        sim.base_url,
        login=TEST_AUTHORIZER_APPID,
        token_mode="authorizer",
        component_appid=TEST_COMPONENT_APPID,
        component_token_variable="wechat_component_token",
        authorizer_appid=TEST_AUTHORIZER_APPID,
        authorizer_refresh_token=refresh_token,
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
            f"SELECT refresh_token, encrypted FROM {TOKEN_SCHEMA}.authorizer_refresh_token WHERE authorizer_appid = %s",
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
        rows = conn.execute(f"SELECT appid, mode, token, encrypted FROM {TOKEN_SCHEMA}.access_token_cache").fetchall()
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


# --- hardening: rotated refresh tokens are never lost -------------------------------

AUTHORIZER_PATH = "/cgi-bin/component/api_authorizer_token"


def _stored_refresh_tokens(dsn: str) -> tuple[str | None, str | None]:
    """(current, previous) of the test authorizer's stored refresh tokens, decrypted."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            f"SELECT refresh_token, encrypted, previous_refresh_token, previous_encrypted "
            f"FROM {TOKEN_SCHEMA}.authorizer_refresh_token WHERE authorizer_appid = %s",
            (TEST_AUTHORIZER_APPID,),
        ).fetchone()
    assert row is not None and row[1] is True
    return decrypt(row[0], row[1]), (decrypt(row[2], row[3]) if row[2] else None)


def _live_refresh_token(sim: Any) -> str:
    """The one refresh token the simulator accepts now (the last one it rotated to)."""
    return sim.state.issued_tokens("refresh")[-1]


def _rewrite_token_answers(monkeypatch: pytest.MonkeyPatch, **fields: Any) -> None:
    """Let WeChat's token answers carry ``fields`` (e.g. a bad expires_in): tokens stay real."""
    original = Transport.request

    def request(self: Transport, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        body = original(self, method, path, **kwargs)
        return {**body, **fields} if path.startswith("/cgi-bin/") and "errcode" not in body else body

    monkeypatch.setattr(Transport, "request", request)


def _fail_once(monkeypatch: pytest.MonkeyPatch, target: Any, name: str, error: Exception) -> None:
    """Make ``target.name`` raise ``error`` on its first call only."""
    original = getattr(target, name)
    state = {"failed": False}

    def failing(*args: Any, **kwargs: Any) -> Any:
        if not state["failed"]:
            state["failed"] = True
            raise error
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, failing)


@pytest.mark.parametrize(
    "inject",
    ["making the cache entry", "writing the access token"],
)
def test_a_failure_after_wechat_rotated_keeps_the_new_refresh_token(
    sim: Any, monkeypatch: pytest.MonkeyPatch, fresh_pg: tuple[str, str], inject: str
) -> None:
    """WeChat rotated (the old refresh token is dead), then our side failed: nothing is lost."""
    pg_conn_id, dsn = fresh_pg
    _authorizer_conn(sim, monkeypatch)
    if inject == "making the cache entry":
        _fail_once(monkeypatch, CachedToken, "from_issued", RuntimeError("injected failure"))
    else:
        _fail_once(monkeypatch, PostgresTokenStore, "_write_token", psycopg.OperationalError("injected: server gone"))
    with pytest.raises((RuntimeError, psycopg.OperationalError), match="injected"):
        sim_hook(sim, token_store_conn_id=pg_conn_id).get_access_token()
    rotated = _live_refresh_token(sim)

    clear_token_memo()  # the next task: it must not need the dead initial refresh token
    hook = sim_hook(sim, token_store_conn_id=pg_conn_id)
    assert hook.fetch("getusershare", *WEEK)
    assert calls(sim, AUTHORIZER_PATH) == 2
    assert _stored_refresh_tokens(dsn) == (_live_refresh_token(sim), rotated)


def _killed_after_wechat_answered(pg_conn_id: str) -> None:
    """In a child process: refresh the authorizer token and die by SIGKILL before caching it."""
    from wechat_datacube.hook import WeChatDatacubeHook

    def die(*args: Any, **kwargs: Any) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    CachedToken.from_issued = die  # type: ignore[method-assign,assignment]
    WeChatDatacubeHook(HOOK_CONN_ID, token_store_conn_id=pg_conn_id).get_access_token()


def test_a_worker_killed_after_wechat_rotated_keeps_the_new_refresh_token(
    sim: Any, monkeypatch: pytest.MonkeyPatch, fresh_pg: tuple[str, str]
) -> None:
    """SIGKILL (a task timeout) between WeChat's answer and the cache write: no lock, no token lost."""
    pg_conn_id, dsn = fresh_pg
    _authorizer_conn(sim, monkeypatch)
    child = mp.get_context("spawn").Process(target=_killed_after_wechat_answered, args=(pg_conn_id,))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == -signal.SIGKILL and calls(sim, AUTHORIZER_PATH) == 1
    rotated = _live_refresh_token(sim)
    assert sim_hook(sim, token_store_conn_id=pg_conn_id).fetch("getusershare", *WEEK)  # the lock died with it
    assert calls(sim, AUTHORIZER_PATH) == 2
    assert _stored_refresh_tokens(dsn) == (_live_refresh_token(sim), rotated)


@pytest.mark.parametrize("expires_in", [1e300, "soon"])
def test_a_bad_expires_in_does_not_lose_the_rotated_refresh_token(
    sim: Any, monkeypatch: pytest.MonkeyPatch, fresh_pg: tuple[str, str], expires_in: Any
) -> None:
    pg_conn_id, dsn = fresh_pg
    _authorizer_conn(sim, monkeypatch)
    _rewrite_token_answers(monkeypatch, expires_in=expires_in)
    assert sim_hook(sim, token_store_conn_id=pg_conn_id).fetch("getusershare", *WEEK)
    clear_token_memo()
    assert sim_hook(sim, token_store_conn_id=pg_conn_id).get_access_token(force_refresh=True)
    assert calls(sim, AUTHORIZER_PATH) == 2
    assert _stored_refresh_tokens(dsn)[0] == _live_refresh_token(sim)


def _store_refresh_tokens(dsn: str, current: str, previous: str | None) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(
            f"UPDATE {TOKEN_SCHEMA}.authorizer_refresh_token SET refresh_token = %s, encrypted = true, "
            "previous_refresh_token = %s, previous_encrypted = true WHERE authorizer_appid = %s",
            (encrypt(current)[0], encrypt(previous)[0] if previous else None, TEST_AUTHORIZER_APPID),
        )


def test_a_refused_refresh_token_falls_back_to_the_previous_one(
    sim: Any, monkeypatch: pytest.MonkeyPatch, fresh_pg: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    pg_conn_id, dsn = fresh_pg
    _authorizer_conn(sim, monkeypatch)
    sim_hook(sim, token_store_conn_id=pg_conn_id).get_access_token()
    working = _live_refresh_token(sim)
    # Say our last rotation never took on WeChat's side: the stored token is refused.
    _store_refresh_tokens(dsn, "refreshtoken@@@never-accepted-by-wechat", working)
    clear_token_memo()
    with caplog.at_level(logging.WARNING, logger="wechat_datacube.tokens"):
        hook = sim_hook(sim, token_store_conn_id=pg_conn_id)
        assert hook.get_access_token(force_refresh=True)
        assert hook.fetch("getusershare", *WEEK)
    assert calls(sim, AUTHORIZER_PATH) == 3  # bootstrap, refused, previous accepted
    assert _stored_refresh_tokens(dsn) == (_live_refresh_token(sim), working)
    assert "refused the stored authorizer refresh token (61023); trying the previous stored one" in caplog.text
    _assert_no_secrets(sim, caplog.text)


def test_a_reauthorised_accounts_refresh_token_from_the_connection_is_used(
    sim: Any, monkeypatch: pytest.MonkeyPatch, fresh_pg: tuple[str, str]
) -> None:
    """Both stored refresh tokens are dead; the operator put the new one in the connection."""
    pg_conn_id, dsn = fresh_pg
    _authorizer_conn(sim, monkeypatch)
    sim_hook(sim, token_store_conn_id=pg_conn_id).get_access_token()
    component = component_token(sim)["component_access_token"]
    reauthorised = authorizer_token(sim, component, _live_refresh_token(sim))["authorizer_refresh_token"]
    _authorizer_conn(sim, monkeypatch, refresh_token=reauthorised)
    clear_token_memo()
    assert sim_hook(sim, token_store_conn_id=pg_conn_id).get_access_token(force_refresh=True)
    assert _stored_refresh_tokens(dsn) == (_live_refresh_token(sim), reauthorised)


def _assert_no_secrets(sim: Any, text: str) -> None:
    secrets = [TEST_SECRET, TEST_AUTHORIZER_REFRESH_TOKEN, *sim.state.issued_tokens()]
    assert [s for s in secrets if s in text] == []


# --- hardening: a changed Fernet key -------------------------------------------------


@pytest.fixture
def change_fernet_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Switch AIRFLOW__CORE__FERNET_KEY to a new key, as an operator rotating it would."""

    def change() -> None:
        monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
        get_fernet.cache_clear()

    yield change
    get_fernet.cache_clear()  # the next use reads the restored key


def test_a_token_cached_under_another_fernet_key_is_fetched_again(
    sim: Any, fresh_pg: tuple[str, str], change_fernet_key: Any, caplog: pytest.LogCaptureFixture
) -> None:
    pg_conn_id, dsn = fresh_pg
    old = sim_hook(sim, token_store_conn_id=pg_conn_id).get_access_token()
    change_fernet_key()
    clear_token_memo()
    with caplog.at_level(logging.WARNING, logger="wechat_datacube.tokens"):
        hook = sim_hook(sim, token_store_conn_id=pg_conn_id)
        assert hook.fetch("getusershare", *WEEK)
    new = hook.get_access_token()
    assert new != old and calls(sim, "/cgi-bin/token") == 2
    assert "cannot be decrypted with the current Fernet key" in caplog.text
    _assert_no_secrets(sim, caplog.text)
    with psycopg.connect(dsn) as conn:
        (stored,) = conn.execute(f"SELECT token FROM {TOKEN_SCHEMA}.access_token_cache").fetchone()
    assert decrypt(stored, True) == new  # overwritten under the new key
    clear_token_memo()
    sim_hook(sim, token_store_conn_id=pg_conn_id).fetch("getusershare", *WEEK)
    assert calls(sim, "/cgi-bin/token") == 2


def test_an_undecryptable_refresh_token_falls_back_to_the_connections(
    sim: Any,
    monkeypatch: pytest.MonkeyPatch,
    fresh_pg: tuple[str, str],
    change_fernet_key: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pg_conn_id, dsn = fresh_pg
    _authorizer_conn(sim, monkeypatch)
    sim_hook(sim, token_store_conn_id=pg_conn_id).get_access_token()
    change_fernet_key()
    # The stored refresh token is unreadable now; the connection holds a working one.
    _authorizer_conn(sim, monkeypatch, refresh_token=_live_refresh_token(sim))
    clear_token_memo()
    with caplog.at_level(logging.WARNING, logger="wechat_datacube.tokens"):
        assert sim_hook(sim, token_store_conn_id=pg_conn_id).fetch("getusershare", *WEEK)
    assert "falling back to the connection's authorizer_refresh_token" in caplog.text
    _assert_no_secrets(sim, caplog.text)
    assert _stored_refresh_tokens(dsn)[0] == _live_refresh_token(sim)  # re-stored under the new key


# --- hardening: expires_in is validated ----------------------------------------------


@pytest.mark.parametrize("expires_in", [-5, 0, True, math.nan, 1e300, "7200 seconds"])
def test_a_bad_expires_in_neither_fails_nor_refetches_on_every_call(
    sim: Any, monkeypatch: pytest.MonkeyPatch, fresh_pg: tuple[str, str], caplog: pytest.LogCaptureFixture,
    expires_in: Any,
) -> None:
    """Classic mode, where a token per call would spend the quota and kill other workers' tokens."""
    _rewrite_token_answers(monkeypatch, expires_in=expires_in)
    with caplog.at_level(logging.WARNING, logger="wechat_datacube.tokens"):
        for _ in range(3):
            clear_token_memo()
            sim_hook(sim, token_store_conn_id=fresh_pg[0]).fetch("getusershare", *WEEK)
    assert calls(sim, "/cgi-bin/token") == 1
    assert f"account {TEST_APPID}: the token answer's expires_in" in caplog.text
    _assert_no_secrets(sim, caplog.text)


def test_a_huge_expires_in_from_the_simulator_is_capped(
    simulator_factory: Any, monkeypatch: pytest.MonkeyPatch, fresh_token_caches: None
) -> None:
    """A token WeChat says lives ~30 years is refreshed after the 4-hour cap like any other."""
    sim = simulator_factory(token_ttl=10**9)
    sim.state.clock.set(SIM_NOW)
    use_hook_conn(monkeypatch, sim.base_url)
    hook = sim_hook(sim)
    hook.fetch("getusershare", *WEEK)
    sim.state.clock.advance(EXPIRES_IN_MAX - DEFAULT_REFRESH_MARGIN + 60)
    hook.fetch("getusershare", *WEEK)
    assert calls(sim, "/cgi-bin/token") == 2


# --- hardening: one token cache per AppID ---------------------------------------------

OTHER_CONN_ID = "wechat_tokens_other"


def _second_account_with_the_same_appid(monkeypatch: pytest.MonkeyPatch) -> None:
    other_conn = json.loads(os.environ[f"AIRFLOW_CONN_{HOOK_CONN_ID.upper()}"])
    monkeypatch.setenv(f"AIRFLOW_CONN_{OTHER_CONN_ID.upper()}", json.dumps(other_conn))


def test_two_accounts_in_two_schemas_with_one_appid_share_one_token(
    sim: Any, monkeypatch: pytest.MonkeyPatch, fresh_pg: tuple[str, str]
) -> None:
    """Classic mode: two caches would each fetch a token, and each kills the other's."""
    pg_conn_id, _ = fresh_pg
    _second_account_with_the_same_appid(monkeypatch)
    for step in range(3):
        for conn_id, schema in ((HOOK_CONN_ID, "shop_a"), (OTHER_CONN_ID, "shop_b")):
            hook = sim_hook(sim, conn_id, token_store_conn_id=pg_conn_id, schema=schema, max_attempts=1)
            assert hook.fetch("getusershare", *WEEK), (step, schema)
        sim.state.clock.advance(400)  # past the 5 minutes a superseded classic token keeps working
    assert calls(sim, "/cgi-bin/token") == 1


OLD_REFRESH_TABLE = """CREATE TABLE {schema}.authorizer_refresh_token (
    authorizer_appid text PRIMARY KEY,
    refresh_token text NOT NULL,
    encrypted boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
)"""


def _old_release_refresh_token(dsn: str, schema: str, token: str, age: dt.timedelta) -> None:
    """A refresh token as an earlier release stored it: in the account's data schema."""
    with psycopg.connect(dsn) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        conn.execute(OLD_REFRESH_TABLE.format(schema=schema))
        conn.execute(
            f"INSERT INTO {schema}.authorizer_refresh_token VALUES (%s, %s, true, now() - %s)",
            (TEST_AUTHORIZER_APPID, encrypt(token)[0], age),
        )


def test_refresh_tokens_stored_by_an_earlier_release_are_carried_over_newest_first(
    sim: Any, monkeypatch: pytest.MonkeyPatch, fresh_pg: tuple[str, str]
) -> None:
    """Two data schemas each kept a refresh token of the account; only the newer one works."""
    pg_conn_id, dsn = fresh_pg
    component = component_token(sim)["component_access_token"]
    live = authorizer_token(sim, component, TEST_AUTHORIZER_REFRESH_TOKEN)["authorizer_refresh_token"]
    _old_release_refresh_token(dsn, "shop_a", TEST_AUTHORIZER_REFRESH_TOKEN, dt.timedelta(days=2))
    _old_release_refresh_token(dsn, "shop_b", live, dt.timedelta(hours=1))
    _authorizer_conn(sim, monkeypatch)  # the connection still holds the dead initial token
    hook = sim_hook(sim, token_store_conn_id=pg_conn_id, schema="shop_a")
    assert hook.fetch("getusershare", *WEEK)
    assert calls(sim, AUTHORIZER_PATH) == 2  # ours above, then one by the hook with the carried token
    assert _stored_refresh_tokens(dsn) == (_live_refresh_token(sim), live)
    with psycopg.connect(dsn) as conn:  # the old rows are left alone (a not yet upgraded worker may read them)
        assert conn.execute("SELECT count(*) FROM shop_a.authorizer_refresh_token").fetchone() == (1,)


def test_an_old_token_table_in_the_token_schema_gets_the_new_columns(
    sim: Any, monkeypatch: pytest.MonkeyPatch, fresh_pg: tuple[str, str]
) -> None:
    """A deployment whose data schema was the token schema: ADD COLUMN IF NOT EXISTS upgrades it."""
    pg_conn_id, dsn = fresh_pg
    component = component_token(sim)["component_access_token"]
    live = authorizer_token(sim, component, TEST_AUTHORIZER_REFRESH_TOKEN)["authorizer_refresh_token"]
    _old_release_refresh_token(dsn, TOKEN_SCHEMA, live, dt.timedelta(hours=1))
    _authorizer_conn(sim, monkeypatch)
    assert sim_hook(sim, token_store_conn_id=pg_conn_id).fetch("getusershare", *WEEK)
    assert _stored_refresh_tokens(dsn) == (_live_refresh_token(sim), live)


# --- a changed AppSecret takes effect at once ----------------------------------------

TOKEN_PATHS = {"classic": "/cgi-bin/token", "stable": "/cgi-bin/stable_token"}


@pytest.mark.parametrize("store", ["postgres", "process-local"])
@pytest.mark.parametrize("mode", ["classic", "stable"])
def test_a_wrong_secret_fails_at_once_while_the_right_ones_token_is_cached(
    sim: Any, monkeypatch: pytest.MonkeyPatch, fresh_pg: tuple[str, str], mode: str, store: str
) -> None:
    """Someone edits the connection's AppSecret and gets it wrong: the next call says 40125.

    Keyed by (appid, mode) only, the token the right secret had cached (in the memo, the
    local store or Postgres) kept the wrong secret working until it expired.
    """
    store_conn = fresh_pg[0] if store == "postgres" else None
    use_hook_conn(monkeypatch, sim.base_url, token_mode=mode)
    right = sim_hook(sim, token_store_conn_id=store_conn)
    assert right.fetch("getusershare", *WEEK)
    token_calls = calls(sim, TOKEN_PATHS[mode])

    use_hook_conn(monkeypatch, sim.base_url, token_mode=mode, password="wrong-secret")  # same conn id
    wrong = sim_hook(sim, token_store_conn_id=store_conn)
    with pytest.raises(PermanentError) as info:
        wrong.call("getusershare", *WEEK)
    assert info.value.errcode == 40125 and "check the connection's password" in str(info.value)
    assert calls(sim, TOKEN_PATHS[mode]) == token_calls + 1  # WeChat was asked, and refused
    assert calls(sim, DATA) == 1  # only the right secret's call

    use_hook_conn(monkeypatch, sim.base_url, token_mode=mode)  # put right: its cached token is still used
    assert sim_hook(sim, token_store_conn_id=store_conn).fetch("getusershare", *WEEK)
    assert calls(sim, TOKEN_PATHS[mode]) == token_calls + 1


def _cache_rows(dsn: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            f"SELECT appid, mode, credential FROM {TOKEN_SCHEMA}.access_token_cache ORDER BY updated_at"
        ).fetchall()


def test_the_cache_key_holds_a_fingerprint_of_the_credential_never_the_secret(
    sim: Any, monkeypatch: pytest.MonkeyPatch, fresh_pg: tuple[str, str]
) -> None:
    pg_conn_id, dsn = fresh_pg
    for mode in ("classic", "stable"):
        use_hook_conn(monkeypatch, sim.base_url, token_mode=mode)
        sim_hook(sim, token_store_conn_id=pg_conn_id).get_access_token()
    fingerprint = credential_fingerprint(TEST_APPID, TEST_SECRET)
    assert _cache_rows(dsn) == [(TEST_APPID, "classic", fingerprint), (TEST_APPID, "stable", fingerprint)]
    assert len(fingerprint) == 16 and TEST_SECRET not in fingerprint
    assert credential_fingerprint(TEST_APPID, TEST_SECRET + "x") != fingerprint
    assert credential_fingerprint("ab", "c") != credential_fingerprint("a", "bc")
    with psycopg.connect(dsn) as conn:
        dump = json.dumps(conn.execute(f"SELECT * FROM {TOKEN_SCHEMA}.access_token_cache").fetchall(), default=str)
    assert TEST_SECRET not in dump


def test_a_reset_app_secret_stops_working_at_once(
    simulator_factory: Any, monkeypatch: pytest.MonkeyPatch, fresh_pg: tuple[str, str], fresh_token_caches: None
) -> None:
    """The AppSecret is reset in the MP console: the new one's token replaces the old one's row,
    so the old secret fails at its next call although the token it obtained has not expired."""
    pg_conn_id, dsn = fresh_pg
    sim = simulator_factory()
    sim.state.clock.set(SIM_NOW)
    use_hook_conn(monkeypatch, sim.base_url, token_mode="stable")
    assert sim_hook(sim, token_store_conn_id=pg_conn_id).fetch("getusershare", *WEEK)
    sim.config.accounts[TEST_APPID] = "reset-app-secret-0b7e"  # what the console did
    use_hook_conn(monkeypatch, sim.base_url, token_mode="stable", password="reset-app-secret-0b7e")
    assert sim_hook(sim, token_store_conn_id=pg_conn_id).fetch("getusershare", *WEEK)
    assert [r[2] for r in _cache_rows(dsn)] == [credential_fingerprint(TEST_APPID, "reset-app-secret-0b7e")]

    use_hook_conn(monkeypatch, sim.base_url, token_mode="stable")  # a connection still holding the old secret
    clear_token_memo()
    with pytest.raises(PermanentError) as info:
        sim_hook(sim, token_store_conn_id=pg_conn_id).call("getusershare", *WEEK)
    assert info.value.errcode == 40125


OLD_TOKEN_TABLE = f"""CREATE TABLE {TOKEN_SCHEMA}.access_token_cache (
    appid text NOT NULL,
    mode text NOT NULL,
    token text,
    encrypted boolean NOT NULL DEFAULT false,
    expires_at timestamptz,
    refresh_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (appid, mode)
)"""


def _primary_key(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        (columns,) = conn.execute(
            """SELECT array_agg(a.attname::text ORDER BY array_position(c.conkey, a.attnum))
                 FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
                WHERE c.conrelid = %s::regclass AND c.contype = 'p'""",
            (f"{TOKEN_SCHEMA}.access_token_cache",),
        ).fetchone()
    return columns


def test_a_token_table_of_an_earlier_release_is_rekeyed_and_its_tokens_fetched_again(
    sim: Any, fresh_pg: tuple[str, str]
) -> None:
    """Keyed (appid, mode), holding a token nobody knows the secret of: upgraded without errors."""
    from wechat_datacube import tokens

    pg_conn_id, dsn = fresh_pg
    stale = CachedToken("token-cached-by-the-earlier-release", SIM_NOW + dt.timedelta(hours=2),
                        SIM_NOW + dt.timedelta(hours=1))  # fmt: skip
    with psycopg.connect(dsn) as conn:
        conn.execute(f"CREATE SCHEMA {TOKEN_SCHEMA}")
        conn.execute(OLD_TOKEN_TABLE)
        conn.execute(
            f"INSERT INTO {TOKEN_SCHEMA}.access_token_cache (appid, mode, token, encrypted, expires_at, refresh_at) "
            "VALUES (%s, 'classic', %s, true, %s, %s)",
            (TEST_APPID, encrypt(stale.value)[0], stale.expires_at, stale.refresh_at),
        )
    hook = sim_hook(sim, token_store_conn_id=pg_conn_id)
    assert hook.fetch("getusershare", *WEEK)
    assert hook.get_access_token() != stale.value and calls(sim, "/cgi-bin/token") == 1
    assert _primary_key(dsn) == ["appid", "mode", "credential"]
    assert _cache_rows(dsn) == [(TEST_APPID, "classic", credential_fingerprint(TEST_APPID, TEST_SECRET))]

    tokens._ENSURED.clear()  # another worker process: ensuring again changes nothing
    clear_token_memo()
    assert sim_hook(sim, token_store_conn_id=pg_conn_id).fetch("getusershare", *WEEK)
    assert calls(sim, "/cgi-bin/token") == 1 and _primary_key(dsn) == ["appid", "mode", "credential"]
