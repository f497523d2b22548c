"""The authorizer source hands a rotated refresh token over before anything else can fail,
and falls back to the previous one (then the connection's) when WeChat answers 61023.

A fake transport plays WeChat's refresh-token rotation; the Postgres store is covered by
tests/integration/test_tokens.py.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from wechat_datacube.errors import MalformedResponseError, PermanentError
from wechat_datacube.tokens import AuthorizerTokenSource, RefreshTokens
from wechat_datacube.transport import CallContext

ACCOUNT = "platform-shop"
COMPONENT_TOKEN = "component-token-5f2a9c"
INITIAL = "refresh-initial-0a1b2c"
VARIABLE = "wechat_unit_component_token"


class RotatingWeChat:
    """``api_authorizer_token`` as WeChat plays it: one live refresh token, rotated per call."""

    def __init__(self, live: str, *, body: dict[str, Any] | None = None) -> None:
        self.live = live
        self.sent: list[str] = []
        self.body = body  # answer with this instead of a good token (keeps the rotation)
        self.rotations = 0

    def request(self, method: str, path: str, *, params: Any, json_body: Any, context: Any, on_attempt: Any) -> Any:
        sent = json_body["authorizer_refresh_token"]
        self.sent.append(sent)
        if sent != self.live:
            raise PermanentError("refresh token invalid", errcode=61023, account=context.account)
        self.rotations += 1
        self.live = f"refresh-rotated-{self.rotations}-9d8e7f"
        answer = {"authorizer_access_token": f"access-{self.rotations}-3c4d5e", "expires_in": 7200}
        return {**(self.body if self.body is not None else answer), "authorizer_refresh_token": self.live}


def source(wechat: RotatingWeChat) -> AuthorizerTokenSource:
    return AuthorizerTokenSource(
        wechat,  # type: ignore[arg-type]
        component_appid="wx_component",
        authorizer_appid="wx_authorized",
        initial_refresh_token=INITIAL,
        component_token_variable=VARIABLE,
        ctx=CallContext(account=ACCOUNT),
        on_call=lambda: None,
    )


@pytest.fixture(autouse=True)
def component_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"AIRFLOW_VAR_{VARIABLE.upper()}", COMPONENT_TOKEN)


def fetch(wechat: RotatingWeChat, refresh: RefreshTokens) -> tuple[str, list[tuple[str, str | None]]]:
    saved: list[tuple[str, str | None]] = []
    issued = source(wechat).fetch(
        failed=None, force=False, refresh=refresh, save_refresh=lambda new, old: saved.append((new, old))
    )
    return issued.value, saved


def test_the_rotated_refresh_token_is_saved_before_a_bad_answer_raises() -> None:
    """WeChat rotated (the old token is dead) but the rest of the answer is unusable."""
    wechat = RotatingWeChat("refresh-stored-1f2e3d", body={"errcode": 0})
    saved: list[tuple[str, str | None]] = []
    with pytest.raises(MalformedResponseError):
        source(wechat).fetch(
            failed=None,
            force=False,
            refresh=RefreshTokens("refresh-stored-1f2e3d"),
            save_refresh=lambda new, old: saved.append((new, old)),
        )
    assert saved == [(wechat.live, "refresh-stored-1f2e3d")]


def test_bootstrap_uses_the_connections_refresh_token_and_saves_the_rotated_one() -> None:
    wechat = RotatingWeChat(INITIAL)
    value, saved = fetch(wechat, RefreshTokens())
    assert value.startswith("access-1")
    assert wechat.sent == [INITIAL]
    assert saved == [(wechat.live, INITIAL)]


def test_a_refused_current_token_falls_back_to_the_previous_one(caplog: pytest.LogCaptureFixture) -> None:
    wechat = RotatingWeChat("refresh-previous-7a6b5c")
    with caplog.at_level(logging.WARNING, logger="wechat_datacube.tokens"):
        _, saved = fetch(wechat, RefreshTokens("refresh-current-dead-4e", "refresh-previous-7a6b5c"))
    assert wechat.sent == ["refresh-current-dead-4e", "refresh-previous-7a6b5c"]
    assert saved == [(wechat.live, "refresh-previous-7a6b5c")]
    assert f"account {ACCOUNT}" in caplog.text and "61023" in caplog.text
    assert not [s for s in ("refresh-current-dead-4e", "refresh-previous-7a6b5c", wechat.live) if s in caplog.text]


def test_after_both_stored_tokens_are_refused_the_connections_one_is_tried() -> None:
    """After a re-authorisation the operator puts the new refresh token in the connection."""
    wechat = RotatingWeChat(INITIAL)
    _, saved = fetch(wechat, RefreshTokens("refresh-dead-1", "refresh-dead-2"))
    assert wechat.sent == ["refresh-dead-1", "refresh-dead-2", INITIAL]
    assert saved == [(wechat.live, INITIAL)]


def test_when_every_refresh_token_is_refused_61023_is_raised_after_one_try_each() -> None:
    wechat = RotatingWeChat("refresh-nobody-has-it")
    with pytest.raises(PermanentError) as info:
        fetch(wechat, RefreshTokens("refresh-dead-1", INITIAL))
    assert info.value.errcode == 61023
    assert wechat.sent == ["refresh-dead-1", INITIAL]


def test_a_working_fallback_is_saved_even_when_wechat_does_not_rotate() -> None:
    """Else every refresh would start with the dead token again."""
    wechat = RotatingWeChat("refresh-previous-7a6b5c")
    source_ = source(wechat)
    saved: list[tuple[str, str | None]] = []

    def no_rotation(*args: Any, **kwargs: Any) -> Any:
        body = RotatingWeChat.request(wechat, *args, **kwargs)
        wechat.live = kwargs["json_body"]["authorizer_refresh_token"]
        return {**body, "authorizer_refresh_token": wechat.live}

    wechat.request = no_rotation  # type: ignore[method-assign]
    source_.fetch(
        failed=None,
        force=False,
        refresh=RefreshTokens("refresh-current-dead-4e", "refresh-previous-7a6b5c"),
        save_refresh=lambda new, old: saved.append((new, old)),
    )
    assert saved == [("refresh-previous-7a6b5c", "refresh-current-dead-4e")]
