"""A daily run whose WeChat connection holds a wrong AppSecret, through Airflow itself (`dag.test`):
the account's WeCom robot and its other notifier each hear of every failed task once — account,
endpoint, errcode 40125 with its meaning — and never see a secret.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.dag_processing.dagbag import DagBag

from tests.fixtures.accounts import write_accounts_file
from tests.fixtures.recording_notifier import RecordingNotifier, read_messages
from tests.fixtures.wechat_conn import register_wechat_conn
from tests.fixtures.wecom_robot import FakeWeComRobot, register_wecom_conn
from wechat_datacube.dates import beijing_today
from wechat_datacube.endpoints import LEGACY
from wechat_datacube.tokens import clear_token_memo

DAGS = Path(__file__).resolve().parents[2] / "dags"
BEIJING = dt.timezone(dt.timedelta(hours=8))
ACCOUNT = "alerted"
WRONG_SECRET = "not-the-app-secret-5d1c"
MEANING = "errcode 40125 (permanent): invalid AppSecret: check the connection's password"


@pytest.fixture
def alerted_dag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, simulator: Any, fresh_pg: tuple[str, str], airflow_db: str,
    wecom_robot: FakeWeComRobot,
) -> Iterator[tuple[Any, Path]]:
    register_wecom_conn(monkeypatch, wecom_robot, "wecom_ops")
    recorded = tmp_path / "other-channel.jsonl"
    notifier = f"{RecordingNotifier.__module__}.{RecordingNotifier.__qualname__}"
    accounts = write_accounts_file(
        tmp_path, name=ACCOUNT, postgres_conn_id=fresh_pg[0], start_date=beijing_today() - dt.timedelta(days=10),
        alert_conn_ids="[wecom_ops]",
        alert_notifiers=f"[{{notifier: {notifier}, message_field: text, kwargs: {{path: '{recorded}'}}}}]",
    )  # fmt: skip
    monkeypatch.setenv("WECHAT_DATACUBE_ACCOUNTS", str(accounts))
    register_wechat_conn(monkeypatch, simulator.base_url, f"wechat_{ACCOUNT}", password=WRONG_SECRET)
    clear_token_memo()
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    yield bag.dags[f"wechat_datacube_daily__{ACCOUNT}"], recorded
    clear_token_memo()


def test_a_wrong_app_secret_tells_the_robot_once_per_failed_task_with_the_errcode_and_no_secret(
    alerted_dag: tuple[Any, Path], wecom_robot: FakeWeComRobot, simulator: Any
) -> None:
    dag, recorded = alerted_dag
    day = beijing_today() - dt.timedelta(days=3)

    run = dag.test(logical_date=dt.datetime.combine(day + dt.timedelta(days=1), dt.time(10), tzinfo=BEIJING))

    assert {ti.task_id: ti.state for ti in run.get_task_instances()} == dict.fromkeys(LEGACY, "failed")
    messages = wecom_robot.messages
    assert messages and len(messages) <= len(LEGACY)
    for endpoint in LEGACY:  # each failed task is named in exactly one message
        assert sum(f"`{endpoint}`" in m or f" {endpoint} " in m for m in messages) == 1, (endpoint, messages)
    for message in messages:
        assert ACCOUNT in message and MEANING in message and day.isoformat() in message
    sent = [str(r.body) for r in wecom_robot.requests]
    for secret in (WRONG_SECRET, wecom_robot.key, *simulator.state.issued_tokens()):
        assert not any(secret in text for text in sent)
    # The same events through the other notifier named in the accounts file.
    other = read_messages(recorded)
    assert len(other) == len(LEGACY)
    assert all(MEANING in text and ACCOUNT in text and WRONG_SECRET not in text for text in other)
    assert {e for e in LEGACY for text in other if f"`{e}`" in text} == set(LEGACY)
