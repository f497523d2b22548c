"""The launcher's connection strings: SQLAlchemy URL, Airflow connection, psql command line."""

from __future__ import annotations

import json

from wechat_datacube_dev.localrun.postgres import ExternalPostgres, airflow_connection, sqlalchemy_url


def test_sqlalchemy_url_for_tcp_and_for_a_unix_socket() -> None:
    tcp = {"host": "db.internal", "port": "5433", "user": "etl", "password": "p@ss/word", "dbname": "meta"}
    assert sqlalchemy_url(tcp) == "postgresql+psycopg://etl:p%40ss%2Fword@db.internal:5433/meta"
    socket = {"host": "/work/.local/pg", "user": "postgres", "dbname": "meta"}
    assert sqlalchemy_url(socket) == "postgresql+psycopg://postgres@/meta?host=%2Fwork%2F.local%2Fpg"


def test_airflow_connection_keeps_libpq_options_as_extras() -> None:
    conn = json.loads(airflow_connection(
        {"host": "db", "port": "5432", "user": "etl", "password": "x", "dbname": "wechat", "sslmode": "require"}
    ))
    assert conn == {"conn_type": "postgres", "host": "db", "port": 5432, "login": "etl", "password": "x",
                    "schema": "wechat", "extra": {"sslmode": "require"}}


def test_external_server_url_names_the_admin_database_and_never_puts_the_password_in_psql() -> None:
    server = ExternalPostgres("postgresql://etl:secret@db.internal:5433/maintenance")
    assert server.admin_db == "maintenance"
    assert server.params("wechat_datacube")["dbname"] == "wechat_datacube"
    command = server.psql_command("wechat_datacube")
    assert command[0] == "psql" and "secret" not in " ".join(command)
    assert "dbname=wechat_datacube" in command[1]
