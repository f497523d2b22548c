"""The embedded PostgreSQL of ``make run`` (pgserver wheel) and the connection strings built for it.

``make run`` without ``WECHAT_DATACUBE_PG_URL`` depends on three things checked here for
real: the wheel's server starts in a fresh directory, keeps its data across a stop and
start, and is reached over its Unix socket by all three clients the stack configures —
Airflow's metadata DB (a SQLAlchemy URL), the pipeline's Postgres connection (an
``AIRFLOW_CONN_*`` JSON) and psql.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from wechat_datacube_dev.localrun.postgres import (
    EmbeddedPostgres,
    airflow_connection,
    ensure_database,
    sqlalchemy_url,
)


@pytest.fixture
def pg_home() -> Iterator[Path]:
    """A directory outside pytest's basetemp: as root, pgserver runs the server as an unprivileged
    user and opens the path's parents to it, which another pytest session could close again."""
    path = Path(tempfile.mkdtemp(prefix="wdc-embedded-pg-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def embedded(pg_home: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(pg_home / "pg").start()
    yield server
    server.stop()


def test_embedded_server_creates_databases_and_keeps_data_across_a_restart(pg_home: Path) -> None:
    server = EmbeddedPostgres(pg_home / "pg").start()
    try:
        assert ensure_database(server, server.admin_db, "wdc_data") is True
        assert ensure_database(server, server.admin_db, "wdc_data") is False
        params = server.params("wdc_data")
        with psycopg.connect(**params, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept VALUES (42)")
    finally:
        server.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(**params, connect_timeout=3)

    again = EmbeddedPostgres(pg_home / "pg").start()
    try:
        with psycopg.connect(**again.params("wdc_data")) as conn:
            assert conn.execute("SELECT n FROM kept").fetchone() == (42,)
    finally:
        again.stop()


def test_the_server_listens_on_a_unix_socket_only(embedded: EmbeddedPostgres) -> None:
    params = embedded.params("postgres")
    assert params["host"].startswith("/")
    with psycopg.connect(**params) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
        assert conn.execute("SHOW server_version_num").fetchone()[0].startswith("16")


def test_metadata_url_pipeline_connection_and_psql_reach_it(
    embedded: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_database(embedded, embedded.admin_db, "wdc_meta")
    ensure_database(embedded, embedded.admin_db, "wdc_data")

    from sqlalchemy import create_engine, text

    engine = create_engine(sqlalchemy_url(embedded.params("wdc_meta")))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT current_database()")).scalar() == "wdc_meta"
    engine.dispose()

    from airflow.providers.postgres.hooks.postgres import PostgresHook

    conn_json = airflow_connection(embedded.params("wdc_data"))
    assert json.loads(conn_json)["conn_type"] == "postgres"
    monkeypatch.setenv("AIRFLOW_CONN_WDC_EMBEDDED", conn_json)
    with PostgresHook(postgres_conn_id="wdc_embedded").get_conn() as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("wdc_data",)

    psql = subprocess.run(
        [*embedded.psql_command("wdc_data"), "-At", "-c", "SELECT current_database()"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert psql.returncode == 0, psql.stderr
    assert psql.stdout.strip() == "wdc_data"


def test_the_test_suite_starts_the_embedded_server_when_none_answers() -> None:
    """`make test` on a machine without PostgreSQL: the fixtures fall back to pgserver."""
    from tests.fixtures.postgres import resolve_admin_dsn

    dsn = resolve_admin_dsn({}, default="postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=2")
    assert "host=%2F" in dsn  # a Unix socket: the embedded server, not a TCP one
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT current_setting('server_version_num')::int >= 160000").fetchone() == (True,)


def test_a_configured_server_is_used_as_it_is() -> None:
    from tests.fixtures.postgres import resolve_admin_dsn

    url = "postgresql://someone@db.example:5433/postgres"
    assert resolve_admin_dsn({"WECHAT_DATACUBE_TEST_PG": url}) == url
