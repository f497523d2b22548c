"""One day of one account through Airflow itself (`dag.test`) against the simulator + Postgres."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from tests.fixtures.accounts import use_legacy_account
from tests.fixtures.simulator import TEST_APPID
from tests.fixtures.truth import stored_rows, truth_rows
from tests.fixtures.wechat_conn import register_wechat_conn
from wechat_datacube.dates import beijing_today
from wechat_datacube.endpoints import LEGACY
from wechat_datacube.tokens import clear_token_memo

DAGS = Path(__file__).resolve().parents[2] / "dags"
BEIJING = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def demo_dag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, simulator, fresh_pg, airflow_db  # noqa: ANN001
) -> Iterator[object]:
    start = beijing_today() - dt.timedelta(days=10)
    use_legacy_account(
        monkeypatch, tmp_path, name="daytest", postgres_conn_id=fresh_pg[0], start_date=start, base_url=simulator.base_url
    )
    clear_token_memo()
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    yield bag.dags["wechat_datacube_daily__daytest"]
    clear_token_memo()


def test_dag_test_loads_one_business_day_of_every_legacy_endpoint(demo_dag, simulator, fresh_pg) -> None:  # noqa: ANN001
    _conn_id, dsn = fresh_pg
    business_day = beijing_today() - dt.timedelta(days=3)
    # A manual run (dag.test is one) at T covers the last complete interval before T:
    # triggered at D+1 10:00 Beijing it pulls business day D.
    run_after = dt.datetime.combine(business_day + dt.timedelta(days=1), dt.time(10), tzinfo=BEIJING)

    run = demo_dag.test(logical_date=run_after)

    assert run.state == "success", [(ti.task_id, ti.state) for ti in run.get_task_instances()]
    for endpoint in LEGACY:
        stored = stored_rows(dsn, endpoint, business_day, business_day, account="daytest")
        truth = truth_rows(simulator, TEST_APPID, endpoint, business_day, business_day, account="daytest")
        assert stored == truth, endpoint
    # The business day is the interval start in Beijing: nothing of the next day was fetched.
    assert stored_rows(dsn, "getuserread", business_day + dt.timedelta(days=1), business_day + dt.timedelta(days=1), account="daytest") == set()
    paths = simulator.state.counters()["paths"]
    assert paths["/datacube/getarticletotal"] == 2  # the day + the send date that just matured
    assert all(paths[f"/datacube/{e}"] == 1 for e in LEGACY if e != "getarticletotal")
    token_calls = sum(n for p, n in paths.items() if p.startswith("/cgi-bin/"))
    assert token_calls == 1  # six tasks share one token through the Postgres cache


def states(run: object) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}  # type: ignore[attr-defined]


def manual_run_after(business_day: dt.date) -> dt.datetime:
    return dt.datetime.combine(business_day + dt.timedelta(days=1), dt.time(10), tzinfo=BEIJING)


def test_a_run_asking_for_an_unknown_endpoint_fails_instead_of_skipping_everything(
    demo_dag, simulator, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture  # noqa: ANN001
) -> None:
    business_day = beijing_today() - dt.timedelta(days=3)

    run = demo_dag.test(logical_date=manual_run_after(business_day), run_conf={"endpoints": ["getusershre"]})

    assert run.state == "failed", states(run)
    assert set(states(run).values()) == {"failed"}  # every task refused the ask; none skipped
    assert not any(p.startswith("/datacube/") for p in simulator.state.counters()["paths"])
    output = capfd.readouterr().out + caplog.text
    assert "unknown endpoint name(s) 'getusershre'" in output
    assert "families legacy, replacement, user, message, interface; endpoints getarticlesummary" in output


def test_one_endpoint_given_as_a_string_runs_that_endpoint(demo_dag, simulator) -> None:  # noqa: ANN001
    business_day = beijing_today() - dt.timedelta(days=3)

    run = demo_dag.test(logical_date=manual_run_after(business_day), run_conf={"endpoints": "getusershare"})

    assert run.state == "success", states(run)
    assert states(run) == {e: "success" if e == "getusershare" else "skipped" for e in LEGACY}
    assert simulator.state.counters()["paths"]["/datacube/getusershare"] == 1


def test_a_manual_window_longer_than_a_month_is_sent_to_the_backfill_dag(
    demo_dag, simulator, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture  # noqa: ANN001
) -> None:
    end = beijing_today() - dt.timedelta(days=2)
    begin = end - dt.timedelta(days=31)  # 32 days

    run = demo_dag.test(
        logical_date=manual_run_after(end), run_conf={"begin_date": begin.isoformat(), "end_date": end.isoformat()}
    )

    assert run.state == "failed", states(run)
    assert not any(p.startswith("/datacube/") for p in simulator.state.counters()["paths"])
    output = capfd.readouterr().out + caplog.text
    assert f"{begin}..{end} is 32: trigger the backfill DAG wechat_datacube_backfill" in output


def test_a_wrong_app_secret_fails_the_daily_run(
    demo_dag, simulator, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture  # noqa: ANN001
) -> None:
    """Every load task is a leaf: Airflow's default rule fails the run when any of them failed."""
    register_wechat_conn(monkeypatch, simulator.base_url, "wechat_daytest", password="not-the-app-secret")
    business_day = beijing_today() - dt.timedelta(days=3)

    run = demo_dag.test(logical_date=manual_run_after(business_day))

    assert run.state == "failed", states(run)
    assert states(run) == dict.fromkeys(LEGACY, "failed")
    assert not any(p.startswith("/datacube/") for p in simulator.state.counters()["paths"])
    output = capfd.readouterr().out + caplog.text
    assert "invalid AppSecret: check the connection's password" in output and "errcode=40125" in output
    # Permanent: failed at the first try, never retried (a retry would only burn token calls).
    assert "action=fail" in output and "not retried" in output


def test_one_failing_endpoint_fails_the_daily_run_while_the_others_load(demo_dag, simulator) -> None:  # noqa: ANN001
    simulator.state.set_faults([{"kind": "errcode", "errcode": 48001, "path": "/datacube/getarticlesummary"}])
    business_day = beijing_today() - dt.timedelta(days=3)

    run = demo_dag.test(logical_date=manual_run_after(business_day))

    assert run.state == "failed", states(run)
    assert states(run) == {e: "failed" if e == "getarticlesummary" else "success" for e in LEGACY}
