"""WeChatRetryPolicy: the decision Airflow gets for each error class after a task fails."""

from __future__ import annotations

import datetime as dt

import pytest
from airflow.sdk import RetryAction

from wechat_datacube.accounts import AccountConfigError
from wechat_datacube.errors import (
    BadPayloadError,
    DataNotReadyError,
    MalformedResponseError,
    PermanentError,
    QuotaExceededError,
    TokenError,
    error_for_errcode,
)
from wechat_datacube.retry_policy import NOT_READY_MAX_DELAY, QUOTA_RESET_MARGIN, WeChatRetryPolicy

POLICY = WeChatRetryPolicy()
#: Slack for the real clock moving between building the error and the decision.
SLACK = dt.timedelta(seconds=30)


def decide(exc: BaseException):  # noqa: ANN202 - RetryDecision
    return POLICY.evaluate(exc, try_number=1, max_tries=9)


@pytest.mark.parametrize(
    "exc",
    [
        error_for_errcode(40125, "invalid appsecret", account="shop"),
        error_for_errcode(61501, "date range error"),
        BadPayloadError("rows do not fit the registry"),
        AccountConfigError("accounts file: account 'x', field 'name': bad"),
    ],
)
def test_permanent_errors_fail_now(exc: PermanentError) -> None:
    decision = decide(exc)
    assert decision.action is RetryAction.FAIL
    assert "permanent" in decision.reason


@pytest.mark.parametrize(
    "exc",
    [error_for_errcode(-1, "system busy"), MalformedResponseError("html page"), TokenError("40001"), ValueError("bug?")],
)
def test_transient_and_unknown_errors_use_the_tasks_backoff(exc: BaseException) -> None:
    decision = decide(exc)
    assert decision.action is RetryAction.DEFAULT
    assert decision.retry_delay is None


def test_quota_waits_until_after_the_beijing_midnight_reset() -> None:
    reset_at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=5)
    decision = decide(QuotaExceededError("45009", reset_at=reset_at))
    assert decision.action is RetryAction.RETRY
    expected = dt.timedelta(hours=5) + QUOTA_RESET_MARGIN
    assert expected - SLACK <= decision.retry_delay <= expected
    assert reset_at.isoformat() in decision.reason


def test_quota_already_reset_still_waits_the_margin() -> None:
    decision = decide(QuotaExceededError("45009", reset_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
    assert decision.retry_delay == QUOTA_RESET_MARGIN


def test_not_ready_retries_just_after_a_near_deadline() -> None:
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    decision = decide(DataNotReadyError("empty list", deadline=deadline))
    assert decision.action is RetryAction.RETRY
    expected = dt.timedelta(minutes=11)
    assert expected - SLACK <= decision.retry_delay <= expected


def test_not_ready_far_from_its_deadline_waits_at_most_the_cap() -> None:
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(hours=6)
    assert decide(DataNotReadyError("empty list", deadline=deadline)).retry_delay == NOT_READY_MAX_DELAY
    assert decide(DataNotReadyError("empty list")).retry_delay == NOT_READY_MAX_DELAY


def test_not_ready_past_its_deadline_retries_after_a_minute() -> None:
    deadline = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    assert decide(DataNotReadyError("empty list", deadline=deadline)).retry_delay == dt.timedelta(minutes=1)


def test_serialize_round_trip_keeps_the_cap() -> None:
    policy = WeChatRetryPolicy(dt.timedelta(minutes=7))
    again = WeChatRetryPolicy.deserialize(policy.serialize())
    assert again.not_ready_max_delay == dt.timedelta(minutes=7)
    assert WeChatRetryPolicy.deserialize({}).not_ready_max_delay == NOT_READY_MAX_DELAY
