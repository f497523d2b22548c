"""Where the dashboard reads from: the accounts file names each account's Postgres connection.

The same file the DAGs are built from (:mod:`wechat_datacube.accounts`), so the dashboard
shows exactly the accounts the pipeline loads, from the connection and schema it loads
them into. Reads run in one read-only transaction with a statement timeout: a page view
can neither write nor hold a slow query open. Error messages name the account or the
connection id, never a DSN or password.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import Cursor

from wechat_datacube.accounts import AccountConfig, AccountConfigError, load_accounts

log = logging.getLogger(__name__)

#: Longest a dashboard query may run (ms).
STATEMENT_TIMEOUT_MS = 15_000


class DashboardError(Exception):
    """A request the dashboard cannot serve; the message is safe to show to the user."""

    status_code = 400


class UnknownAccountError(DashboardError):
    status_code = 404


class SourceUnavailableError(DashboardError):
    status_code = 503


def configured_accounts() -> tuple[list[AccountConfig], list[str]]:
    """The valid accounts and the messages of broken entries (an unusable file is one message).

    Never raises: whatever is in the accounts file, the page and ``/api/accounts`` answer
    (with the errors listed) instead of a 500.
    """
    try:
        loaded = load_accounts()
    except AccountConfigError as exc:
        return [], [str(exc)]
    except Exception as exc:  # noqa: BLE001 - load_accounts should turn every problem into the above
        log.exception("dashboard: the accounts file could not be loaded")
        return [], [f"the accounts file could not be loaded ({type(exc).__name__}); see the api-server log"]
    return loaded.accounts, [str(e) for e in loaded.errors]


def get_account(name: str) -> AccountConfig:
    for account in configured_accounts()[0]:
        if account.name == name:
            return account
    raise UnknownAccountError(f"no account named {name!r} in the accounts file")


def _connect(conn_id: str) -> psycopg.Connection[Any]:
    """A psycopg 3 connection through Airflow's connection (env, secrets backend or metadata DB)."""
    # Imported here: the plugin module is loaded by every Airflow process, the hook only by the api-server.
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    try:
        conn = PostgresHook(postgres_conn_id=conn_id).get_conn()
    except Exception as exc:  # noqa: BLE001 - any failure means "unavailable"; the message must stay generic
        log.warning("dashboard: cannot open Postgres connection %r: %s", conn_id, type(exc).__name__)
        raise SourceUnavailableError(
            f"cannot open Postgres connection {conn_id!r} ({type(exc).__name__}); check that it exists and the "
            "database is up"
        ) from None
    if not isinstance(conn, psycopg.Connection):  # psycopg2 would need another code path
        conn.close()
        raise SourceUnavailableError(f"Postgres connection {conn_id!r} is not a psycopg 3 connection")
    return conn


@contextmanager
def read_cursor(account: AccountConfig) -> Iterator[Cursor[Any]]:
    """A tuple cursor in one read-only transaction on the account's connection, closed afterwards."""
    conn = _connect(account.postgres_conn_id)
    try:
        conn.autocommit = False
        conn.read_only = True
        with conn.transaction(), conn.cursor() as cur:
            # JIT off: the dashboard's statements are short, and compiling one cost up to 274 ms (B7).
            cur.execute(
                "SELECT set_config('statement_timeout', %s, true), set_config('jit', 'off', true)",
                (str(STATEMENT_TIMEOUT_MS),),
            )
            yield cur
    except psycopg.Error as exc:
        log.warning("dashboard: query failed for account %r: %s", account.name, type(exc).__name__)
        raise SourceUnavailableError(
            f"reading account {account.name!r} failed ({type(exc).__name__})"
        ) from None
    finally:
        conn.close()
