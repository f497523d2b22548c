"""The token schema as a migration track: created from nothing, and upgraded from the tables
earlier releases created with their own DDL (no ledger), rows kept."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.fixtures.storage import sent_messages
from wechat_datacube.errors import ConfigError
from wechat_datacube.storage.catalog import live_primary_key
from wechat_datacube.storage.migrations import MIGRATIONS, migrate
from wechat_datacube.storage.token_tables import TOKEN_MIGRATIONS, ensure_token_schema

SCHEMA = "wechat_tokens"

#: The tables as the release before this one created them (tokens.py's own DDL, no ledger):
#: written out, the oracle of the layout a deployment already has.
PREVIOUS_RELEASE = """
CREATE SCHEMA wechat_tokens;
CREATE TABLE wechat_tokens.access_token_cache (
    appid text NOT NULL, mode text NOT NULL, credential text NOT NULL DEFAULT '', token text,
    encrypted boolean NOT NULL DEFAULT false, expires_at timestamptz, refresh_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (appid, mode, credential));
CREATE TABLE wechat_tokens.authorizer_refresh_token (
    authorizer_appid text PRIMARY KEY, refresh_token text NOT NULL, encrypted boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now(), previous_refresh_token text,
    previous_encrypted boolean NOT NULL DEFAULT false);
INSERT INTO wechat_tokens.access_token_cache (appid, mode, credential, token, encrypted, expires_at, refresh_at)
    VALUES ('wx1', 'stable', 'fp1', 'enc-token', true, '2030-01-01', '2030-01-01');
INSERT INTO wechat_tokens.authorizer_refresh_token (authorizer_appid, refresh_token, encrypted, previous_refresh_token)
    VALUES ('wx2', 'enc-refresh', true, 'enc-previous');
"""

#: The earliest layout: the cache keyed (appid, mode), refresh tokens without a fallback.
EARLIEST_RELEASE = """
CREATE SCHEMA wechat_tokens;
CREATE TABLE wechat_tokens.access_token_cache (
    appid text NOT NULL, mode text NOT NULL, token text, encrypted boolean NOT NULL DEFAULT false,
    expires_at timestamptz, refresh_at timestamptz, updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (appid, mode));
CREATE TABLE wechat_tokens.authorizer_refresh_token (
    authorizer_appid text PRIMARY KEY, refresh_token text NOT NULL, encrypted boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO wechat_tokens.access_token_cache (appid, mode, token) VALUES ('wx1', 'classic', 'nobody-knows-its-secret');
INSERT INTO wechat_tokens.authorizer_refresh_token (authorizer_appid, refresh_token) VALUES ('wx2', 'enc-refresh');
"""


@pytest.fixture
def conn(fresh_pg: tuple[str, str]) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(fresh_pg[1], autocommit=True) as connection:  # as the token store opens it
        yield connection


def rows(conn: psycopg.Connection[Any], text: str) -> list[tuple[Any, ...]]:
    return conn.execute(text).fetchall()


def ledger(conn: psycopg.Connection[Any], schema: str = SCHEMA) -> list[int]:
    return [r[0] for r in rows(conn, f"SELECT version FROM {schema}.token_migrations ORDER BY 1")]


def columns(conn: psycopg.Connection[Any], table: str) -> set[str]:
    found = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s", (SCHEMA, table)
    )
    return {r[0] for r in found}


def assert_current_layout(conn: psycopg.Connection[Any]) -> None:
    assert ledger(conn) == [m.version for m in TOKEN_MIGRATIONS]
    assert live_primary_key(conn.cursor(), SCHEMA, "access_token_cache") == ("appid", "mode", "credential")
    assert {"previous_refresh_token", "previous_encrypted"} <= columns(conn, "authorizer_refresh_token")
    assert ensure_token_schema(conn, SCHEMA) is False


def test_a_new_database_gets_the_token_tables_then_checks_them_in_one_statement(conn: psycopg.Connection[Any]) -> None:
    assert ensure_token_schema(conn, SCHEMA) is True
    assert_current_layout(conn)
    sent = sent_messages(conn, lambda: ensure_token_schema(conn, SCHEMA))
    assert len(sent) == 1, sent


def test_the_previous_releases_tables_are_adopted_with_every_row_kept(conn: psycopg.Connection[Any]) -> None:
    conn.execute(PREVIOUS_RELEASE)
    before = rows(conn, "SELECT * FROM wechat_tokens.access_token_cache"), rows(
        conn, "SELECT * FROM wechat_tokens.authorizer_refresh_token"
    )
    assert ensure_token_schema(conn, SCHEMA) is True
    assert_current_layout(conn)
    after = rows(conn, "SELECT * FROM wechat_tokens.access_token_cache"), rows(
        conn, "SELECT * FROM wechat_tokens.authorizer_refresh_token"
    )
    assert after == before


def test_the_earliest_layout_is_rekeyed_by_credential_and_refresh_tokens_kept(conn: psycopg.Connection[Any]) -> None:
    conn.execute(EARLIEST_RELEASE)
    assert ensure_token_schema(conn, SCHEMA) is True
    assert_current_layout(conn)
    assert rows(conn, "SELECT count(*) FROM wechat_tokens.access_token_cache") == [(0,)]  # no key can match them
    assert rows(conn, "SELECT authorizer_appid, refresh_token, previous_refresh_token FROM "
                      "wechat_tokens.authorizer_refresh_token") == [("wx2", "enc-refresh", None)]


def test_a_data_schema_and_the_token_tables_can_share_a_schema(conn: psycopg.Connection[Any]) -> None:
    """Each track has its own ledger: neither mistakes the other's steps for its own."""
    migrate(conn, "shared")
    assert ensure_token_schema(conn, "shared") is True
    assert ledger(conn, "shared") == [1]
    assert rows(conn, "SELECT count(*) FROM shared.schema_migrations") == [(len(MIGRATIONS),)]
    assert ensure_token_schema(conn, "shared") is False
    assert migrate(conn, "shared") == []


def test_the_token_track_refuses_a_ledger_of_newer_code(conn: psycopg.Connection[Any]) -> None:
    ensure_token_schema(conn, SCHEMA)
    conn.execute("INSERT INTO wechat_tokens.token_migrations (version, name) VALUES (7, 'future')")
    conn.execute("COMMENT ON TABLE wechat_tokens.token_migrations IS 'newer'")
    with pytest.raises(ConfigError, match=r"migration\(s\) \[7\] this code does not know"):
        ensure_token_schema(conn, SCHEMA)
