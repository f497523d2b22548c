"""What the launcher reports: the catchup window, run progress and the counts table."""

from __future__ import annotations

import datetime as dt

from wechat_datacube_dev.localrun.report import (
    TableCount,
    catchup_status,
    catchup_window,
    format_counts,
    last_scheduled_day,
)

from wechat_datacube.dates import BEIJING


def _beijing(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BEIJING)


def test_last_scheduled_day_moves_at_ten_beijing() -> None:
    assert last_scheduled_day(_beijing(2026, 3, 10, 9, 59)) == dt.date(2026, 3, 8)
    assert last_scheduled_day(_beijing(2026, 3, 10, 10, 0)) == dt.date(2026, 3, 9)
    # 03:00 UTC on the 10th is 11:00 in Beijing.
    assert last_scheduled_day(dt.datetime(2026, 3, 10, 3, 0, tzinfo=dt.UTC)) == dt.date(2026, 3, 9)


def test_catchup_window_has_the_requested_number_of_days() -> None:
    first, last = catchup_window(14, _beijing(2026, 3, 10, 12))
    assert (first, last) == (dt.date(2026, 2, 24), dt.date(2026, 3, 9))
    assert (last - first).days + 1 == 14


def _run(day: str, state: str, run_type: str = "scheduled") -> dict[str, str]:
    # data_interval_start is D 10:00 Beijing = D 02:00 UTC, as the REST API returns it.
    return {"dag_run_id": f"{run_type}__{day}", "run_type": run_type, "state": state,
            "data_interval_start": f"{day}T02:00:00Z"}


def test_catchup_status_counts_scheduled_runs_of_the_window_only() -> None:
    runs = [
        _run("2026-03-01", "success"),
        _run("2026-03-02", "running"),
        _run("2026-03-03", "success", run_type="manual"),
        _run("2026-02-28", "success"),  # before the window
    ]
    status = catchup_status(runs, dt.date(2026, 3, 1), dt.date(2026, 3, 3))
    assert status.days == 3
    assert status.succeeded == 1
    assert not status.complete
    assert status.line() == "catchup 2026-03-01..2026-03-03: 1/3 days done (1 success, 1 running, 1 not created yet)"


def test_catchup_status_reports_failed_runs_and_completion() -> None:
    failed = catchup_status([_run("2026-03-01", "failed")], dt.date(2026, 3, 1), dt.date(2026, 3, 1))
    assert [r["dag_run_id"] for r in failed.failed_runs()] == ["scheduled__2026-03-01"]
    done = catchup_status([_run("2026-03-01", "success")], dt.date(2026, 3, 1), dt.date(2026, 3, 1))
    assert done.complete and not done.failed_runs()


def test_format_counts_shows_new_rows_only_against_earlier_counts() -> None:
    now = [TableCount("wechat.user_read", "getuserread", 112, 14, 14)]
    before = [TableCount("wechat.user_read", "getuserread", 100, 13, 13)]
    with_new = format_counts(now, 14, before).splitlines()
    assert with_new[0].split() == ["table", "endpoint", "rows", "new", "days", "with", "rows", "days", "loaded"]
    assert with_new[2].split() == ["wechat.user_read", "getuserread", "112", "+12", "14/14", "14/14"]
    assert format_counts(now, 14).splitlines()[2].split() == ["wechat.user_read", "getuserread", "112", "14/14", "14/14"]
