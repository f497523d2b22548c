"""Builds the daily DAG of one account from its validated config.

Kept out of ``dags/`` so the DAG files stay a few lines long and tests can build a DAG
for any config. Nothing here touches the network or a database: this runs at parse time.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable

from wechat_datacube.dag_settings import API_POOL, BACKFILL_DAG_ID, DAILY_DAG_PREFIX, DEFAULT_TASK_ARGS, RETRY_POLICY
from wechat_datacube.endpoints import FAMILIES, get_endpoint
from wechat_datacube.operators import WeChatDatacubeToPostgresOperator
from wechat_datacube.periods import describe

if TYPE_CHECKING:  # the backfill DAG file imports this module without needing the accounts module
    from wechat_datacube.accounts import AccountConfig

#: The daily DAGs' time zone, by name for Airflow's timetable: Beijing time, the zone that
#: ``wechat_datacube.dates`` does every run-time date computation in. That module is not
#: imported here: it is run-time only, and the DAG files must stay cheap to parse.
TIMEZONE = "Asia/Shanghai"
#: 10:00 Beijing: two hours after WeChat publishes the previous day (08:00).
DAILY_HOUR = 10
DAILY_CRON = f"0 {DAILY_HOUR} * * *"

# Manual runs pass their window through the run's conf, not DAG params: docs/benchmarks.md#b3-parse-time
CONF_BEGIN = "{{ (dag_run.conf or {}).get('begin_date') or '' }}"
CONF_END = "{{ (dag_run.conf or {}).get('end_date') or '' }}"
# JSON, so the operator sees what the conf held: a list, or one name as a string (``join``
# would have split a string into its letters, and every task would have skipped).
CONF_ENDPOINTS = "{{ (dag_run.conf or {}).get('endpoints') | tojson }}"
CONF_REPLACE_SHRINKING = "{{ (dag_run.conf or {}).get('replace_shrinking') or '' }}"
#: Longest window a manual run may ask for; longer ranges belong to the backfill DAG, which
#: batches the calls and resumes after the daily quota.
MAX_MANUAL_DAYS = 31


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
        "**Manual runs**: trigger with a run configuration (conf) such as "
        '`{"begin_date": "2026-01-01", "end_date": "2026-01-31", "endpoints": ["getusershare"]}` '
        f"(Beijing dates, at most {MAX_MANUAL_DAYS} days: longer ranges go to the `{BACKFILL_DAG_ID}` DAG; "
        f"`endpoints` optional — a list or one name, endpoints or the families {' / '.join(f'`{f}`' for f in FAMILIES)}, "
        "empty = all; an unknown name fails the run). Without dates a manual run covers the "
        "last complete day before it; a trigger without a logical date needs the dates.",
        "",
        "| task | table | max span | ref_date |",
        "|---|---|---|---|",
    ]
    for name in account.endpoints:
        spec = get_endpoint(name)
        lines.append(f"| {name} | `{account.schema}.{spec.table}` | {spec.max_span} | {describe(spec.period)} |")
    return "\n".join(lines)


def deadline_interval(hour: int) -> dt.timedelta:
    """From a run's logical date (its interval start, D 10:00 Beijing) to the first ``hour``:00
    Beijing after the run is due (D+1 10:00): D+1 ``hour``:00, or D+2 for an hour not after 10."""
    after_due = (hour - DAILY_HOUR) % 24 or 24
    return dt.timedelta(hours=24 + after_due)


def _alerting(account: AccountConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """(task kwargs, DAG kwargs) that send the account's alerts; both empty when it has no targets.

    Imported only for such accounts: a DAG without alerts pays nothing at parse time.
    """
    if not (account.alert_conn_ids or account.alert_notifiers):
        return {}, {}
    targets = account.alert_targets
    from wechat_datacube.alerts.callbacks import task_failure_callback

    task_kwargs = {"alert_targets": targets.as_json(), "on_failure_callback": task_failure_callback}
    if account.alert_deadline_hour is None:
        return task_kwargs, {}
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference, SyncCallback

    from wechat_datacube.alerts.callbacks import daily_run_late

    deadline = DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=deadline_interval(account.alert_deadline_hour),
        callback=SyncCallback(daily_run_late, kwargs={"account": account.name, "targets": targets.as_json()}),
        name=f"daily run of {account.name} not finished by {account.alert_deadline_hour:02d}:00 Beijing",
    )
    return task_kwargs, {"deadline": deadline}


def build_daily_dag(account: AccountConfig, **overrides: Any) -> DAG:
    """The daily DAG ``wechat_datacube_daily__<name>`` for ``account``."""
    day = account.start_date
    start = pendulum.datetime(day.year, day.month, day.day, DAILY_HOUR, tz=TIMEZONE)  # the first run's interval start
    # Task settings go to each operator, not DAG default_args: docs/benchmarks.md#b3-parse-time
    task_args = {**DEFAULT_TASK_ARGS, "retry_policy": RETRY_POLICY, **overrides.pop("task_args", {})}
    alert_task_args, alert_dag_args = _alerting(account)
    dag = DAG(
        dag_id=f"{DAILY_DAG_PREFIX}{account.name}",
        schedule=daily_timetable(),
        start_date=start,
        catchup=True,
        max_active_runs=account.max_active_runs,
        tags=["wechat", "datacube", f"account:{account.name}"],
        doc_md=_doc(account),
        **alert_dag_args,
        **overrides,
    )
    with dag:
        loads = []
        for name in account.endpoints:
            active_from, active_until = account.active_range(name)
            load = WeChatDatacubeToPostgresOperator(
                task_id=name,
                endpoint=name,
                account=account.name,
                wechat_conn_id=account.wechat_conn_id,
                postgres_conn_id=account.postgres_conn_id,
                schema=account.schema,
                begin_date=CONF_BEGIN,
                end_date=CONF_END,
                selected_endpoints=CONF_ENDPOINTS,
                replace_shrinking=CONF_REPLACE_SHRINKING,
                max_manual_days=MAX_MANUAL_DAYS,
                ready_deadline_hour=account.ready_deadline_hour,
                active_from=active_from,
                active_until=active_until,
                **alert_task_args,
                **task_args,
            )
            loads.append(load)
        if account.daily_report:
            _daily_report(account, alert_task_args).set_upstream(loads)
    return dag


def _daily_report(account: AccountConfig, alert_task_args: dict[str, Any]) -> Any:
    """The optional report task: after every endpoint task, whatever became of them."""
    from wechat_datacube.alerts.report_operator import DailyReportOperator

    return DailyReportOperator(
        task_id="daily_report",
        account=account.name,
        postgres_conn_id=account.postgres_conn_id,
        schema=account.schema,
        alert_targets=alert_task_args["alert_targets"],
        trigger_rule="all_done",
        retries=1,
    )
