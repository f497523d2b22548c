"""What the daily DAG of an account with alert targets carries: failure callbacks, a deadline alert, a report task.

Built from accounts-file entries as the DAG file builds them; the alerts firing for real
are tested in tests/integration/alerts/ (dag.test) and tests/dags/test_alerts_scheduler.py
(a real scheduler).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.definitions.deadline import DeadlineReference, SyncCallback

from tests.fixtures.recording_notifier import RecordingNotifier, read_messages
from wechat_datacube.accounts import parse_account
from wechat_datacube.alerts.callbacks import daily_run_late, task_failure_callback
from wechat_datacube.dag_factory import build_daily_dag, deadline_interval
from wechat_datacube.endpoints import LEGACY

BASE = {"name": "shop", "wechat_conn_id": "wechat_shop", "postgres_conn_id": "wechat_pg", "start_date": "2026-06-01",
        "endpoints": ["legacy"]}


def dag_for(**fields: Any) -> Any:
    return build_daily_dag(parse_account({**BASE, **fields}))


def test_a_dag_without_alert_targets_carries_no_alerting() -> None:
    dag = dag_for()
    assert not dag.deadline
    assert all(not task.on_failure_callback and task.alert_targets is None for task in dag.tasks)
    assert [t.task_id for t in dag.tasks] == list(LEGACY)


def test_every_api_task_reports_its_failure_to_the_accounts_targets() -> None:
    dag = dag_for(alert_conn_ids=["wecom_ops"])
    for task in dag.tasks:
        assert task.on_failure_callback == [task_failure_callback]
        assert task.alert_targets == {"robots": ["wecom_ops"], "notifiers": [], "outbox_conn_id": "wechat_pg"}


def test_the_deadline_alert_fires_at_the_accounts_beijing_hour_on_the_day_after_the_business_date() -> None:
    dag = dag_for(alert_conn_ids=["wecom_ops"], alert_deadline_hour=13)
    (alert,) = dag.deadline
    assert alert.reference == DeadlineReference.DAGRUN_LOGICAL_DATE
    # logical date = D 10:00 Beijing (the interval start); the deadline D+1 13:00 Beijing
    assert alert.interval == dt.timedelta(hours=27)
    assert isinstance(alert.callback, SyncCallback)
    assert alert.callback.path == f"{daily_run_late.__module__}.{daily_run_late.__qualname__}"
    assert alert.callback.kwargs == {"account": "shop", "targets": dag.tasks[0].alert_targets}
    json.dumps(alert.callback.kwargs)  # serialised with the DAG


def test_no_deadline_alert_when_the_account_sets_none() -> None:
    dag = dag_for(alert_conn_ids=["wecom_ops"], alert_deadline_hour=None)
    assert not dag.deadline and dag.tasks[0].on_failure_callback == [task_failure_callback]


@pytest.mark.parametrize(("hour", "hours_after_logical_date"), [(12, 26), (23, 37), (11, 25), (10, 48), (0, 38)])
def test_a_deadline_hour_not_after_the_10_oclock_run_falls_on_the_next_day(hour: int, hours_after_logical_date: int) -> None:
    assert deadline_interval(hour) == dt.timedelta(hours=hours_after_logical_date)


def test_the_daily_report_runs_after_every_endpoint_task_whatever_became_of_them() -> None:
    dag = dag_for(alert_conn_ids=["wecom_ops"], daily_report=True)
    report = dag.get_task("daily_report")
    assert report.trigger_rule == "all_done"
    assert report.upstream_task_ids == set(LEGACY)
    assert report.alert_targets == dag.get_task("getusershare").alert_targets


def late_context(deadline: dt.datetime) -> dict[str, Any]:
    run = {"dag_id": "wechat_datacube_daily__shop", "dag_run_id": "scheduled__2026-06-19T02:00:00+00:00",
           "data_interval_start": "2026-06-19T02:00:00+00:00", "state": "running"}
    return {"dag_run": run, "deadline": {"id": "x", "deadline_time": deadline.isoformat()}}


def recording_targets(path: Path) -> dict[str, Any]:
    notifier = f"{RecordingNotifier.__module__}.{RecordingNotifier.__qualname__}"
    return {"robots": [], "notifiers": [{"notifier": notifier, "message_field": "text", "kwargs": {"path": str(path)}}]}


def test_a_deadline_missed_just_now_is_reported_with_the_business_date(tmp_path: Path) -> None:
    deadline = dt.datetime(2026, 6, 20, 4, tzinfo=dt.UTC)
    path = tmp_path / "messages.jsonl"
    daily_run_late(late_context(deadline), account="shop", targets=recording_targets(path),
                   now=deadline + dt.timedelta(minutes=1))
    (message,) = read_messages(path)
    assert "2026-06-19" in message and "shop" in message and "12:00 (Beijing)" in message


def test_a_deadline_missed_days_ago_is_a_catchup_run_and_not_reported(tmp_path: Path) -> None:
    deadline = dt.datetime(2026, 6, 20, 4, tzinfo=dt.UTC)
    path = tmp_path / "messages.jsonl"
    daily_run_late(late_context(deadline), account="shop", targets=recording_targets(path),
                   now=deadline + dt.timedelta(days=3))
    assert not path.exists()


def test_a_notifier_that_cannot_be_imported_does_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    targets = {"notifiers": [{"notifier": "no.such.Notifier", "message_field": "text", "kwargs": {}}]}
    deadline = dt.datetime.now(dt.UTC)
    daily_run_late(late_context(deadline), account="shop", targets=targets)
    assert "no.such.Notifier" in caplog.text and "not sent" in caplog.text


def test_a_failed_alert_logs_its_error_without_the_robot_key(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # The recording notifier fails to open this "path", and the OS error quotes it, key and all.
    notifier = f"{RecordingNotifier.__module__}.{RecordingNotifier.__qualname__}"
    path = f"{tmp_path}/missing-dir/send?key=ROBOT-KEY-7f3a"
    targets = {"notifiers": [{"notifier": notifier, "message_field": "text", "kwargs": {"path": path}}]}
    daily_run_late(late_context(dt.datetime.now(dt.UTC)), account="shop", targets=targets)
    assert "not sent" in caplog.text and "send?key=***" in caplog.text
    assert "ROBOT-KEY-7f3a" not in caplog.text


class _Exploding:
    """A task whose dates cannot be read, with an error text that quotes a webhook URL."""

    account, endpoint = "shop", "getusershare"

    @property
    def date_from(self) -> str:
        raise RuntimeError("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=ROBOT-KEY-9c1d")

    alert_targets = {"robots": ["wecom_ops"]}


def test_a_failure_callback_that_breaks_logs_without_the_robot_key(caplog: pytest.LogCaptureFixture) -> None:
    task_failure_callback({"task": _Exploding(), "exception": RuntimeError("boom")})
    assert "failure alert not sent" in caplog.text and "key=***" in caplog.text
    assert "ROBOT-KEY-9c1d" not in caplog.text
