"""The errcode table and the error classes: what each code means for the caller."""

from __future__ import annotations

import datetime as dt

import pytest

from wechat_datacube.dates import BEIJING, next_beijing_midnight
from wechat_datacube.errors import (
    ERRCODES,
    ConfigError,
    DateRangeError,
    ErrorClass,
    PermanentError,
    QuotaExceededError,
    TokenError,
    TransientError,
    classify,
    error_for_errcode,
    redact_secrets,
)

TRANSIENT = (-1, 45011)
TOKEN = (40001, 40014, 42001)
PERMANENT = (40013, 40125, 40164, 41001, 47009, 48001, 50001, 50002, 61007, 61023, 61500, 61501)


@pytest.mark.parametrize("errcode", TRANSIENT)
def test_busy_and_frequency_limit_are_transient(errcode: int) -> None:
    assert isinstance(error_for_errcode(errcode, "busy"), TransientError)


@pytest.mark.parametrize("errcode", TOKEN)
def test_token_codes_are_token_errors(errcode: int) -> None:
    assert isinstance(error_for_errcode(errcode, "bad token"), TokenError)


@pytest.mark.parametrize("errcode", PERMANENT)
def test_configuration_and_bug_codes_are_permanent(errcode: int) -> None:
    assert isinstance(error_for_errcode(errcode, "no"), PermanentError)


def test_daily_quota_is_a_quota_error() -> None:
    assert isinstance(error_for_errcode(45009, "quota"), QuotaExceededError)


def test_every_documented_code_is_in_the_table() -> None:
    assert set(ERRCODES) == {*TRANSIENT, *TOKEN, *PERMANENT, 45009}


def test_unknown_errcode_is_permanent_so_quota_is_not_burned() -> None:
    assert classify(987654) is ErrorClass.PERMANENT


def test_error_text_carries_context() -> None:
    err = error_for_errcode(
        61501, "invalid range", endpoint="getusershare", begin_date=dt.date(2024, 1, 1),
        end_date="2024-01-07", account="wx_acct",
    )
    text = str(err)
    for part in ("61501", "getusershare", "2024-01-01..2024-01-07", "wx_acct", "invalid range"):
        assert part in text
    assert err.context()["errcode"] == 61501


def test_a_reworded_error_keeps_its_context_and_class() -> None:
    err = error_for_errcode(-1, "system busy", endpoint="getusershare", account="wx_acct")
    err.reword(f"{err.message} (gave up after 4 attempt(s))")
    assert isinstance(err, TransientError) and err.errcode == -1
    assert str(err).startswith("WeChat API error: WeChat system busy; retried with backoff (gave up after 4 attempt(s)) [")
    assert "account=wx_acct, endpoint=getusershare" in str(err) and err.args == (str(err),)


def test_a_bad_range_is_a_configuration_error() -> None:
    assert issubclass(DateRangeError, ConfigError) and issubclass(DateRangeError, PermanentError)


def test_quota_error_resets_at_next_beijing_midnight() -> None:
    now = dt.datetime(2024, 3, 1, 17, 30, tzinfo=dt.UTC)  # 01:30 on 2 March in Beijing
    err = QuotaExceededError("quota", reset_at=next_beijing_midnight(now), errcode=45009)
    assert err.reset_at == dt.datetime(2024, 3, 3, 0, 0, tzinfo=BEIJING)
    assert "2024-03-03T00:00:00+08:00" in str(err)


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("https://api.weixin.qq.com/datacube/getusershare?access_token=TOK123&x=1", "TOK123"),
        ("http://h/cgi-bin/token?grant_type=client_credential&appid=a&secret=S3CR3T", "S3CR3T"),
        ("http://h/cgi-bin/component/api_authorizer_token?component_access_token=CT99", "CT99"),
        ("POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=ROBOT-KEY-1 failed", "ROBOT-KEY-1"),
        ("Max retries exceeded with url: /cgi-bin/webhook/send?debug=1&key=RK2 (Caused by ...)", "RK2"),
    ],
)
def test_redact_secrets_hides_tokens_and_secrets(url: str, secret: str) -> None:
    redacted = redact_secrets(url)
    assert secret not in redacted
    assert "***" in redacted


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('{"access_token":"SECRET_TOKEN_1234567890","expires_in":72', "SECRET_TOKEN_1234567890"),  # truncated
        ('{"access_token": "TOK", "expires_in": 7200}', "TOK"),
        ('{"authorizer_access_token":"AAT","authorizer_refresh_token":"ART"}', "ART"),
        ('{"component_access_token": "CAT-partial', "CAT-partial"),
        ("<html>upstream said: refresh_token=RT9&x=1</html>", "RT9"),
    ],
)
def test_redact_secrets_hides_credentials_in_json_bodies(text: str, secret: str) -> None:
    redacted = redact_secrets(text)
    assert secret not in redacted
    assert "***" in redacted


def test_redact_secrets_keeps_ordinary_fields() -> None:
    body = '{"list":[{"ref_date":"2026-01-01","user_source":0,"int_page_read_count":12}],"errmsg":"ok"}'
    assert redact_secrets(body) == body
    # "key" is a secret only as a URL query parameter, not inside other names or as a JSON field.
    text = 'monkey=1 {"key": "ref_date"} /send?hotkey=2'
    assert redact_secrets(text) == text


def test_fixed_beijing_offset_matches_the_tz_database_for_every_served_date() -> None:
    # BEIJING is a fixed UTC+8 (cheap to import at parse time); prove it equals
    # Asia/Shanghai from WeChat's first date to well past today.
    from zoneinfo import ZoneInfo

    shanghai = ZoneInfo("Asia/Shanghai")
    day, last = dt.datetime(2014, 12, 1), dt.datetime(2040, 1, 1)
    while day < last:
        for hour in (0, 12):
            moment = day.replace(hour=hour)
            assert moment.replace(tzinfo=BEIJING).utcoffset() == moment.replace(tzinfo=shanghai).utcoffset(), moment
        day += dt.timedelta(days=1)


def test_a_retired_endpoint_tells_the_user_to_configure_the_replacement_family() -> None:
    err = error_for_errcode(47009, "api offline, please use the new api", endpoint="getusershare")
    assert isinstance(err, PermanentError)
    assert "configure the replacement family" in str(err) and "getbizsummary" in str(err)
