"""What the launcher reports: the catchup window, run progress and the counts table."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from wechat_datacube_dev.localrun.report import (
    TableCount,
    catchup_status,
    catchup_window,
    expected_dates,
    format_counts,
    last_scheduled_day,
    table_counts,
)

from wechat_datacube.dates import BEIJING
from wechat_datacube.endpoints import get_endpoint
from wechat_datacube.storage import ensure_schema


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
    now = [TableCount("wechat.user_read", "getuserread", 112, 14, 14, 14)]
    before = [TableCount("wechat.user_read", "getuserread", 100, 13, 13, 14)]
    with_new = format_counts(now, before).splitlines()
    assert with_new[0].split() == ["table", "endpoint", "rows", "new", "dates", "with", "rows", "dates", "loaded"]
    assert with_new[2].split() == ["wechat.user_read", "getuserread", "112", "+12", "14/14", "14/14"]
    assert format_counts(now).splitlines()[2].split() == ["wechat.user_read", "getuserread", "112", "14/14", "14/14"]
    assert len(with_new) == 3  # no note without week or month tables


def test_format_counts_judges_a_week_table_by_its_periods_and_fits_long_names() -> None:
    counts = [
        TableCount("wechat.user_read", "getuserread", 112, 14, 14, 14),
        TableCount("wechat.upstream_msg_dist_month", "getupstreammsgdistmonth", 5, 1, 1, 1),
        TableCount("wechat.upstream_msg_week", "getupstreammsgweek", 8, 1, 2, 2),
    ]
    lines = format_counts(counts).splitlines()
    assert lines[3].split() == ["wechat.upstream_msg_dist_month", "getupstreammsgdistmonth", "5", "1/1", "1/1"]
    assert lines[4].split() == ["wechat.upstream_msg_week", "getupstreammsgweek", "8", "1/2", "2/2"]
    # Columns line up although the names are longer than the old fixed widths.
    assert {len(line) for line in lines[:5]} == {len(lines[1])}
    assert "Mondays / 1sts" in lines[-1]


# 2026-02-24 (Tue) .. 2026-03-09 (Mon): Sundays 03-01 and 03-08 end the weeks of 02-23 and
# 03-02; 02-28 ends February; no other month ends in it.
FIRST, LAST = dt.date(2026, 2, 24), dt.date(2026, 3, 9)


def test_expected_dates_are_every_day_or_the_periods_that_ended() -> None:
    assert len(expected_dates("getusersummary", FIRST, LAST)) == 14
    assert expected_dates("getupstreammsgweek", FIRST, LAST) == [dt.date(2026, 2, 23), dt.date(2026, 3, 2)]
    assert expected_dates("getupstreammsgdistmonth", FIRST, LAST) == [dt.date(2026, 2, 1)]
    assert expected_dates("getupstreammsgmonth", dt.date(2026, 3, 1), dt.date(2026, 3, 14)) == []
    # An endpoint is never expected before its first date.
    assert expected_dates("getarticleread", dt.date(2025, 10, 30), dt.date(2025, 11, 2)) == [
        dt.date(2025, 11, 1), dt.date(2025, 11, 2)]  # fmt: skip


def _store(conn: psycopg.Connection[Any], endpoint: str, key: dict[str, Any], statuses: dict[dt.date, str]) -> None:
    """One typed row per date of ``statuses`` whose status is ``loaded`` and a load_log entry per date."""
    table = get_endpoint(endpoint).table
    response = conn.execute(
        "INSERT INTO wechat.api_response (account, endpoint, begin_date, end_date, status) "
        "VALUES ('demo', %s, %s, %s, 'loaded') RETURNING id",
        (endpoint, min(statuses), max(statuses)),
    ).fetchone()[0]
    for day, status in statuses.items():
        conn.execute("INSERT INTO wechat.load_log (account, endpoint, ref_date, status, response_id) "
                     "VALUES ('demo', %s, %s, %s, %s)", (endpoint, day, status, response))  # fmt: skip
        if status == "loaded":
            values = {"account": "demo", "ref_date": day, **key, "response_id": response}
            conn.execute(
                f"INSERT INTO wechat.{table} ({', '.join(values)}) VALUES ({', '.join(['%s'] * len(values))})",
                tuple(values.values()),
            )


def test_table_counts_reads_each_configured_table_by_its_own_dates(fresh_pg: tuple[str, str]) -> None:
    _, dsn = fresh_pg
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    endpoints = ("getusercumulate", "getupstreammsgweek", "getupstreammsgmonth", "getinterfacesummary")
    # Before the first load there is no schema: zeros, and the dates still expected.
    assert [(c.rows, c.days_loaded, c.expected) for c in table_counts(params, "demo", FIRST, LAST, endpoints=endpoints)] \
        == [(0, 0, 14), (0, 0, 2), (0, 0, 1), (0, 0, 14)]  # fmt: skip
    with psycopg.connect(dsn, autocommit=True) as conn:
        ensure_schema(conn, "wechat")
        days = [FIRST + dt.timedelta(days=n) for n in range(14)]
        # The day before the catchup (getusersummary-style lookback) is outside it; one day failed.
        _store(conn, "getusercumulate", {}, {FIRST - dt.timedelta(days=1): "loaded", **dict.fromkeys(days[:-1], "loaded"),
                                             days[-1]: "failed"})  # fmt: skip
        # The week labelled 02-16 ended on 02-22, before the catchup: stored, but not one of its dates.
        _store(conn, "getupstreammsgweek", {"msg_type": 1},
               {dt.date(2026, 2, 16): "loaded", dt.date(2026, 2, 23): "loaded", dt.date(2026, 3, 2): "empty"})
        _store(conn, "getupstreammsgmonth", {"msg_type": 1}, {dt.date(2026, 1, 1): "loaded"})
    counts = table_counts(params, "demo", FIRST, LAST, endpoints=endpoints)
    assert [c.table for c in counts] == ["wechat.user_cumulate", "wechat.upstream_msg_week", "wechat.upstream_msg_month",
                                         "wechat.interface_summary"]  # fmt: skip
    assert [(c.rows, c.days_with_rows, c.days_loaded, c.expected) for c in counts] == [
        (14, 13, 13, 14),  # 15 rows stored, 13 of the catchup's days; the failed day is not done
        (2, 1, 2, 2),  # an empty week is done without rows
        (1, 0, 0, 1),  # January is stored; February (ended 02-28) is not
        (0, 0, 0, 14),
    ]
