"""A wrong run conf of a daily DAG is reported as a configuration error, in the words of the README ("conf").

The daily DAGs take a manual window from the run's **conf** (README, Operations); a conf
whose begin_date is after its end_date is the user's mistake, not something WeChat said:
the task fails at once, without calling WeChat, and the task log says "configuration
error" with the account, the endpoint and both dates.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import RetryAction

from wechat_datacube.dag_settings import DAILY_DAG_PREFIX
from wechat_datacube.errors import ConfigError, DateRangeError, error_for_errcode
from wechat_datacube.operators import WeChatDatacubeToPostgresOperator
from wechat_datacube.retry_policy import WeChatRetryPolicy

BEIJING = dt.timezone(dt.timedelta(hours=8))
DAGS = Path(__file__).resolve().parents[2] / "dags"


def operator(**kwargs: object) -> WeChatDatacubeToPostgresOperator:
    return WeChatDatacubeToPostgresOperator(
        task_id="getusershare", endpoint="getusershare", account="shop", max_manual_days=31, **kwargs
    )


def test_begin_after_end_is_a_configuration_error_naming_account_endpoint_and_dates() -> None:
    with pytest.raises(DateRangeError) as caught:
        operator(begin_date="2026-02-10", end_date="2026-02-01").resolve_dates({})
    message = str(caught.value)
    assert "begin_date 2026-02-10 is after end_date 2026-02-01" in message and "conf" in message
    assert "account=shop" in message and "endpoint=getusershare" in message and "dates=2026-02-10..2026-02-01" in message

    decision = WeChatRetryPolicy().evaluate(caught.value, try_number=1, max_tries=9)
    assert decision.action is RetryAction.FAIL
    assert decision.reason.startswith("configuration error (permanent), not retried: begin_date 2026-02-10")
    assert "WeChat error" not in decision.reason


def test_an_answer_of_wechat_is_still_a_permanent_wechat_error() -> None:
    decision = WeChatRetryPolicy().evaluate(error_for_errcode(40125, "invalid appsecret"), try_number=1, max_tries=9)
    assert decision.reason.startswith("permanent WeChat error, not retried:")


def test_a_run_without_dates_or_logical_date_is_told_to_use_the_conf() -> None:
    with pytest.raises(ConfigError) as caught:
        operator().resolve_dates({})
    message = str(caught.value)
    assert "begin_date and end_date (YYYY-MM-DD) in the run's conf" in message
    assert "params" not in message


def test_a_daily_run_with_begin_after_end_fails_as_a_configuration_error(
    airflow_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Through the daily DAG file and Airflow (``dag.test``): the task log labels it; nothing is retried or called."""
    accounts = tmp_path / "accounts.yaml"
    # The connections do not exist: the dates are refused before any is needed.
    accounts.write_text(
        "accounts:\n  - {name: conf_order, wechat_conn_id: wechat_nowhere, postgres_conn_id: pg_nowhere, "
        "start_date: 2026-01-01, endpoints: [getusershare]}\n"
    )
    monkeypatch.setenv("WECHAT_DATACUBE_ACCOUNTS", str(accounts))
    bag = DagBag(dag_folder=str(DAGS / "wechat_datacube_daily.py"))
    dag = bag.dags[f"{DAILY_DAG_PREFIX}conf_order"]

    run = dag.test(
        logical_date=dt.datetime(2026, 3, 1, 10, tzinfo=BEIJING),
        run_conf={"begin_date": "2026-02-10", "end_date": "2026-02-01"},
    )

    assert run.state == "failed"
    output = capfd.readouterr().out + caplog.text
    assert "configuration error (permanent), not retried: begin_date 2026-02-10 is after end_date 2026-02-01" in output
    assert "account=conf_order, endpoint=getusershare, dates=2026-02-10..2026-02-01" in output
    assert "permanent WeChat error" not in output


@pytest.mark.parametrize("bad", ["2026-02-30", "next week", "2026/02/01"])
def test_a_conf_date_that_is_not_a_date_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(DateRangeError) as caught:
        operator(begin_date=bad, end_date="2026-03-01").resolve_dates({})
    message = str(caught.value)
    assert "YYYY-MM-DD Beijing dates in the run's conf" in message
    assert "account=shop" in message and "endpoint=getusershare" in message and bad in message
    decision = WeChatRetryPolicy().evaluate(caught.value, try_number=1, max_tries=9)
    assert decision.reason.startswith("configuration error (permanent), not retried")
