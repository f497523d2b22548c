"""Settings every DAG of the package shares: the API pool, the DAG ids, the task defaults.

Apart from the DAG factory so the backfill DAG file can read them without importing the
daily DAGs' cron timetable (croniter): docs/benchmarks.md#b3-parse-time.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from wechat_datacube.retry_policy import WeChatRetryPolicy

#: Pool every API task runs in; created by setup (`airflow pools set wechat_api 4 ...`).
API_POOL = "wechat_api"
#: The daily DAGs are ``<prefix><account name>``.
DAILY_DAG_PREFIX = "wechat_datacube_daily__"
#: The bulk backfill DAG (dags/wechat_datacube_backfill.py); messages send long ranges there.
BACKFILL_DAG_ID = "wechat_datacube_backfill"

#: Overrides the first retry delay (seconds). Production keeps the default; the fault and
#: crash suites (reliability/) set a few seconds so a retried task does not wait minutes.
RETRY_DELAY_ENV = "WECHAT_DATACUBE_RETRY_DELAY_SECONDS"


def retry_delay_from_env() -> dt.timedelta:
    raw = os.environ.get(RETRY_DELAY_ENV, "").strip()
    if not raw:
        return dt.timedelta(minutes=2)
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"{RETRY_DELAY_ENV} must be a number of seconds, got {raw!r}") from None
    if seconds <= 0:
        raise ValueError(f"{RETRY_DELAY_ENV} must be positive, got {raw!r}")
    return dt.timedelta(seconds=seconds)


DEFAULT_TASK_ARGS: dict[str, Any] = {
    "owner": "data-engineering",
    "retries": 8,
    "retry_delay": retry_delay_from_env(),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": dt.timedelta(minutes=30),
    "execution_timeout": dt.timedelta(minutes=30),
    "pool": API_POOL,
}


#: Stateless, so one instance serves every task of every DAG.
RETRY_POLICY = WeChatRetryPolicy()
