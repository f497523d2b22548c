"""The events the pipeline builds: each kind says what happened, where, and what to do — never a secret."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

from wechat_datacube.alerts.builders import (
    beijing_time,
    event_from_context,
    kept_event,
    not_published_event,
    quota_event,
    run_late_event,
)
from wechat_datacube.alerts.events import AlertEvent, AlertKind
from wechat_datacube.errors import PermanentError, QuotaExceededError, SchemaDriftError, error_for_errcode

LOG_URL = "http://airflow.example/dags/wechat_datacube_daily__shop/runs/r1/tasks/getusershare?try_number=1"


def context(error: BaseException | None, **task: Any) -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="wechat_datacube_daily__shop", run_id="scheduled__2026-06-19", try_number=1,
                         task_id="getusershare", log_url=LOG_URL)
    values = {"account": "shop", "endpoint": "getusershare", "date_from": "", "date_to": "", **task}
    return {"ti": ti, "task": SimpleNamespace(**values), "exception": error,
            "data_interval_start": dt.datetime(2026, 6, 19, 2, tzinfo=dt.UTC)}  # 10:00 Beijing


def test_a_wechat_failure_names_account_endpoint_dates_errcode_meaning_and_what_to_do() -> None:
    error = error_for_errcode(40125, "invalid appsecret", account="shop", endpoint="getusershare",
                              begin_date="2026-06-19", end_date="2026-06-19")
    event = event_from_context(context(error))
    assert (event.kind, event.account, event.endpoint, event.dates, event.errcode) == (
        AlertKind.TASK_FAILED, "shop", "getusershare", "2026-06-19", 40125)
    text = "\n".join(event.details)
    assert "errcode 40125 (permanent): invalid AppSecret: check the connection's password" in text
    assert "task fails at once, no retry" in text  # what the pipeline did, as in the README's table
    assert "**WeChat said**: invalid appsecret" in text
    assert event.link == LOG_URL


def test_a_failure_without_wechat_context_takes_the_runs_business_date() -> None:
    event = event_from_context(context(RuntimeError("psycopg: connection refused")))
    assert (event.kind, event.dates, event.errcode) == (AlertKind.TASK_FAILED, "2026-06-19", None)
    assert "RuntimeError: psycopg: connection refused" in "\n".join(event.details)


def test_explicit_task_dates_win_over_the_data_interval() -> None:
    event = event_from_context(context(RuntimeError("x"), date_from="2026-01-01", date_to="2026-01-31"))
    assert event.dates == "2026-01-01..2026-01-31"


def test_schema_drift_is_its_own_kind_with_the_missing_and_unknown_keys() -> None:
    error = SchemaDriftError("shape changed", missing=["share_count"], unknown=["share_cnt"], account="shop",
                             endpoint="getusershare", begin_date="2026-06-19", end_date="2026-06-19")
    event = event_from_context(context(error))
    assert event.kind is AlertKind.SCHEMA_DRIFT
    text = "\n".join(event.details)
    assert "**missing**: share_count" in text and "**unknown**: share_cnt" in text and "endpoints.py" in text


def test_a_token_in_an_error_never_reaches_the_event() -> None:
    token = "ACCESS-TOKEN-abc123"
    error = PermanentError(f"GET /datacube/getusershare?access_token={token} failed", account="shop")
    event = event_from_context(context(error))
    assert token not in repr(event.as_json())
    assert "access_token=***" in "\n".join(event.details)


def test_a_killed_task_without_exception_still_makes_an_event() -> None:
    event = event_from_context(context(None))
    assert event.kind is AlertKind.TASK_FAILED and "no exception recorded" in "\n".join(event.details)


def test_quota_event_says_when_it_resets_and_whether_a_backfill_stopped() -> None:
    reset = dt.datetime(2026, 6, 20, 16, tzinfo=dt.UTC)  # 00:00 Beijing
    error = QuotaExceededError("quota", reset_at=reset, account="shop", endpoint="getuserread",
                               begin_date="2026-01-01", end_date="2026-01-03", errcode=45009)
    backfill = quota_event(error, backfill=True, stored=4, planned=10)
    daily = quota_event(error, backfill=False, stored=0, planned=1)
    assert backfill.kind is AlertKind.QUOTA_HIT and backfill.errcode == 45009
    assert "**resets at**: 2026-06-21 00:00 (Beijing)" in backfill.details
    assert "backfill stopped on it after 4 of 10 window(s)" in "\n".join(backfill.details)
    assert "retries after the reset" in "\n".join(daily.details)


def test_kept_event_lists_each_day_with_its_reason_and_caps_the_list() -> None:
    days = [dt.date(2026, 6, 1) + dt.timedelta(days=i) for i in range(12)]
    event = kept_event(account="shop", endpoint="getuserread", days=days, reasons=["3 rows stored, 2 answered"] * 12)
    assert event.dates == "2026-06-01..2026-06-12"
    assert event.details[0] == "**2026-06-01**: 3 rows stored, 2 answered"
    assert "… and 2 more day(s)" in event.details


def test_not_published_event_names_the_deadline_in_beijing_time() -> None:
    deadline = dt.datetime(2026, 6, 20, 4, tzinfo=dt.UTC)
    event = not_published_event(account="shop", endpoint="getuserread", days=[dt.date(2026, 6, 19)],
                                deadline=deadline, is_delay=False)
    assert "**deadline**: 2026-06-20 12:00 (Beijing)" in event.details


def test_run_late_event_names_the_business_date_and_the_run() -> None:
    run = {"dag_id": "wechat_datacube_daily__shop", "dag_run_id": "scheduled__x", "state": "running"}
    event = run_late_event(account="shop", dag_run=run, deadline="2026-06-20T04:00:00+00:00",
                           business_date="2026-06-19")
    assert event.kind is AlertKind.RUN_LATE
    assert event.headline == "daily run of 2026-06-19 not finished by 2026-06-20 12:00 (Beijing)"
    assert "run scheduled__x" in event.details[0]


def test_events_survive_the_outbox_round_trip() -> None:
    event = kept_event(account="shop", endpoint="getuserread", days=[dt.date(2026, 6, 1)], reasons=["r"])
    assert AlertEvent.from_json(event.as_json()) == event


def test_beijing_time_of_a_naive_moment_reads_it_as_utc() -> None:
    assert beijing_time(dt.datetime(2026, 6, 19, 16)) == "2026-06-20 00:00 (Beijing)"
