"""A PostgreSQL server of the suite's own, which R8 may stop and start at will.

The machine's shared server (127.0.0.1:5432) serves other test runs at the same time and
is never restarted. This one runs the PostgreSQL 16 binaries of the ``pgserver`` wheel
(the embedded server of ``make run``, :mod:`wechat_datacube_dev.localrun.postgres`) with
``pg_ctl`` directly, so the suite chooses how it stops (``fast``: a clean shutdown that
terminates every backend; ``immediate``: a crash, WAL replay at the next start). It has
its own data directory in /tmp and listens on a free TCP port of 127.0.0.1 (the same port
after every restart, so the Airflow connections stay valid), trust auth. PostgreSQL
refuses to run as root: as root, the server runs as the wheel's ``pgserver`` system user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from wechat_datacube_dev.localrun.airflow_cluster import free_port

#: System users PostgreSQL may run as when the suite runs as root (first that exists).
SYSTEM_USERS = ("pgserver", "postgres")


def _bin_dir() -> Path:
    from wechat_datacube_dev.localrun.postgres import EmbeddedPostgres

    return EmbeddedPostgres.bin_dir()


class PrivatePostgres:
    """initdb + pg_ctl on a private data directory and port; :meth:`close` removes it all."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.user = self._system_user()
        self.root = Path(tempfile.mkdtemp(prefix="wdc-r8-pg-"))
        self.data = self.root / "data"
        self.logfile = self.root / "server.log"  # the server's own log (written as its user)
        self.tool_log = self.root / "pg_ctl.log"  # initdb / pg_ctl output
        self.port = free_port()
        self.logfile.touch()
        if self.user:
            entry = pwd.getpwnam(self.user)
            for path in (self.root, self.logfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o755)
        self._pg(["initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"],
                 timeout=120)
        self.running = False

    @staticmethod
    def _system_user() -> str | None:
        if os.geteuid() != 0:
            return None
        for name in SYSTEM_USERS:
            with contextlib.suppress(KeyError):
                pwd.getpwnam(name)
                return name
        raise RuntimeError(f"running as root, but none of the users {SYSTEM_USERS} exists to run PostgreSQL")

    def _pg(self, args: list[str], timeout: float = 60) -> None:
        """Run a PostgreSQL binary (as the server's user); its output goes to ``pg_ctl.log``."""
        with self.tool_log.open("ab") as out:
            subprocess.run([str(self.bin / args[0]), *args[1:]], check=True, stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.STDOUT, timeout=timeout, user=self.user, cwd=self.root)

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> float:
        """Start and wait until it accepts connections; returns the seconds it took (WAL replay included)."""
        started = time.monotonic()
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data} -c max_connections=100"
        self._pg(["pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-w", "-t", "120", "-o", options, "start"],
                 timeout=180)
        self.running = True
        return time.monotonic() - started

    def stop(self, mode: str = "fast") -> float:
        """``pg_ctl stop -m <mode>``; returns the seconds it took."""
        started = time.monotonic()
        self._pg(["pg_ctl", "-D", str(self.data), "-w", "-t", "120", "-m", mode, "stop"], timeout=180)
        self.running = False
        return time.monotonic() - started

    def close(self) -> None:
        if self.running:
            with contextlib.suppress(Exception):
                self.stop("immediate")
        if not os.environ.get("WDC_KEEP_SCRATCH"):
            shutil.rmtree(self.root, ignore_errors=True)

    # -- clients --------------------------------------------------------------------

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.dsn(name)

    def version(self) -> str:
        with psycopg.connect(self.dsn()) as conn:
            return str(conn.execute("SHOW server_version").fetchone()[0])

    def accepts(self, timeout: float = 1.0) -> bool:
        try:
            with psycopg.connect(self.dsn(), connect_timeout=max(1, int(timeout))):
                return True
        except psycopg.OperationalError:
            return False

    def backends(self, dbname: str) -> list[dict[str, Any]]:
        """Client backends connected to ``dbname``, but the suite's own (application_name ``suite-*``)."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid, state, wait_event_type, left(query, 80) FROM pg_stat_activity "
                "WHERE datname = %s AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
                "AND application_name NOT LIKE 'suite-%%'",
                (dbname,),
            ).fetchall()
        return [{"pid": p, "state": s, "wait": w, "query": q} for p, s, w, q in rows]
