"""The daily DAGs on CeleryExecutor: two workers on a real Redis broker, two accounts, a 7-day catchup.

The same cluster as the other scheduler tests (api-server, scheduler, dag-processor on a
Postgres metadata DB), but with CeleryExecutor, the metadata DB as Celery result backend
and two ``airflow celery worker`` processes with names of their own. The broker is the
Redis of :mod:`tests.fixtures.broker` (the local server, or an embedded one). Checked:
every run succeeds, both workers ran task instances, the tables equal the simulator's
truth, and each account fetched one token in all — shared by the workers through the
Postgres token cache, not fetched per worker or per task.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from wechat_datacube_dev.connections import connection_env_var, wechat_connection_env
from wechat_datacube_dev.localrun.airflow_cluster import CelerySetup
from wechat_datacube_dev.localrun.redis_broker import RedisBroker, private_queue
from wechat_datacube_dev.localrun.report import last_scheduled_day
from wechat_datacube_dev.simulator import SimulatorServer

from tests.fixtures.accounts import account_entry, write_accounts
from tests.fixtures.airflow import AirflowCluster
from tests.fixtures.postgres import _create_db, _drop_db
from tests.fixtures.simulator import make_simulator_config
from tests.fixtures.truth import stored_rows, truth_rows
from wechat_datacube.dag_settings import DAILY_DAG_PREFIX
from wechat_datacube.dates import utcnow
from wechat_datacube.endpoints import LEGACY

pytestmark = pytest.mark.scheduler

#: account name -> (AppID, AppSecret) on the simulator
ACCOUNTS = {"celery_a": ("wx_celery_a", "celery-secret-a-5d1e"), "celery_b": ("wx_celery_b", "celery-secret-b-93c0")}
CATCHUP_DAYS = 7
PG_CONN_ID = "wechat_celery_pg"


@dataclass(frozen=True)
class CeleryRun:
    cluster: AirflowCluster
    sim: SimulatorServer
    dsn: str
    start: dt.date
    last: dt.date


@pytest.fixture(scope="module")
def celery_run(
    airflow_cluster_factory: Any, redis_broker: RedisBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CeleryRun]:
    last = last_scheduled_day(utcnow())
    start = last - dt.timedelta(days=CATCHUP_DAYS - 1)
    db_name, dsn = _create_db("wdc_celery_data")
    try:
        config = make_simulator_config(ready_hour=0, accounts=dict(ACCOUNTS.values()))
        with SimulatorServer(config) as sim:
            entries = [
                account_entry(name=name, postgres_conn_id=PG_CONN_ID, start_date=start, ready_deadline_hour=0,
                              max_active_runs=4)
                for name in ACCOUNTS
            ]  # fmt: skip
            accounts = write_accounts(tmp_path_factory.mktemp("accounts"), entries)
            env = {"WECHAT_DATACUBE_ACCOUNTS": str(accounts), connection_env_var(PG_CONN_ID): dsn}
            for name, (appid, secret) in ACCOUNTS.items():
                env.update([wechat_connection_env(f"wechat_{name}", sim.base_url, appid, secret)])
            celery = CelerySetup(broker_url=redis_broker.url, queue=private_queue(), workers=2, concurrency=2)
            cluster = airflow_cluster_factory(env, celery=celery)
            for name in ACCOUNTS:
                cluster.wait_for_dag(f"{DAILY_DAG_PREFIX}{name}")
            yield CeleryRun(cluster, sim, dsn, start, last)
    finally:
        _drop_db(db_name)


def test_catchup_on_two_celery_workers_stores_the_truth_with_one_token_per_account(celery_run: CeleryRun) -> None:
    cluster, sim = celery_run.cluster, celery_run.sim
    hostnames: set[str] = set()
    for name in ACCOUNTS:
        dag_id = f"{DAILY_DAG_PREFIX}{name}"
        runs = cluster.wait_for_runs(dag_id, count=CATCHUP_DAYS, run_type="scheduled", timeout=900)
        assert [r["state"] for r in runs] == ["success"] * CATCHUP_DAYS, [r["run_id"] for r in runs]
        for run in runs:
            tis = cluster.task_instances(dag_id, run["dag_run_id"])
            assert {ti["state"] for ti in tis} == {"success"}
            hostnames.update(ti["hostname"] for ti in tis)

    # Every task instance ran on one of the two workers, and both workers took part.
    assert hostnames == set(cluster.worker_names), hostnames

    counters = sim.state.counters()["appids"]
    for name, (appid, _) in ACCOUNTS.items():
        for endpoint in LEGACY:
            stored = stored_rows(celery_run.dsn, endpoint, celery_run.start, celery_run.last, account=name)
            truth = truth_rows(sim, appid, endpoint, celery_run.start, celery_run.last, account=name)
            assert stored == truth, f"{name} {endpoint}: {len(stored)} stored vs {len(truth)} true"
        token_calls = sum(n for path, n in counters[appid].items() if path.startswith("/cgi-bin/"))
        assert token_calls == 1, f"{name}: {token_calls} token calls across both workers"
