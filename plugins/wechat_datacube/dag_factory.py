"""Builds the daily DAG of one account from its validated config.

Kept out of ``dags/`` so the DAG files stay a few lines long and tests can build a DAG
for any config. Nothing here touches the network or a database: this runs at parse time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from wechat_datacube.accounts import AccountConfig
from wechat_datacube.endpoints import get_endpoint
from wechat_datacube.operators import WeChatDatacubeToPostgresOperator
from wechat_datacube.retry_policy import WeChatRetryPolicy

#: Pool every API task runs in; created by setup (`airflow pools set wechat_api 4 ...`).
API_POOL = "wechat_api"
TIMEZONE = "Asia/Shanghai"
#: 10:00 Beijing: two hours after WeChat publishes the previous day (08:00).
DAILY_CRON = "0 10 * * *"
DAILY_DAG_PREFIX = "wechat_datacube_daily__"

DEFAULT_TASK_ARGS: dict[str, Any] = {
    "owner": "data-engineering",
    "retries": 8,
    "retry_delay": dt.timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": dt.timedelta(minutes=30),
    "execution_timeout": dt.timedelta(minutes=30),
    "pool": API_POOL,
}


def daily_timetable() -> CronDataIntervalTimetable:
    """[D 10:00, D+1 10:00) Beijing, run at D+1 10:00: the interval *start* is the business date.

    A plain cron string would give 3.x's zero-length interval at the run time and the
    task would ask for the wrong day.
    """
    return CronDataIntervalTimetable(DAILY_CRON, timezone=TIMEZONE)


def _doc(account: AccountConfig) -> str:
    lines = [
        f"### WeChat datacube — daily pull for `{account.name}`",
        "",
        account.description or "",
        "",
        "Each run covers the previous Beijing calendar day (the data interval's start in Asia/Shanghai) "
        "and runs at 10:00 Beijing, after WeChat's 08:00 release. One task per endpoint; tasks are "
        f"independent and share the `{API_POOL}` pool. Empty answers before "
        f"{account.ready_deadline_hour:02d}:00 on the next day are retried as *not ready*.",
        "",
        "**Manual runs**: trigger with params `begin_date` / `end_date` (YYYY-MM-DD, Beijing dates) "
        "and optionally a subset of `endpoints`; a trigger without a logical date needs the dates.",
        "",
        "| task | table | max span |",
        "|---|---|---|",
    ]
    for name in account.endpoints:
        spec = get_endpoint(name)
        lines.append(f"| {name} | `{account.schema}.{spec.table}` | {spec.max_span} |")
    return "\n".join(lines)


def build_daily_dag(account: AccountConfig, **overrides: Any) -> DAG:
    """The daily DAG ``wechat_datacube_daily__<name>`` for ``account``."""
    start = dt.datetime.combine(account.start_date, dt.time(10), tzinfo=dt.timezone(dt.timedelta(hours=8)))
    task_args = {**DEFAULT_TASK_ARGS, **overrides.pop("default_args", {})}
    dag = DAG(
        dag_id=f"{DAILY_DAG_PREFIX}{account.name}",
        schedule=daily_timetable(),
        start_date=start,
        catchup=True,
        max_active_runs=account.max_active_runs,
        default_args=task_args,
        tags=["wechat", "datacube", f"account:{account.name}"],
        doc_md=_doc(account),
        params={
            "begin_date": Param(None, type=["null", "string"], format="date", description="First Beijing date (manual runs)."),
            "end_date": Param(None, type=["null", "string"], format="date", description="Last Beijing date (manual runs)."),
            "endpoints": Param(
                [],
                type="array",
                items={"type": "string", "enum": list(account.endpoints)},
                description="Subset of endpoints to run; empty = all.",
            ),
        },
        **overrides,
    )
    with dag:
        for name in account.endpoints:
            active_from, active_until = account.active_range(name)
            WeChatDatacubeToPostgresOperator(
                task_id=name,
                endpoint=name,
                account=account.name,
                wechat_conn_id=account.wechat_conn_id,
                postgres_conn_id=account.postgres_conn_id,
                schema=account.schema,
                begin_date="{{ params.begin_date or '' }}",
                end_date="{{ params.end_date or '' }}",
                selected_endpoints="{{ (params.endpoints or []) | join(',') }}",
                ready_deadline_hour=account.ready_deadline_hour,
                active_from=active_from,
                active_until=active_until,
                retry_policy=WeChatRetryPolicy(),
            )
    return dag
