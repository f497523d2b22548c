"""The bulk backfill DAG through Airflow itself (`dag.test`) against the simulator + Postgres.

Time on the 2-core machine: a 90-day × six-endpoint backfill (403 API calls) takes about
10 s in ``dag.test`` with the default 15 windows per mapped task (29 tasks) and 83 s with
one window per task (403 tasks) — hence the batching. The whole file runs in ~80 s.

The quota block recorded after a 45009 is expired by hand (``blocked_until`` moved into the
past) to stand for the midnight reset; the simulator's fault is cleared the same way.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fixtures.accounts import use_legacy_account
from tests.fixtures.simulator import TEST_APPID
from tests.fixtures.truth import stored_rows, truth_rows
from tests.fixtures.wechat_conn import register_wechat_conn
from wechat_datacube.dates import BEIJING, beijing_today, next_beijing_midnight
from wechat_datacube.endpoints import LEGACY, get_endpoint
from wechat_datacube.tokens import clear_token_memo
from wechat_datacube.windows import calls_needed

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "wechat_datacube_backfill.py"
ACCOUNT = "acme"
#: Ninety days that ended well before today: mature, published, stable in the simulator.
END = beijing_today() - dt.timedelta(days=10)
BEGIN = END - dt.timedelta(days=89)
FULL_CALLS = sum(calls_needed(90, get_endpoint(e).max_span) for e in LEGACY)


def build_dag() -> Any:
    """The DAG file's own builder, with retries off so a failing task fails the test at once."""
    spec = importlib.util.spec_from_file_location("wechat_datacube_backfill_under_test", DAG_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_backfill_dag(default_args={"retries": 0, "retry_delay": dt.timedelta(seconds=1)})


@pytest.fixture
def backfill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, simulator: Any, fresh_pg: tuple[str, str], airflow_db: str
) -> Iterator[Any]:
    """The backfill DAG for one legacy account ``acme`` on the simulator and a fresh database."""
    use_legacy_account(
        monkeypatch, tmp_path, name=ACCOUNT, postgres_conn_id=fresh_pg[0], start_date=END, base_url=simulator.base_url
    )
    clear_token_memo()
    yield build_dag()
    clear_token_memo()


def run(dag: Any, **conf: Any) -> Any:
    params = {"begin_date": BEGIN.isoformat(), "end_date": END.isoformat(), **conf}
    started = time.monotonic()
    dag_run = dag.test(run_conf=params)
    print(f"dag.test took {time.monotonic() - started:.1f} s")
    return dag_run


def data_calls(simulator: Any, endpoints: tuple[str, ...] = LEGACY) -> dict[str, int]:
    """Datacube calls the simulator saw per endpoint of ``endpoints``."""
    paths = simulator.state.counters()["paths"]
    return {e: paths.get(f"/datacube/{e}", 0) for e in endpoints}


def states(dag_run: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for ti in dag_run.get_task_instances():
        out[f"{ti.task_id}:{ti.state}"] = out.get(f"{ti.task_id}:{ti.state}", 0) + 1
    return out


def load_task_states(dag_run: Any) -> dict[str, str]:
    """Mapped load tasks: rendered label -> state."""
    return {ti.rendered_map_index: ti.state for ti in dag_run.get_task_instances() if ti.task_id == "load"}


def report_of(dag_run: Any) -> dict[str, Any]:
    """What the report task pushed as XCom ``report`` (also when it failed the run)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids="report", key="report")
        ).first()
        assert row is not None, states(dag_run)
        return XComModel.deserialize_value(row)


def expire_quota_block(dsn: str) -> None:
    """What midnight in Beijing does: the recorded 45009 block lies in the past."""
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE wechat.quota_block SET blocked_until = now() - interval '1 second'")


def load_log(dsn: str, endpoint: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM wechat.load_log WHERE account = %s AND endpoint = %s GROUP BY status",
            (ACCOUNT, endpoint),
        ).fetchall()
    return dict(rows)


QUOTA_FAULT = {"kind": "errcode", "errcode": 45009, "path": "/datacube/getarticlesummary", "after": 45}


def test_ninety_days_of_six_legacy_endpoints_take_one_call_per_window(backfill: Any, simulator: Any) -> None:
    dag_run = run(backfill)

    assert dag_run.state == "success", states(dag_run)
    # ceil(90 / span): spans 1, 1, 3, 1, 7, 1 (written out, not recomputed with the planner's helper)
    expected = {"getarticlesummary": 90, "getarticletotal": 90, "getuserread": 30, "getuserreadhour": 90,
                "getusershare": 13, "getusersharehour": 90}
    assert data_calls(simulator) == expected
    assert sum(expected.values()) == FULL_CALLS == 403
    report = report_of(dag_run)
    assert (report["state"], report["failed_tasks"], report["missing_windows"], report["next_steps"]) == (
        "complete", 0, 0, []
    )
    assert {e["endpoint"]: (e["windows"], e["loaded"], e["failed"], e["skipped"]) for e in report["endpoints"]} == {
        e: (n, n, 0, 0) for e, n in expected.items()
    }


def test_each_mapped_task_is_labelled_with_account_endpoint_and_dates(backfill: Any, simulator: Any) -> None:
    dag_run = run(backfill, endpoints=["getusershare"], windows_per_task=5)

    labels = load_task_states(dag_run)
    # 13 windows of 7 days (the last one 6) in batches of 5 windows
    first = BEGIN + dt.timedelta(days=35)
    second = first + dt.timedelta(days=35)
    assert labels == {
        f"acme getusershare {BEGIN}..{first - dt.timedelta(days=1)}": "success",
        f"acme getusershare {first}..{second - dt.timedelta(days=1)}": "success",
        f"acme getusershare {second}..{END}": "success",
    }


def test_stored_rows_equal_the_simulators_truth(backfill: Any, simulator: Any, fresh_pg: tuple[str, str]) -> None:
    _conn_id, dsn = fresh_pg
    dag_run = run(backfill, endpoints=["getusershare", "getuserread", "getarticletotal", "getusersharehour"])

    assert dag_run.state == "success", states(dag_run)
    for endpoint in ("getusershare", "getuserread", "getarticletotal", "getusersharehour"):
        stored = stored_rows(dsn, endpoint, BEGIN, END, account=ACCOUNT)
        assert stored, endpoint
        assert stored == truth_rows(simulator, TEST_APPID, endpoint, BEGIN, END, account=ACCOUNT), endpoint


def test_second_run_makes_no_data_calls(backfill: Any, simulator: Any) -> None:
    assert run(backfill).state == "success"
    simulator.state.reset_counters()

    dag_run = run(backfill)

    assert dag_run.state == "success", states(dag_run)
    assert data_calls(simulator) == dict.fromkeys(LEGACY, 0)
    assert load_task_states(dag_run) == {None: "skipped"}  # nothing to map: the load task is skipped


def test_reprocess_all_fetches_loaded_windows_again(backfill: Any, simulator: Any) -> None:
    assert run(backfill, endpoints=["getusershare"]).state == "success"
    simulator.state.reset_counters()

    dag_run = run(backfill, endpoints=["getusershare"], reprocess="all")

    assert dag_run.state == "success", states(dag_run)
    assert data_calls(simulator)["getusershare"] == 13


def test_daily_quota_stops_the_endpoint_cleanly_with_skipped_tasks(
    backfill: Any,
    simulator: Any,
    fresh_pg: tuple[str, str],
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _conn_id, dsn = fresh_pg
    simulator.state.set_faults([QUOTA_FAULT])

    dag_run = run(backfill)

    assert dag_run.state == "success", states(dag_run)
    calls = data_calls(simulator)
    assert calls["getarticlesummary"] == 45 + 1  # the 45009 call; no later window was asked for
    assert {e: n for e, n in calls.items() if e != "getarticlesummary"} == {
        e: calls_needed(90, get_endpoint(e).max_span) for e in LEGACY if e != "getarticlesummary"
    }
    summary_states = [s for label, s in load_task_states(dag_run).items() if "getarticlesummary" in label]
    assert sorted(summary_states) == ["skipped"] * 3 + ["success"] * 3  # 6 tasks of 15 windows
    assert not [k for k in states(dag_run) if k.endswith(":failed")]
    assert load_log(dsn, "getarticlesummary") == {"loaded": 45, "failed": 1}
    output = capfd.readouterr().out + caplog.text  # task runner (structlog) + stdlib task loggers
    assert "WeChat daily quota (45009) spent for acme getarticlesummary" in output
    resume = f"resume after {next_beijing_midnight().astimezone(BEIJING):%Y-%m-%d} 00:00 Beijing: trigger again then"
    assert f"INCOMPLETE: 45 window(s) still missing of {BEGIN}..{END}: {resume}" in output
    assert (
        "acme getarticlesummary: 90 window(s): 45 loaded, 0 kept, 0 failed, 45 skipped; 45 window(s) skipped, "
        f"daily quota (45009) spent -> {resume}"
    ) in output
    report = report_of(dag_run)
    assert report["state"] == "incomplete" and report["failed_tasks"] == 0
    assert report["next_steps"] == [resume]
    summary = next(e for e in report["endpoints"] if e["endpoint"] == "getarticlesummary")
    assert (summary["loaded"], summary["skipped"], summary["failed"], summary["failures"]) == (45, 45, 0, [])
    assert dt.datetime.fromisoformat(summary["resume_at"]) == next_beijing_midnight()
    others = [e for e in report["endpoints"] if e["endpoint"] != "getarticlesummary"]
    assert all(e["loaded"] == e["windows"] and e["next_steps"] == [] for e in others)


def test_later_run_after_the_quota_reset_fetches_only_what_is_missing(
    backfill: Any, simulator: Any, fresh_pg: tuple[str, str]
) -> None:
    _conn_id, dsn = fresh_pg
    simulator.state.set_faults([QUOTA_FAULT])
    assert run(backfill).state == "success"
    # The next day: WeChat's quota has reset and so has the recorded block.
    simulator.state.clear_faults()
    expire_quota_block(dsn)
    simulator.state.reset_counters()

    dag_run = run(backfill)

    assert dag_run.state == "success", states(dag_run)
    assert data_calls(simulator) == {e: (45 if e == "getarticlesummary" else 0) for e in LEGACY}
    assert load_log(dsn, "getarticlesummary") == {"loaded": 90}
    stored = stored_rows(dsn, "getarticlesummary", BEGIN, END, account=ACCOUNT)
    assert stored == truth_rows(simulator, TEST_APPID, "getarticlesummary", BEGIN, END, account=ACCOUNT)


def test_run_before_the_quota_reset_does_not_call_the_blocked_endpoint(
    backfill: Any, simulator: Any, fresh_pg: tuple[str, str]
) -> None:
    simulator.state.set_faults([QUOTA_FAULT])
    assert run(backfill).state == "success"
    simulator.state.clear_faults()
    simulator.state.reset_counters()

    dag_run = run(backfill)  # same day: the block recorded in Postgres still holds

    assert dag_run.state == "success", states(dag_run)
    assert data_calls(simulator) == dict.fromkeys(LEGACY, 0)
    assert set(load_task_states(dag_run).values()) == {"skipped"}


def test_one_endpoint_given_as_a_string_is_backfilled_alone(backfill: Any, simulator: Any) -> None:
    dag_run = run(backfill, endpoints="getusershare")

    assert dag_run.state == "success", states(dag_run)
    assert data_calls(simulator) == {e: (13 if e == "getusershare" else 0) for e in LEGACY}


def test_an_unknown_endpoint_name_fails_the_run_naming_the_known_ones(
    backfill: Any, simulator: Any, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    dag_run = run(backfill, endpoints="getusershre")

    assert dag_run.state == "failed", states(dag_run)
    assert states(dag_run)["plan:failed"] == 1
    assert data_calls(simulator) == dict.fromkeys(LEGACY, 0)
    output = capfd.readouterr().out + caplog.text
    assert "unknown endpoint name(s) 'getusershre'" in output
    assert "families legacy, replacement, user, message, interface; endpoints getarticlesummary" in output
    assert f"account={ACCOUNT}" in output and f"dates={BEGIN}..{END}" in output


def test_a_wrong_app_secret_fails_the_run_and_the_report_says_fix_the_configuration(
    backfill: Any,
    simulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    register_wechat_conn(monkeypatch, simulator.base_url, f"wechat_{ACCOUNT}", password="not-the-app-secret")

    dag_run = run(backfill, endpoints=["getusershare", "getuserread"])

    assert dag_run.state == "failed", states(dag_run)
    assert states(dag_run) == {"plan:success": 1, "load:failed": 3, "report:failed": 1}
    assert data_calls(simulator) == dict.fromkeys(LEGACY, 0)
    report = report_of(dag_run)
    assert report["state"] == "failed" and report["failed_tasks"] == 3
    assert report["next_steps"] == ["fix the configuration, then trigger again"]
    by_endpoint = {e["endpoint"]: e for e in report["endpoints"]}
    assert {name: (e["windows"], e["loaded"], e["failed"], e["skipped"]) for name, e in by_endpoint.items()} == {
        "getusershare": (13, 0, 13, 0),
        "getuserread": (30, 0, 30, 0),
    }
    for endpoint in by_endpoint.values():
        (failure,) = endpoint["failures"]
        assert failure["errcode"] == 40125 and failure["error_class"] == "permanent"
        assert failure["meaning"] == "errcode 40125 (permanent): invalid AppSecret: check the connection's password"
        assert failure["next_step"] == "fix the configuration, then trigger again"
    output = capfd.readouterr().out + caplog.text
    assert f"FAILED: 3 load task(s) failed; 43 window(s) of {BEGIN}..{END} still missing: fix the configuration" in output
    line = (
        "acme getusershare: 13 window(s): 0 loaded, 0 kept, 13 failed, 0 skipped; 1 load task(s) failed, leaving "
        "13 window(s): errcode 40125 (permanent): invalid AppSecret: check the connection's password "
        "-> fix the configuration, then trigger again"
    )
    assert line in output
    assert "resume" not in output.lower()  # resuming cannot help until the secret is fixed


def test_a_failed_endpoint_fails_the_run_while_the_report_still_says_when_the_quota_resets(
    backfill: Any, simulator: Any, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    simulator.state.set_faults([
        {"kind": "errcode", "errcode": 48001, "path": "/datacube/getusershare"},
        {"kind": "errcode", "errcode": 45009, "path": "/datacube/getuserread", "after": 10},
    ])

    dag_run = run(backfill, endpoints=["getusershare", "getuserread"])

    assert dag_run.state == "failed", states(dag_run)
    assert states(dag_run) == {"plan:success": 1, "load:failed": 1, "load:skipped": 2, "report:failed": 1}
    report = report_of(dag_run)
    resume = f"resume after {next_beijing_midnight().astimezone(BEIJING):%Y-%m-%d} 00:00 Beijing: trigger again then"
    assert report["next_steps"] == ["fix the configuration, then trigger again", resume]
    by_endpoint = {e["endpoint"]: e for e in report["endpoints"]}
    share, read = by_endpoint["getusershare"], by_endpoint["getuserread"]
    assert (share["loaded"], share["failed"], share["skipped"]) == (0, 13, 0)
    assert [(f["errcode"], f["next_step"]) for f in share["failures"]] == [
        (48001, "fix the configuration, then trigger again")
    ]
    assert (read["loaded"], read["failed"], read["skipped"], read["failures"]) == (10, 0, 20, [])
    output = capfd.readouterr().out + caplog.text
    assert (
        f"FAILED: 1 load task(s) failed; 33 window(s) of {BEGIN}..{END} still missing: "
        f"fix the configuration, then trigger again; {resume}"
    ) in output
    assert "errcode 48001 (permanent): API not authorized for this account or token type" in output
