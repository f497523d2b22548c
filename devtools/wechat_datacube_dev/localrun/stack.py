"""The local stack: PostgreSQL, the WeChat API simulator and Airflow, started and stopped together.

Start order is dependency order — database server, databases, simulator, the demo
accounts file, with ``--executor celery`` the Redis broker, Airflow (migrate, pool,
connections, components), login, the DAG visible and unpaused —
and :meth:`LocalStack.stop` undoes it in reverse, so every process this started is gone
afterwards (Airflow's process groups, Celery workers included, an embedded Redis, the
embedded server via ``pg_ctl stop``, the simulator's thread). Everything that must survive
a restart lives in the state directory.

``--executor celery`` runs the same stack on CeleryExecutor, as docker-compose.yaml does:
a Redis broker (:func:`~.redis_broker.broker_from_env`: ``WECHAT_DATACUBE_REDIS_URL``, the
local server, or an embedded one), the metadata database as result backend and
:data:`CELERY_WORKERS` workers with names of their own, on a queue of this stack's own so
that it never takes the tasks of another cluster on the same Redis.

The demo account talks to the simulator through an ordinary ``wechat`` connection and
writes to an ordinary ``postgres`` connection. Both are rows in the metadata database,
written at every start with ``airflow connections import --overwrite`` (idempotent; the
simulator's port and the server's address may change between starts), so they are listed
— and editable, until the next start — under Admin → Connections. They are deliberately
*not* ``AIRFLOW_CONN_*`` variables any more: such a variable shadows the row of the same
id, and an edit in the UI would silently have no effect.

Airflow runs with ``[core] default_timezone = Asia/Shanghai`` (:data:`DEFAULT_TIMEZONE`):
a naive date given to the CLI or the REST API — ``airflow backfill create --from-date
2025-01-01`` — means a Beijing date, as every date of this pipeline does. The settings of
the running stack are recorded in the state directory so that ``make airflow`` can run
the ``airflow`` CLI against it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, get_args

from wechat_datacube_dev.connections import connection_env_var, wechat_connection
from wechat_datacube_dev.localrun.airflow_cluster import ALL_COMPONENTS, AirflowCluster, CelerySetup, port_in_use
from wechat_datacube_dev.localrun.postgres import (
    PostgresServer,
    PostgresSetupError,
    airflow_connection,
    ensure_database,
    server_from_env,
    sqlalchemy_url,
)
from wechat_datacube_dev.localrun.redis_broker import BrokerSetupError, RedisBroker, broker_from_env, private_queue
from wechat_datacube_dev.localrun.report import catchup_window
from wechat_datacube_dev.localrun.state import StateDir
from wechat_datacube_dev.simulator import DEMO_APPID, DEMO_SECRET, SimulatorConfig, SimulatorServer

DEMO_ACCOUNT = "demo"
DAG_ID = f"wechat_datacube_daily__{DEMO_ACCOUNT}"
WECHAT_CONN_ID = "wechat_demo"
PG_CONN_ID = "wechat_pg"
DATA_SCHEMA = "wechat"
UI_USER = "admin"
#: ``[core] default_timezone`` of the local stack: naive dates given to the CLI/REST are Beijing's.
DEFAULT_TIMEZONE = "Asia/Shanghai"
#: ``--executor``: LocalExecutor (the default, needs nothing more) or CeleryExecutor with a Redis broker.
Executor = Literal["local", "celery"]
EXECUTORS: tuple[str, ...] = get_args(Executor)
#: Celery workers of ``--executor celery``: two, so that a run spreads over workers as in production.
CELERY_WORKERS = 2


class StackError(RuntimeError):
    """The stack cannot start as configured (port taken, bad URL, ...): a message for the user."""


@dataclass
class StackConfig:
    """Everything a launch can vary; defaults are what ``make run`` uses."""

    state_dir: Path
    port: int = 8080
    host: str = "127.0.0.1"
    #: Catchup length for a fresh state directory (later runs keep the first start date).
    days: int = 14
    #: Databases ``<prefix>`` (WeChat data) and ``<prefix>_airflow`` (metadata).
    db_prefix: str = "wechat_datacube"
    simulator_port: int = 0
    parallelism: int = 4
    executor: Executor = "local"
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def data_db(self) -> str:
        return self.db_prefix

    @property
    def meta_db(self) -> str:
        return f"{self.db_prefix}_airflow"


def demo_connections(simulator_url: str, data_params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The connections the stack keeps in the metadata DB, as ``airflow connections import`` reads them."""
    connections = {
        WECHAT_CONN_ID: wechat_connection(simulator_url, DEMO_APPID, DEMO_SECRET, token_mode="stable"),
        PG_CONN_ID: json.loads(airflow_connection(data_params)),
    }
    for conn in connections.values():
        conn["extra"] = json.dumps(conn.get("extra") or {})
    return connections


class LocalStack:
    """Start with :meth:`start` (or ``with``); :meth:`stop` is safe after a partial start."""

    def __init__(self, config: StackConfig, say: Callable[[str], None] = print) -> None:
        self.config = config
        self.say = say
        self.state = StateDir(config.state_dir)
        self.pg: PostgresServer | None = None
        self.simulator: SimulatorServer | None = None
        self.broker: RedisBroker | None = None
        self.cluster: AirflowCluster | None = None
        self.first_day: dt.date | None = None
        #: The demo account's endpoints as its accounts file says (families expanded): what it loads.
        self.endpoints: tuple[str, ...] = ()
        self.password: str | None = None

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- start ----------------------------------------------------------------------

    def start(self) -> None:
        """Everything: :meth:`start_services`, then :meth:`start_airflow`."""
        self.start_services()
        self.start_airflow()

    def start_services(self) -> None:
        """PostgreSQL and its databases, the simulator, the accounts file (and the broker): what Airflow needs."""
        cfg = self.config
        if port_in_use(cfg.port, cfg.host):
            raise StackError(f"port {cfg.port} is in use; stop what listens there or pass --port / WECHAT_DATACUBE_RUN_PORT")
        self.state.acquire()

        try:
            self.pg = server_from_env(dict(cfg.env), self.state.pg_dir)
        except PostgresSetupError as exc:
            raise StackError(str(exc)) from None
        self.say(f"postgres:  {self.pg.description}")
        for name in (cfg.meta_db, cfg.data_db):
            if ensure_database(self.pg, self.pg.admin_db, name):
                self.say(f"           created database {name}")

        self.simulator = SimulatorServer(SimulatorConfig(ready_hour=0), port=cfg.simulator_port).start()
        self.say(f"simulator: WeChat API stand-in on {self.simulator.base_url} (account {DEMO_APPID})")

        first, _ = catchup_window(cfg.days)
        if self.state.ensure_accounts_file(
            name=DEMO_ACCOUNT, wechat_conn_id=WECHAT_CONN_ID, postgres_conn_id=PG_CONN_ID, start=first
        ):
            self.say(f"accounts:  wrote {self.state.accounts_file} (start date {first})")
        self.first_day, self.endpoints = self._configured_account()
        if cfg.executor == "celery":
            self._start_broker()

    def _start_broker(self) -> None:
        """The Redis broker of ``--executor celery``; an embedded one is recorded at once (cleanup after a crash)."""
        try:
            self.broker = broker_from_env(self.config.env, self.state.redis_dir)
        except BrokerSetupError as exc:
            raise StackError(str(exc)) from None
        self.state.record_groups(self.broker.process_groups())
        self.say(f"broker:    {self.broker.description}")

    def celery_setup(self) -> CelerySetup | None:
        """CeleryExecutor on the started broker, on a queue of this stack's own; None on LocalExecutor."""
        if self.config.executor != "celery":
            return None
        assert self.broker is not None, "start_services starts the broker"
        return CelerySetup(self.broker.url, queue=private_queue(), workers=CELERY_WORKERS)

    def make_cluster(self, sql_alchemy_conn: str) -> AirflowCluster:
        """The stack's Airflow deployment on ``sql_alchemy_conn`` (not started)."""
        cfg = self.config
        return AirflowCluster(
            self.state.airflow_home,
            sql_alchemy_conn,
            self.airflow_env(self.state.secrets()),
            port=cfg.port,
            host=cfg.host,
            parallelism=cfg.parallelism,
            components=ALL_COMPONENTS,
            celery=self.celery_setup(),
        )

    def start_airflow(self) -> None:
        """Migrate, start the components, log in, and make sure the demo DAG is there and unpaused."""
        assert self.pg is not None
        cfg = self.config
        self.cluster = self.make_cluster(sqlalchemy_url(self.pg.params(cfg.meta_db)))
        self.say("airflow:   migrating the metadata database (about a minute the first time)")
        self.cluster.prepare()
        self._store_connections()
        self.say(f"airflow:   starting {', '.join(self.cluster.components)}")
        self.cluster.launch(on_spawned=self._record_groups)
        self.password = self.state.airflow_password(UI_USER)
        if self.password is None:
            raise StackError(f"the api-server wrote no password for {UI_USER!r} to {self.state.password_file}")
        self.cluster.login(UI_USER, self.password)
        self.cluster.wait_for_dag(DAG_ID)
        self.cluster.set_paused(DAG_ID, False)
        self.state.write_connection(
            {"psql": self.pg.psql_command(cfg.data_db), "description": self.pg.description, "dbname": cfg.data_db}
        )
        self.state.write_airflow_env(self.cluster.settings)

    def _store_connections(self) -> None:
        """Create or update the demo connections in the metadata DB (``airflow connections import --overwrite``).

        The file handed to the CLI holds the demo AppSecret and the database password: it is
        created private (``mkstemp``: mode 0600) in the state directory and removed at once.
        """
        assert self.cluster is not None and self.pg is not None and self.simulator is not None
        connections = demo_connections(self.simulator.base_url, self.pg.params(self.config.data_db))
        fd, path = tempfile.mkstemp(prefix="connections-", suffix=".json", dir=self.state.root)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(connections, handle)
            self.cluster.cli("connections", "import", path, "--overwrite")
        finally:
            os.unlink(path)
        self.say(f"airflow:   connections {', '.join(connections)} in the metadata database (Admin -> Connections)")
        for conn_id in connections:
            variable = connection_env_var(conn_id)
            if variable in os.environ:
                self.say(f"WARNING:   {variable} is set in this shell: it shadows the connection {conn_id} "
                         "of the metadata database for every Airflow process; unset it")

    def _record_groups(self, airflow_groups: dict[str, int]) -> None:
        """Record Airflow's process groups (workers included) with the broker's, for cleanup after a crash."""
        broker_groups = self.broker.process_groups() if self.broker is not None else {}
        self.state.record_groups({**broker_groups, **airflow_groups})

    def _configured_account(self) -> tuple[dt.date, tuple[str, ...]]:
        """The demo account's start date and endpoints as the accounts file (possibly from an earlier run) says."""
        from wechat_datacube.accounts import load_accounts

        loaded = load_accounts(self.state.accounts_file)
        for account in loaded.accounts:
            if account.name == DEMO_ACCOUNT:
                return account.start_date, account.endpoints
        problems = "; ".join(str(e) for e in loaded.errors) or "no account named demo"
        raise StackError(f"{self.state.accounts_file}: {problems} (delete the file to regenerate it)")

    def airflow_env(self, secrets: dict[str, str]) -> dict[str, str]:
        """The stack's Airflow settings on top of :class:`AirflowCluster`'s defaults."""
        # No AIRFLOW_CONN_* here: the connections are rows in the metadata DB
        # (_store_connections), and a variable would shadow them.
        return {
            "WECHAT_DATACUBE_ACCOUNTS": str(self.state.accounts_file),
            "AIRFLOW__CORE__DEFAULT_TIMEZONE": DEFAULT_TIMEZONE,
            # The connection form's Test button (off by default in Airflow 3): a local stand-in has no risk.
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__FERNET_KEY": secrets["fernet_key"],
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets["jwt_secret"],
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{UI_USER}:admin",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        }

    # -- use --------------------------------------------------------------------------

    def data_params(self) -> dict[str, Any]:
        """libpq keywords of the WeChat data database."""
        assert self.pg is not None
        return self.pg.params(self.config.data_db)

    # -- stop -------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop whatever was started, in reverse order; the state directory stays."""
        if self.cluster is not None:
            self.say("stopping airflow ...")
            self.cluster.stop()
            self.cluster = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None
        if self.pg is not None:
            self.pg.stop()
            self.pg = None
        self.state.release()
