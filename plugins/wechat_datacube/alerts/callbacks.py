"""The Airflow callbacks that turn task failures and missed deadlines into alerts.

* :func:`task_failure_callback` — every API task's ``on_failure_callback`` when its account
  has alert targets (the daily DAGs) and every backfill load task's (it reads the targets
  from the task, so one callback serves every account of a run): one event per task that
  failed for good. Retries are not failures: a task that retries reports nothing.
* :func:`daily_run_late` — the :class:`~airflow.sdk.definitions.deadline.DeadlineAlert`
  callback of the daily DAGs (a ``SyncCallback``: the executor runs it, no triggerer
  needed). Airflow creates a deadline for every run, catchup runs of old days included,
  whose deadline passed long ago: those would all fire at once, so only a deadline missed
  within :data:`~wechat_datacube.alerts.events.ALERT_HORIZON` is reported.

Both never raise: a failed alert is logged and the task's or run's state is untouched.
Everything they need is imported when they run: the DAG files import this module at every
parse.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from wechat_datacube.errors import redact_secrets

log = logging.getLogger(__name__)


def task_failure_callback(context: Mapping[str, Any]) -> None:
    """``on_failure_callback``: send the failed task's event to its account's targets."""
    try:
        from wechat_datacube.alerts.builders import event_from_context
        from wechat_datacube.alerts.dispatch import AlertTargets, deliver

        targets = AlertTargets.from_json(getattr(context.get("task"), "alert_targets", None))
        if targets:
            deliver([event_from_context(context)], targets, context)
    except Exception as exc:  # noqa: BLE001 - an alert never changes what happened to the task
        log.warning("failure alert not sent: %s", redact_secrets(f"{type(exc).__name__}: {exc}"))


def _as_datetime(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _run_link(dag_run: Mapping[str, Any]) -> str | None:
    try:
        from airflow.sdk.configuration import conf

        base = conf.get("api", "base_url", fallback="http://localhost:8080/").rstrip("/")
    except Exception:  # noqa: BLE001 - a link is a convenience
        return None
    run_id = dag_run.get("dag_run_id") or dag_run.get("run_id")
    return f"{base}/dags/{dag_run.get('dag_id')}/runs/{quote(str(run_id))}" if run_id else None


def daily_run_late(context: Mapping[str, Any] | None = None, *, account: str, targets: Mapping[str, Any],
                   now: dt.datetime | None = None) -> None:
    """DeadlineAlert callback: the daily run of ``account`` had not finished by its deadline."""
    try:
        from wechat_datacube.alerts.builders import run_late_event
        from wechat_datacube.alerts.dispatch import deliver
        from wechat_datacube.alerts.events import ALERT_HORIZON

        context = context or {}
        dag_run = dict(context.get("dag_run") or {})
        deadline = _as_datetime((context.get("deadline") or {}).get("deadline_time"))
        now = now or dt.datetime.now(dt.UTC)
        if deadline is not None and now - deadline > ALERT_HORIZON:
            log.info("deadline %s of %s missed long ago (a catchup run): not alerted", deadline, dag_run.get("run_id"))
            return
        start = _as_datetime(dag_run.get("data_interval_start") or dag_run.get("logical_date"))
        business_date = None
        if start is not None:
            from wechat_datacube.dates import to_beijing_date

            business_date = to_beijing_date(start).isoformat()
        event = run_late_event(account=account, dag_run=dag_run, deadline=deadline, business_date=business_date,
                               link=_run_link(dag_run))
        deliver([event], targets, context)
    except Exception as exc:  # noqa: BLE001 - as above
        log.warning("deadline alert not sent: %s", redact_secrets(f"{type(exc).__name__}: {exc}"))
