"""Airflow 3.3 retry policy driven by the hook's error classes.

Evaluated in the worker after a task raised; the scheduler only sees the decision.
Permanent problems fail at once (no retry burns quota on a wrong AppSecret), a 45009
waits until the daily quota has reset in Beijing, data that is not published yet is
retried shortly before/after its readiness deadline, and everything else falls back to
the task's exponential backoff within ``retries``.

Between task tries only: the retries of one HTTP call inside a try are the hook's
(:class:`wechat_datacube.transport.HttpBackoff`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import RetryDecision, RetryPolicy

from wechat_datacube.errors import ConfigError, DataNotReadyError, PermanentError, QuotaExceededError

#: Pause after the quota reset before trying again (WeChat's midnight is not to the second).
QUOTA_RESET_MARGIN = dt.timedelta(minutes=10)
#: Longest wait between not-ready retries.
NOT_READY_MAX_DELAY = dt.timedelta(minutes=30)


def _permanent_label(exception: PermanentError) -> str:
    """What the failure is, in the task log: a wrong run conf, connection or accounts file is no WeChat error."""
    if isinstance(exception, ConfigError):
        return "configuration error (permanent)"
    return "permanent WeChat error"


class WeChatRetryPolicy(RetryPolicy):
    """Map WeChat error classes to retry decisions (see module docstring)."""

    def __init__(self, not_ready_max_delay: dt.timedelta = NOT_READY_MAX_DELAY) -> None:
        self.not_ready_max_delay = not_ready_max_delay

    def evaluate(
        self,
        exception: BaseException,
        try_number: int,
        max_tries: int,
        context: Any = None,
    ) -> RetryDecision:
        from wechat_datacube.dates import utcnow  # worker side only: keeps DAG parsing lean

        if isinstance(exception, QuotaExceededError):
            delay = max(exception.reset_at - utcnow(), dt.timedelta(0)) + QUOTA_RESET_MARGIN
            return RetryDecision.retry(delay, reason=f"WeChat daily quota (45009): retry after {exception.reset_at.isoformat()}")
        if isinstance(exception, DataNotReadyError):
            delay = self.not_ready_max_delay
            deadline = getattr(exception, "deadline", None)
            if deadline is not None:
                until = deadline - utcnow() + dt.timedelta(minutes=1)
                delay = min(delay, max(until, dt.timedelta(minutes=1)))
            return RetryDecision.retry(delay, reason="data not published yet")
        if isinstance(exception, PermanentError):
            return RetryDecision.fail(reason=f"{_permanent_label(exception)}, not retried: {exception}"[:500])
        return RetryDecision.default()

    def serialize(self) -> dict[str, Any]:
        return {"__type": "WeChatRetryPolicy", "not_ready_max_delay": self.not_ready_max_delay.total_seconds()}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> WeChatRetryPolicy:
        return cls(dt.timedelta(seconds=data.get("not_ready_max_delay", NOT_READY_MAX_DELAY.total_seconds())))
