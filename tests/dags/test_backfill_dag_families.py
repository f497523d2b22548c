"""The bulk backfill DAG (`dag.test`) for the user, message and interface families: exact calls, stored truth, rerun.

The range starts on a Thursday and ends on a Tuesday, so the week endpoints must take the
week that began before it and leave the week still running at its end; the month endpoints
take the three months that end inside it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dags.test_backfill_dag import build_dag, data_calls, report_of, states
from tests.fixtures.accounts import write_accounts_file
from tests.fixtures.simulator import TEST_APPID
from tests.fixtures.truth import stored_rows, truth_rows
from tests.fixtures.wechat_conn import register_wechat_conn
from wechat_datacube.endpoints import FAMILIES, get_endpoint
from wechat_datacube.periods import labels_ending_between
from wechat_datacube.tokens import clear_token_memo

ACCOUNT = "audience"
BEGIN = dt.date(2026, 1, 8)  # a Thursday
END = dt.date(2026, 4, 7)  # a Tuesday: 90 days
NEW_ENDPOINTS = tuple(e for family in ("user", "message", "interface") for e in FAMILIES[family])
#: Calls written out by hand, not recomputed with the planner: ceil(90 / span) for daily
#: endpoints (spans 7, 7, 7, 1, 15, 30, 1); 13 weeks end on Sundays 01-11 .. 04-05 (one call
#: each at span 1, three Mondays per call at span 15: 3+3+3+3+1); January..March end inside.
EXPECTED_CALLS = {
    "getusersummary": 13, "getusercumulate": 13, "getupstreammsg": 13, "getupstreammsghour": 90,
    "getupstreammsgweek": 13, "getupstreammsgmonth": 3, "getupstreammsgdist": 6, "getupstreammsgdistweek": 5,
    "getupstreammsgdistmonth": 3, "getinterfacesummary": 3, "getinterfacesummaryhour": 90,
}


@pytest.fixture
def backfill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, simulator: Any, fresh_pg: tuple[str, str], airflow_db: str
) -> Iterator[Any]:
    accounts = write_accounts_file(
        tmp_path, name=ACCOUNT, postgres_conn_id=fresh_pg[0], start_date=END, endpoints="[user, message, interface]"
    )
    monkeypatch.setenv("WECHAT_DATACUBE_ACCOUNTS", str(accounts))
    register_wechat_conn(monkeypatch, simulator.base_url, f"wechat_{ACCOUNT}")
    clear_token_memo()
    yield build_dag()
    clear_token_memo()


def run(dag: Any) -> Any:
    return dag.test(run_conf={"begin_date": BEGIN.isoformat(), "end_date": END.isoformat()})


def test_ninety_days_of_the_three_families_take_one_call_per_window_and_store_the_truth(
    backfill: Any, simulator: Any, fresh_pg: tuple[str, str]
) -> None:
    dag_run = run(backfill)

    assert dag_run.state == "success", states(dag_run)
    assert data_calls(simulator, NEW_ENDPOINTS) == EXPECTED_CALLS
    report = report_of(dag_run)
    assert (report["state"], report["missing_windows"]) == ("complete", 0), report
    for endpoint in NEW_ENDPOINTS:
        labels = labels_ending_between(BEGIN, END, get_endpoint(endpoint).period)
        stored = stored_rows(fresh_pg[1], endpoint, labels[0], labels[-1], account=ACCOUNT)
        assert stored and stored == truth_rows(simulator, TEST_APPID, endpoint, labels[0], labels[-1], account=ACCOUNT)
    weeks = stored_rows(fresh_pg[1], "getupstreammsgweek", BEGIN - dt.timedelta(days=7), END, account=ACCOUNT)
    assert min(row[0] for row in weeks) == '"2026-01-05"' and max(row[0] for row in weeks) == '"2026-03-30"'


def test_a_second_run_makes_no_data_calls(backfill: Any, simulator: Any) -> None:
    assert run(backfill).state == "success"
    simulator.state.reset_counters()

    dag_run = run(backfill)

    assert dag_run.state == "success", states(dag_run)
    assert data_calls(simulator, NEW_ENDPOINTS) == dict.fromkeys(NEW_ENDPOINTS, 0)
