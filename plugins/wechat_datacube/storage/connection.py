"""Which schema, and the transactions every storage function runs in.

Connections are psycopg 3 connections as returned by ``PostgresHook.get_conn()`` (not in
autocommit) or opened in autocommit (the token store). Every storage function that writes
commits its own work in one transaction and refuses a connection with a transaction
already open: psycopg would turn the block into a savepoint and leave the commit to the
caller, so a window that looks written could be lost when the caller closes the connection.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from wechat_datacube.errors import ConfigError

#: The data schema when an account names none.
DEFAULT_SCHEMA = "wechat"

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_RESERVED_SCHEMAS = {"public", "information_schema"}


def validate_schema_name(name: str) -> str:
    """Return ``name`` if it is a safe, unquoted PostgreSQL schema name, else ConfigError.

    Lower-case letters, digits and ``_``, not starting with a digit, at most 63 bytes,
    not ``pg_*`` (reserved by PostgreSQL) nor ``public``/``information_schema``. Quoting
    would make any name *work*; the rule keeps names that people can type in psql.
    """
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name) or len(name) > 63:
        raise ConfigError(
            f"invalid schema name {name!r}: use 1-63 lower-case letters, digits or '_', not starting with a digit"
        )
    if name.startswith("pg_") or name in _RESERVED_SCHEMAS:
        raise ConfigError(f"invalid schema name {name!r}: reserved by PostgreSQL or shared; choose e.g. 'wechat'")
    return name


def _require_idle(conn: psycopg.Connection[Any]) -> None:
    status = conn.info.transaction_status
    if status != psycopg.pq.TransactionStatus.IDLE:
        raise ConfigError(
            f"storage needs a connection with no open transaction (status {status.name}); commit or roll back first"
        )


@contextmanager
def own_transaction(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """One transaction that storage opens and commits (or rolls back on error).

    Refuses a connection that is already inside a transaction (see the module doc). Works
    in autocommit and in the default (non-autocommit) mode of ``PostgresHook.get_conn()``.
    """
    _require_idle(conn)
    with conn.transaction():
        yield


@contextmanager
def read_transaction(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """For reads: join the caller's open transaction, else open and close one (never leave one open)."""
    if conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
        yield
        return
    with own_transaction(conn):
        yield


def read_alone(conn: psycopg.Connection[Any], query: str, params: Any = None) -> tuple[Any, ...] | None:
    """The first row of one read-only statement sent on its own: one round trip, no transaction.

    Why not :func:`read_transaction`: that adds a BEGIN and a COMMIT around the statement.
    The schema check runs at every task try, so it costs exactly one statement; a single
    statement is atomic by itself. The connection's autocommit setting is restored after.
    """
    _require_idle(conn)
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        return conn.execute(query, params).fetchone()
    finally:
        conn.autocommit = autocommit


def lock_until_commit(cur: psycopg.Cursor[Any], name: str) -> None:
    """Take the transaction-level advisory lock called ``name`` (released by commit or rollback)."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (name,))
