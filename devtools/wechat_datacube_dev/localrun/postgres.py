"""The PostgreSQL server of the local stack, and how each client reaches a database on it.

Either the server named by ``WECHAT_DATACUBE_PG_URL`` (any libpq URL of a role allowed to
create databases, e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``) or, when that
is unset, an embedded server under ``.local/pg`` from the ``pgserver`` wheel, which ships
the PostgreSQL 16 binaries: no system package, no Docker. The embedded server listens on
a Unix socket only, so it never clashes with a PostgreSQL already running on the machine.

Three clients need the same database spelled three ways: Airflow's metadata DB as a
SQLAlchemy URL, the data DB as an Airflow connection, and a person at ``psql``. They are
all derived from one set of libpq keywords (``host``, ``port``, ``user``, ``password``,
``dbname``, ...) here.
"""

from __future__ import annotations

import json
import logging
import shlex
import warnings
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

PG_URL_ENV = "WECHAT_DATACUBE_PG_URL"
_CORE_KEYS = ("host", "port", "user", "password", "dbname")


class PostgresSetupError(RuntimeError):
    """No usable server: a bad URL, or the embedded server cannot be provided."""


def sqlalchemy_url(params: dict[str, Any]) -> str:
    """``postgresql+psycopg://`` URL for Airflow's metadata DB (a socket directory goes in the query)."""
    from sqlalchemy.engine import URL

    host = params.get("host") or None
    query = {k: str(v) for k, v in params.items() if k not in _CORE_KEYS}
    if host and host.startswith("/"):
        query["host"] = host
        host = None
    port = params.get("port")
    url = URL.create(
        "postgresql+psycopg",
        username=params.get("user") or None,
        password=params.get("password") or None,
        host=host,
        port=int(port) if port and host else None,
        database=params.get("dbname") or None,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def airflow_connection(params: dict[str, Any]) -> str:
    """The JSON form of an Airflow ``postgres`` connection (for an ``AIRFLOW_CONN_*`` variable)."""
    port = params.get("port")
    conn: dict[str, Any] = {
        "conn_type": "postgres",
        "host": params.get("host") or "",
        "login": params.get("user") or "",
        "password": params.get("password") or "",
        "schema": params.get("dbname") or "",
        "extra": {k: v for k, v in params.items() if k not in _CORE_KEYS},
    }
    if port:
        conn["port"] = int(port)
    return json.dumps(conn)


class PostgresServer(Protocol):
    """What the stack needs from a server, embedded or not."""

    #: Human description, e.g. "embedded PostgreSQL 16 (.local/pg)".
    description: str

    def params(self, dbname: str) -> dict[str, Any]:
        """libpq keywords reaching ``dbname`` on this server."""
        ...

    def psql_command(self, dbname: str) -> list[str]:
        """A psql command line for ``dbname`` (no password in it)."""
        ...

    def stop(self) -> None: ...


def ensure_database(server: PostgresServer, admin_db: str, name: str) -> bool:
    """Create database ``name`` unless it exists; True if it was created."""
    with psycopg.connect(**server.params(admin_db), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def _psql(binary: str, params: dict[str, Any]) -> list[str]:
    return [binary, make_conninfo(**{k: v for k, v in params.items() if k != "password" and v not in (None, "")})]


class ExternalPostgres:
    """A server someone else runs, named by a libpq URL; never started or stopped here."""

    def __init__(self, url: str) -> None:
        try:
            self._admin = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise PostgresSetupError(f"{PG_URL_ENV} is not a valid PostgreSQL URL: {exc}") from None
        self.admin_db = str(self._admin.get("dbname") or "postgres")
        where = self._admin.get("host") or "localhost"
        self.description = f"PostgreSQL at {where}:{self._admin.get('port') or 5432} (from {PG_URL_ENV})"

    def params(self, dbname: str) -> dict[str, Any]:
        return {**self._admin, "dbname": dbname}

    def psql_command(self, dbname: str) -> list[str]:
        return _psql("psql", self.params(dbname))

    def stop(self) -> None:
        """Nothing to stop: the server is not ours."""


class EmbeddedPostgres:
    """PostgreSQL from the ``pgserver`` wheel with its data directory under ``.local/``.

    ``pgserver`` runs initdb on first use (as an unprivileged ``pgserver`` system user
    when started as root, because PostgreSQL refuses to run as root), starts the server
    with ``pg_ctl`` listening on a Unix socket only, and reuses a server that is still
    running on the same data directory. :meth:`stop` shuts it down (``pg_ctl stop -m
    fast``); the data stays for the next start.
    """

    admin_db = "postgres"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.description = f"embedded PostgreSQL 16 (pgserver), data in {data_dir}"
        self._server: Any = None

    def start(self) -> EmbeddedPostgres:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: "XDG_RUNTIME_DIR is not set"
            try:
                import pgserver
            except ImportError:
                raise PostgresSetupError(
                    f"the embedded PostgreSQL needs the pgserver wheel (requirements-dev.txt); "
                    f"install it or set {PG_URL_ENV} to a server"
                ) from None

        logging.getLogger("pgserver").setLevel(logging.WARNING)  # it logs every command at INFO
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(self.data_dir, cleanup_mode=None)
        return self

    @property
    def socket_dir(self) -> str:
        info = self._server.get_postmaster_info()
        return str(info.socket_dir)

    @staticmethod
    def bin_dir() -> Path:
        from pgserver._commands import POSTGRES_BIN_PATH

        return Path(POSTGRES_BIN_PATH)

    def params(self, dbname: str) -> dict[str, Any]:
        return {"host": self.socket_dir, "user": "postgres", "dbname": dbname}

    def psql_command(self, dbname: str) -> list[str]:
        return _psql(str(self.bin_dir() / "psql"), self.params(dbname))

    def stop(self) -> None:
        if self._server is None:
            return
        from pgserver._commands import pg_ctl

        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=self._server.system_user, timeout=60)
        except Exception as exc:  # already stopped, or stopping failed: say so, keep shutting down the rest
            print(f"embedded PostgreSQL: pg_ctl stop: {exc} (log: {self.data_dir / 'log'})")
        # Forget the handle (cleanup_mode=None: no further action), so a later start in this
        # process checks the data directory again instead of reusing the stopped server's handle.
        self._server.cleanup()
        self._server = None


def server_from_env(env: dict[str, str], data_dir: Path) -> PostgresServer:
    """The external server if ``WECHAT_DATACUBE_PG_URL`` is set, else the embedded one (started)."""
    url = (env.get(PG_URL_ENV) or "").strip()
    if url:
        return ExternalPostgres(url)
    return EmbeddedPostgres(data_dir).start()


def shell_command(args: list[str]) -> str:
    return shlex.join(args)
