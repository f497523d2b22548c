"""Every DAG file imports cleanly (no import error, no warning) and has the promised shape; a broken accounts file shows."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import structlog
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import CronDataIntervalTimetable
from airflow.timetables.interval import CronDataIntervalTimetable as CoreCronDataIntervalTimetable

from wechat_datacube.accounts import AccountConfigError, parse_account
from wechat_datacube.dag_factory import build_daily_dag
from wechat_datacube.dag_settings import API_POOL, DAILY_DAG_PREFIX
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


# --- a broken accounts file: what Airflow 3.3 shows, and what still loads --------------------

CONFIG_ERROR_TAG = "config-error"
FILE_ERROR_DAG_ID = f"{DAILY_DAG_PREFIX}accounts-file-error"
BROKEN_YAML = ACCOUNTS_YAML + (
    "  - {name: gamma, wechat_conn_id: x, postgres_conn_id: y, start_date: 2013-01-01, endpoints: [legacy]}\n"
    # YAML builds this "date" while loading: it used to fail the whole file, every account's DAG gone.
    "  - {name: delta, wechat_conn_id: x, postgres_conn_id: y, start_date: 2026-02-30, endpoints: [legacy]}\n"
    "  - {name: Epsilon, wechat_conn_id: x, postgres_conn_id: y, start_date: 2026-01-01, endpoints: [legacy]}\n"
    "  - {name: alpha, wechat_conn_id: x, postgres_conn_id: y, start_date: 2026-01-01, endpoints: [legacy]}\n"
)
#: dag id -> (account, field, problem) the broken entries of BROKEN_YAML must be shown with.
BROKEN = {
    f"{DAILY_DAG_PREFIX}gamma": ("gamma", "start_date", "2014-12-01"),
    f"{DAILY_DAG_PREFIX}delta": ("delta", "start_date", "'2026-02-30' (line 12) is not a valid date (day is out of range"),
    f"{DAILY_DAG_PREFIX}invalid-entry-5": ("Epsilon", "name", "must match [a-z][a-z0-9_]*"),
    f"{DAILY_DAG_PREFIX}invalid-entry-6": ("alpha", "name", "used by more than one account (entries #1 and #6)"),
}


def daily_bag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str | bytes) -> DagBag:
    accounts = tmp_path / "accounts.yaml"
    accounts.write_bytes(text if isinstance(text, bytes) else text.encode())
    monkeypatch.setenv("WECHAT_DATACUBE_ACCOUNTS", str(accounts))
    return DagBag(dag_folder=str(DAGS / "wechat_datacube_daily.py"))


def assert_reports(dag, account: str, field: str, problem: str) -> None:  # noqa: ANN001 - an SDK DAG
    """``dag`` is a broken entry's DAG: unscheduled, tagged, and its description, docs and task say what is wrong."""
    assert CONFIG_ERROR_TAG in dag.tags
    assert type(dag.timetable).__name__ == "NullTimetable"  # never scheduled
    for text in (dag.description, dag.doc_md):
        assert f"account '{account}', field '{field}'" in text and problem in text, text
    (task,) = dag.tasks
    assert task.retries == 0
    with pytest.raises(AccountConfigError, match=re.escape(f"account '{account}', field '{field}'")):
        task.execute({})


def test_a_broken_account_gets_a_dag_that_says_what_is_wrong_and_spares_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bag = daily_bag(tmp_path, monkeypatch, BROKEN_YAML)
    # No import error (in Airflow 3.3 it would mark every DAG of the file stale: see below).
    assert bag.import_errors == {} and bag.captured_warnings == {}
    assert set(bag.dag_ids) == {f"{DAILY_DAG_PREFIX}alpha", f"{DAILY_DAG_PREFIX}beta", *BROKEN}
    for good in ("alpha", "beta"):
        dag = bag.dags[f"{DAILY_DAG_PREFIX}{good}"]
        assert CONFIG_ERROR_TAG not in dag.tags and isinstance(dag.timetable, CronDataIntervalTimetable)
    assert sorted(bag.dags[f"{DAILY_DAG_PREFIX}alpha"].task_ids) == sorted(LEGACY)  # the first alpha entry
    for dag_id, (account, field, problem) in BROKEN.items():
        assert_reports(bag.dags[dag_id], account, field, problem)
    assert "account:gamma" in bag.dags[f"{DAILY_DAG_PREFIX}gamma"].tags
    assert "account:alpha" not in bag.dags[f"{DAILY_DAG_PREFIX}invalid-entry-6"].tags  # not alpha's DAG


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("accounts: [unclosed\n", "not valid YAML (while parsing a flow sequence"),
        ("Dear team, please add our new account.\n", "expected a mapping with an 'accounts' list, got the value"),
        ("- {name: shop}\n", "expected a mapping with an 'accounts' list, got a list"),
        (b"\x89PNG\r\n\x1a\n\x00", "not a text (UTF-8) file"),
    ],
)
def test_an_accounts_file_that_is_not_one_is_one_dag_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | bytes, problem: str
) -> None:
    bag = daily_bag(tmp_path, monkeypatch, content)
    assert bag.import_errors == {} and bag.captured_warnings == {}
    assert bag.dag_ids == [FILE_ERROR_DAG_ID]
    dag = bag.dags[FILE_ERROR_DAG_ID]
    assert CONFIG_ERROR_TAG in dag.tags and type(dag.timetable).__name__ == "NullTimetable"
    path = tmp_path / "accounts.yaml"
    assert dag.description.startswith(f"NOT LOADED: accounts file {path}: ")
    assert problem in dag.description and "Traceback" not in dag.doc_md and str(path) in dag.doc_md
    (task,) = dag.tasks
    with pytest.raises(AccountConfigError, match=re.escape(problem)):
        task.execute({})


# The same file through the DAG processor's own parse function and its own write to the
# metadata DB: the rows the UI's DAG list and import-error list (REST /api/v2/dags and
# /api/v2/importErrors) are read from. tests/dags/test_accounts_file_in_the_ui.py asks a
# running api-server and dag-processor the same.

UI_BUNDLE = "wdc-accounts-file-test"


def _parse_and_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, extra_import_error: str | None = None
) -> None:
    """What the DAG processor does with the daily file: parse it in-process, store the result in the metadata DB.

    ``extra_import_error``: also report this import error for the file (what raising from
    the DAG file would add), to show what Airflow does with the file's DAGs then.
    """
    from airflow.dag_processing.manager import DagFileProcessorManager
    from airflow.dag_processing.processor import DagFileParseRequest, _parse_file
    from airflow.models.dagbundle import DagBundleModel
    from airflow.utils.session import create_session

    accounts = tmp_path / "accounts.yaml"
    accounts.write_text(text)
    bundle = tmp_path / "bundle"
    bundle.mkdir(exist_ok=True)
    (bundle / "wechat_datacube_daily.py").write_text((DAGS / "wechat_datacube_daily.py").read_text())
    monkeypatch.setenv("WECHAT_DATACUBE_ACCOUNTS", str(accounts))
    request = DagFileParseRequest(file=str(bundle / "wechat_datacube_daily.py"), bundle_path=bundle, bundle_name=UI_BUNDLE)
    result = _parse_file(request, structlog.get_logger())
    assert result is not None
    if extra_import_error is not None:
        result.import_errors = {**(result.import_errors or {}), "wechat_datacube_daily.py": extra_import_error}
    with create_session() as session:
        session.merge(DagBundleModel(name=UI_BUNDLE))
        session.flush()
        DagFileProcessorManager(max_runs=1).persist_parsing_result(
            bundle_name=UI_BUNDLE, bundle_version=None, version_data=None, parsing_result=result,
            run_duration=0.1, relative_fileloc="wechat_datacube_daily.py", session=session,
        )


def _stored() -> tuple[dict[str, tuple[bool, str | None]], list[str]]:
    """{dag_id: (is_stale, description)} of the test bundle's DAGs, and its import errors."""
    from airflow.models.dag import DagModel
    from airflow.models.errors import ParseImportError
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        dags = {
            dm.dag_id: (dm.is_stale, dm.description)
            for dm in session.scalars(select(DagModel).where(DagModel.bundle_name == UI_BUNDLE))
        }
        errors = list(session.scalars(select(ParseImportError.stacktrace).where(ParseImportError.bundle_name == UI_BUNDLE)))
    return dags, errors


def test_the_dag_processor_stores_broken_accounts_where_the_ui_shows_them(
    airflow_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _parse_and_store(tmp_path, monkeypatch, BROKEN_YAML)
    dags, errors = _stored()
    assert errors == []
    assert {dag_id for dag_id, (stale, _) in dags.items() if not stale} == {
        f"{DAILY_DAG_PREFIX}alpha", f"{DAILY_DAG_PREFIX}beta", *BROKEN
    }
    for dag_id, (account, field, problem) in BROKEN.items():
        description = dags[dag_id][1] or ""
        assert f"account '{account}', field '{field}'" in description and problem in description, description
    # Fixed: the account's DAG becomes its daily DAG again, under the same id (the DAG
    # processor deactivates the placeholders no longer in the file on its own).
    _parse_and_store(tmp_path, monkeypatch, BROKEN_YAML.replace("2026-02-30", "2026-02-28"))
    dags, errors = _stored()
    assert errors == [] and dags[f"{DAILY_DAG_PREFIX}delta"] == (False, None)


def test_why_not_an_import_error_it_would_hide_every_dag_of_the_file(
    airflow_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow 3.3 marks every DAG of a file with an import error stale: gone from the UI, never scheduled.

    Guards the design of dags/wechat_datacube_daily.py: if a later Airflow keeps a file's
    DAGs next to its import error, reporting broken accounts as one may become the better choice.
    """
    _parse_and_store(tmp_path, monkeypatch, ACCOUNTS_YAML, extra_import_error="AccountConfigError: account 'gamma' ...")
    dags, errors = _stored()
    assert errors == ["AccountConfigError: account 'gamma' ..."]
    assert dags[f"{DAILY_DAG_PREFIX}alpha"][0] is True and dags[f"{DAILY_DAG_PREFIX}beta"][0] is True
    _parse_and_store(tmp_path, monkeypatch, ACCOUNTS_YAML)  # leave the bundle clean for the next test
    assert _stored()[1] == []


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
