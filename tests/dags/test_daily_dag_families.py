"""The user, message and interface families through Airflow itself (`dag.test`) against the simulator + Postgres.

The simulator keeps its own facts (official shapes, Monday / 1st labels, the getusersummary
quirk), so these runs show the registry, the period planning and storage agree with an
independent server: what Postgres holds equals what the server answers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from tests.dags.test_backfill_dag import data_calls
from tests.fixtures.accounts import write_accounts_file
from tests.fixtures.simulator import TEST_APPID
from tests.fixtures.truth import stored_rows, truth_rows
from tests.fixtures.wechat_conn import register_wechat_conn
from wechat_datacube.endpoints import FAMILIES, get_endpoint
from wechat_datacube.periods import label_of
from wechat_datacube.tokens import clear_token_memo

DAGS = Path(__file__).resolve().parents[2] / "dags"
BEIJING = dt.timezone(dt.timedelta(hours=8))
NEW_FAMILIES = ("user", "message", "interface")
NEW_ENDPOINTS = tuple(e for family in NEW_FAMILIES for e in FAMILIES[family])
#: A Sunday that is also a month's last day: every week and month endpoint has a period ending.
SUNDAY_MONTH_END = dt.date(2026, 5, 31)
#: A Wednesday in the middle of a month: only the daily endpoints have something to fetch.
WEDNESDAY = dt.date(2026, 5, 20)


@pytest.fixture
def families_dag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, simulator, fresh_pg, airflow_db  # noqa: ANN001
) -> Iterator[object]:
    accounts = write_accounts_file(
        tmp_path, name="audience", postgres_conn_id=fresh_pg[0], start_date=dt.date(2026, 5, 1),
        endpoints="[user, message, interface]",
    )
    monkeypatch.setenv("WECHAT_DATACUBE_ACCOUNTS", str(accounts))
    register_wechat_conn(monkeypatch, simulator.base_url, "wechat_audience")
    clear_token_memo()
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    yield bag.dags["wechat_datacube_daily__audience"]
    clear_token_memo()


def run_after(business_day: dt.date) -> dt.datetime:
    """A manual run at D+1 10:00 Beijing covers business day D."""
    return dt.datetime.combine(business_day + dt.timedelta(days=1), dt.time(10), tzinfo=BEIJING)


def stored_dates(endpoint: str, business_day: dt.date) -> tuple[dt.date, dt.date]:
    """The ref_dates a run of ``business_day`` stores: the period's label, and getusersummary's day before."""
    spec = get_endpoint(endpoint)
    first = label_of(business_day, spec.period) - dt.timedelta(days=spec.lookback_days)
    return first, label_of(business_day, spec.period)


def test_a_sunday_at_a_month_end_stores_every_new_endpoint_equal_to_the_servers_answers(
    families_dag, simulator, fresh_pg  # noqa: ANN001
) -> None:
    run = families_dag.test(logical_date=run_after(SUNDAY_MONTH_END))

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success" and set(states.values()) == {"success"}, states
    assert data_calls(simulator, NEW_ENDPOINTS) == dict.fromkeys(NEW_ENDPOINTS, 1)  # one round trip each, periods included
    for endpoint in NEW_ENDPOINTS:
        begin, end = stored_dates(endpoint, SUNDAY_MONTH_END)
        stored = stored_rows(fresh_pg[1], endpoint, begin, end, account="audience")
        truth = truth_rows(simulator, TEST_APPID, endpoint, begin, end, account="audience")
        assert stored and stored == truth, endpoint
    # The week is labelled by its Monday and the month by its 1st: nothing else was stored for them.
    week = stored_rows(fresh_pg[1], "getupstreammsgweek", dt.date(2026, 5, 1), dt.date(2026, 5, 31), account="audience")
    assert {row[0] for row in week} == {'"2026-05-25"'}
    month = stored_rows(fresh_pg[1], "getupstreammsgdistmonth", dt.date(2026, 4, 1), dt.date(2026, 5, 31), account="audience")
    assert {row[0] for row in month} == {'"2026-05-01"'}
    # getusersummary asked for Saturday and Sunday in one call: both days are there.
    summary = stored_rows(fresh_pg[1], "getusersummary", dt.date(2026, 5, 30), dt.date(2026, 5, 31), account="audience")
    assert {row[0] for row in summary} == {'"2026-05-30"', '"2026-05-31"'}


def test_a_midweek_day_skips_the_week_and_month_endpoints_without_a_call(
    families_dag, simulator, fresh_pg  # noqa: ANN001
) -> None:
    run = families_dag.test(logical_date=run_after(WEDNESDAY))

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    periodic = {e for e in NEW_ENDPOINTS if get_endpoint(e).period != "day"}
    assert run.state == "success", states
    assert {t for t, s in states.items() if s == "skipped"} == periodic, states
    calls = data_calls(simulator, NEW_ENDPOINTS)
    assert {e for e, n in calls.items() if n} == set(NEW_ENDPOINTS) - periodic
    assert all(calls[e] == 1 for e in set(NEW_ENDPOINTS) - periodic)
