"""Every DAG file imports cleanly (no import error, no warning) and has the promised shape."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import CronDataIntervalTimetable
from airflow.timetables.interval import CronDataIntervalTimetable as CoreCronDataIntervalTimetable

from wechat_datacube.accounts import parse_account
from wechat_datacube.dag_factory import API_POOL, DAILY_DAG_PREFIX, build_daily_dag
from wechat_datacube.endpoints import LEGACY
from wechat_datacube.retry_policy import WeChatRetryPolicy

DAGS = Path(__file__).resolve().parents[2] / "dags"

ACCOUNTS_YAML = """
accounts:
  - {name: alpha, wechat_conn_id: wechat_alpha, postgres_conn_id: wechat_pg, start_date: 2026-01-01, endpoints: [legacy]}
  - name: beta
    wechat_conn_id: wechat_beta
    postgres_conn_id: wechat_pg
    start_date: 2025-06-01
    endpoints: [legacy, replacement]
    cutover_date: 2026-01-01
    max_active_runs: 2
"""


@pytest.fixture
def dagbag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DagBag:
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text(ACCOUNTS_YAML)
    monkeypatch.setenv("WECHAT_DATACUBE_ACCOUNTS", str(accounts))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return DagBag(dag_folder=str(DAGS))


def test_every_dag_file_imports_without_errors_or_warnings(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert not getattr(dagbag, "captured_warnings", {}), dagbag.captured_warnings
    assert {f"{DAILY_DAG_PREFIX}alpha", f"{DAILY_DAG_PREFIX}beta"} <= set(dagbag.dag_ids)


def test_daily_dag_has_one_independent_task_per_endpoint(dagbag: DagBag) -> None:
    dag = dagbag.dags[f"{DAILY_DAG_PREFIX}alpha"]
    assert sorted(dag.task_ids) == sorted(LEGACY)
    for task in dag.tasks:
        assert task.upstream_task_ids == set() and task.downstream_task_ids == set()


def test_daily_schedule_covers_the_previous_beijing_day_after_the_release(dagbag: DagBag) -> None:
    dag = dagbag.dags[f"{DAILY_DAG_PREFIX}alpha"]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.catchup is True
    assert dag.max_active_runs == 3
    beijing = dt.timezone(dt.timedelta(hours=8))
    assert dag.start_date == dt.datetime(2026, 1, 1, 10, tzinfo=beijing)
    # The first interval starts on the start date at 10:00 Beijing and lasts one day.
    core = CoreCronDataIntervalTimetable(dag.timetable.expression, dag.timetable.timezone)
    info = core.next_dagrun_info(last_automated_data_interval=None, restriction=_restriction(dag))
    assert info.data_interval.start == dt.datetime(2026, 1, 1, 2, tzinfo=dt.UTC)
    assert info.data_interval.end - info.data_interval.start == dt.timedelta(days=1)
    assert info.run_after == info.data_interval.end


def _restriction(dag):  # noqa: ANN001, ANN202 - tiny helper over Airflow's internal type
    from airflow.timetables.base import TimeRestriction

    return TimeRestriction(earliest=dag.start_date, latest=None, catchup=True)


def test_api_tasks_share_the_pool_and_retry_with_backoff_and_the_wechat_policy(dagbag: DagBag) -> None:
    dag = dagbag.dags[f"{DAILY_DAG_PREFIX}alpha"]
    for task in dag.tasks:
        assert task.pool == API_POOL
        assert task.retries >= 3
        assert task.retry_exponential_backoff == 2.0
        assert isinstance(task.retry_policy, WeChatRetryPolicy)
        assert task.execution_timeout is not None


def test_dag_is_documented_tagged_and_takes_manual_params(dagbag: DagBag) -> None:
    dag = dagbag.dags[f"{DAILY_DAG_PREFIX}beta"]
    assert "account:beta" in dag.tags and "wechat" in dag.tags
    assert "getarticleread" in dag.doc_md
    assert "begin_date" in dag.doc_md and dag.get_task("getusershare").date_from.startswith("{{")
    assert dag.max_active_runs == 2


def test_cutover_splits_families_by_date(dagbag: DagBag) -> None:
    dag = dagbag.dags[f"{DAILY_DAG_PREFIX}beta"]
    assert dag.get_task("getusershare").active_until == dt.date(2025, 12, 31)
    assert dag.get_task("getarticleread").active_from == dt.date(2026, 1, 1)


def test_broken_account_is_a_warning_and_spares_the_other_dags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text(
        ACCOUNTS_YAML + "  - {name: gamma, wechat_conn_id: x, postgres_conn_id: y, start_date: 2013-01-01, endpoints: [legacy]}\n"
    )
    monkeypatch.setenv("WECHAT_DATACUBE_ACCOUNTS", str(accounts))
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert {f"{DAILY_DAG_PREFIX}alpha", f"{DAILY_DAG_PREFIX}beta"} <= set(bag.dag_ids)
    assert f"{DAILY_DAG_PREFIX}gamma" not in bag.dag_ids
    messages = [str(w) for ws in bag.captured_warnings.values() for w in ws]
    assert any("'gamma'" in m and "start_date" in m for m in messages), messages


def test_factory_builds_without_touching_network_or_database() -> None:
    # Connections and the DB do not exist here: building must not need them.
    account = parse_account(
        {"name": "solo", "wechat_conn_id": "nope", "postgres_conn_id": "nope", "start_date": "2026-01-01", "endpoints": ["getusershare"]}
    )
    dag = build_daily_dag(account)
    assert dag.task_ids == ["getusershare"]


#: Modules only a running task needs. Each DAG file is parsed in a process of its own,
#: so whatever a DAG file drags in is paid at every parse (bench/parse_time.py).
RUN_TIME_ONLY = (
    "wechat_datacube.backfill_plan",
    "wechat_datacube.dates",
    "wechat_datacube.hook",
    "wechat_datacube.run_conf",
    "wechat_datacube.storage",
    "wechat_datacube.tokens",
    "wechat_datacube.transport",
    "wechat_datacube.window_loader",
    "wechat_datacube.windows",
)

PARSE_ONE_FILE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
before = set(sys.modules)
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
print(json.dumps(sorted(m for m in set(sys.modules) - before if m.startswith("wechat_datacube"))))
"""


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_parsing_a_dag_file_imports_no_run_time_module(dag_file: str, tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text(ACCOUNTS_YAML)
    env = {**os.environ, "WECHAT_DATACUBE_ACCOUNTS": str(accounts)}
    out = subprocess.run(
        [sys.executable, "-c", PARSE_ONE_FILE, str(DAGS / dag_file)], env=env, capture_output=True, text=True, check=True
    ).stdout
    imported = json.loads(out.strip().splitlines()[-1])
    assert "wechat_datacube.operators" in imported  # the check sees the package's modules
    assert not set(imported) & set(RUN_TIME_ONLY), imported
    if dag_file == "wechat_datacube_backfill.py":  # no accounts file read at parse: see its params
        assert "wechat_datacube.accounts" not in imported
