"""DailyReportOperator through Airflow itself (``dag.test``) on the pipeline-loaded demo database.

The report goes to a fake WeCom group robot (a real HTTP server, tests/fixtures/wecom_robot.py)
through a ``wecom_robot`` connection, and to a real Airflow notifier named the way an accounts
file names one (``alert_notifiers``: tests/fixtures/recording_notifier.py keeps each message in
a file), next to a notifier that cannot even be imported: that one is logged, the others still
get the message and the task succeeds. Expected figures come from plain SQL on the stored
rows and from the simulator's truth, never from the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from wechat_datacube_dev.connections import connection_env_var

from tests.fixtures.accounts import account_entry, write_accounts, write_accounts_file
from tests.fixtures.dashboard import BEGIN, DEMO_ACCOUNT, NOW, DemoData
from tests.fixtures.recording_notifier import read_messages
from tests.fixtures.simulator import TEST_APPID
from tests.fixtures.truth import truth_dicts
from tests.fixtures.wecom_robot import FakeWeComRobot, register_wecom_conn
from wechat_datacube.alerts.dispatch import AlertTargets, NotifierSpec
from wechat_datacube.alerts.report_operator import DailyReportOperator
from wechat_datacube.dates import beijing_moment
from wechat_datacube.endpoints import LEGACY
from wechat_datacube.errors import ConfigError

DAY = dt.date(2026, 6, 18)
PG_CONN = "wechat_report_pg"


#: The DAG file of the test: one DailyReportOperator on the daily DAGs' own timetable. dag.test needs the DAG
#: serialized from a bundle, so it is written to a directory the test adds as a DAG bundle.
DAG_FILE = """
import datetime as dt
import json

from airflow.sdk import DAG

from wechat_datacube.alerts.report_operator import DailyReportOperator
from wechat_datacube.dag_factory import daily_timetable


def simulated_now() -> dt.datetime:
    return dt.datetime.fromisoformat({now!r})


with DAG({dag_id!r}, schedule=daily_timetable(), start_date=dt.datetime(2026, 6, 1, tzinfo=dt.UTC), catchup=False):
    DailyReportOperator(task_id="daily_report", account={account!r}, postgres_conn_id={conn_id!r}, schema="wechat",
                        alert_targets=json.loads({targets!r}), clock=simulated_now)
"""
DAG_ID = "wdc_daily_report_test"


def report_dag(directory: Path, monkeypatch: pytest.MonkeyPatch, targets: AlertTargets) -> Any:
    """The test DAG, written to ``directory`` and made a DAG bundle (before the repository's dags folder)."""
    from airflow.dag_processing.dagbag import DagBag

    directory.mkdir()
    (directory / "report_dag.py").write_text(DAG_FILE.format(
        now=NOW.isoformat(), dag_id=DAG_ID, account=DEMO_ACCOUNT, conn_id=PG_CONN, targets=json.dumps(targets.as_json())
    ))
    local = "airflow.dag_processing.bundles.local.LocalDagBundle"
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([
        {"name": "wdc-report-test", "classpath": local, "kwargs": {"path": str(directory)}},
        {"name": "dags-folder", "classpath": local, "kwargs": {}},
    ]))
    bag = DagBag(dag_folder=str(directory))
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


def xcom_of(run: Any, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, key="return_value")
        ).first()
        assert row is not None
        return XComModel.deserialize_value(row)


def test_report_task_sends_the_days_readers_top_articles_and_freshness_through_airflow(
    dashboard_demo: DemoData, airflow_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, wecom_robot: FakeWeComRobot,
) -> None:
    monkeypatch.setenv(connection_env_var(PG_CONN), dashboard_demo.dsn)
    accounts = write_accounts_file(tmp_path, name=DEMO_ACCOUNT, postgres_conn_id=PG_CONN, start_date=BEGIN)
    monkeypatch.setenv("WECHAT_DATACUBE_ACCOUNTS", str(accounts))
    messages = tmp_path / "messages.jsonl"
    robot_conn = register_wecom_conn(monkeypatch, wecom_robot)
    targets = AlertTargets(robots=(robot_conn,), notifiers=(
        NotifierSpec("tests.fixtures.recording_notifier.NoSuchNotifier", "text", {}),
        NotifierSpec("tests.fixtures.recording_notifier.RecordingNotifier", "text", {"path": str(messages)}),
    ))
    dag = report_dag(tmp_path / "dags", monkeypatch, targets)

    # A manual run at D+1 10:00 Beijing covers [D 10:00, D+1 10:00): business day D.
    run = dag.test(logical_date=beijing_moment(DAY + dt.timedelta(days=1), 10))

    assert run.state == "success", [(ti.task_id, ti.state) for ti in run.get_task_instances()]
    output = capfd.readouterr().out + caplog.text
    assert "alert to notifier tests.fixtures.recording_notifier.NoSuchNotifier not sent" in output
    (text,) = read_messages(messages)
    assert wecom_robot.messages == [text]  # the robot got the same markdown, once
    with psycopg.connect(dashboard_demo.dsn) as conn:
        (readers,) = conn.execute("SELECT read_user FROM wechat.daily_readers WHERE account = %s AND ref_date = %s",
                                  (DEMO_ACCOUNT, DAY)).fetchone()
    assert f"demo · 2026-06-18 · {readers:,} readers" in text
    summary = truth_dicts(dashboard_demo.sim, TEST_APPID, "getarticlesummary", DAY, DAY, account=DEMO_ACCOUNT)
    top = sorted(summary, key=lambda r: (-r["int_page_read_user"], r["msgid"]))[:3]
    assert len(top) == 3
    for rank, article in enumerate(top, start=1):
        assert f"{rank}. {article['title']} · {article['int_page_read_user']:,} readers · {article['msgid']}" in text
    for endpoint in LEGACY:
        assert f"**{endpoint}**: 2026-06-18 " in text
    assert "secret" not in text.lower() and "access_token" not in text and wecom_robot.key not in text

    result = xcom_of(run, "daily_report")
    assert result["day"] == "2026-06-18" and result["readers"] == readers
    assert result["top_msgids"] == [a["msgid"] for a in top]
    assert result["sent_to"] == {"robots": 1, "notifiers": 2}


def test_an_account_missing_from_the_accounts_file_is_a_config_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = account_entry(name="shop", postgres_conn_id=PG_CONN, start_date=BEGIN)
    broken = account_entry(name="broken", postgres_conn_id=PG_CONN, start_date=BEGIN, max_active_runs=99)
    monkeypatch.setenv("WECHAT_DATACUBE_ACCOUNTS", str(write_accounts(tmp_path, [good, broken])))

    assert DailyReportOperator(task_id="r", account="shop").account_config().name == "shop"
    with pytest.raises(ConfigError, match="no account named 'nobody' in the accounts file"):
        DailyReportOperator(task_id="r", account="nobody").account_config()
    with pytest.raises(ConfigError, match="account 'broken', field 'max_active_runs'"):
        DailyReportOperator(task_id="r", account="broken").account_config()


def test_a_run_without_a_data_interval_fails_before_reading_anything() -> None:
    with pytest.raises(ConfigError, match="needs the run's business day"):
        DailyReportOperator(task_id="r", account="demo", postgres_conn_id="no_such_conn").execute({})
