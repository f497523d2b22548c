"""Database schema: DDL generated from the endpoint registry, and versioned migrations.

Why generated: the registry (:mod:`wechat_datacube.endpoints`) is the one place that
knows an endpoint's columns, types, key and comments. Writing the tables by hand would
let the two drift; here the typed tables *are* the registry, rendered as SQL.

How the schema evolves:

* :data:`MIGRATIONS` is an append-only list of numbered steps, recorded in
  ``<schema>.schema_migrations``. Never edit a released step; add a new one.
* After the numbered steps, :func:`reconcile` compares the live tables with the
  registry and applies what is *additive and safe*: a table for a new endpoint, a
  column the registry gained (``ADD COLUMN IF NOT EXISTS``, nullable), a changed
  comment, the window index. It refuses (ConfigError) what is not safe to guess: a
  column whose type changed, or a changed primary key: those need a numbered step.
  So a registry change is applied by the next :func:`migrate`, and a registry change
  that would need a data migration stops the pipeline with a clear message instead of
  silently diverging.
* Everything runs in one transaction holding a transaction-level advisory lock keyed
  on the schema name, so several workers starting together serialise: the first one
  applies the steps, the others wait, then find nothing left to do.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from wechat_datacube.endpoints import ENDPOINTS, Column, ColumnType, EndpointSpec
from wechat_datacube.errors import ConfigError
from wechat_datacube.storage_rows import ACCOUNT_COLUMN, EXTRA_COLUMN
from wechat_datacube.storage_views import ensure_views, jsonb_as

log = logging.getLogger(__name__)

DEFAULT_SCHEMA = "wechat"

#: Registry column type -> PostgreSQL type (as ``format_type`` spells it, so the two compare).
SQL_TYPES: dict[ColumnType, str] = {
    "int": "integer",
    "bigint": "bigint",
    "text": "text",
    "date": "date",
    "float": "double precision",
    "jsonb": "jsonb",
    "bool": "boolean",
}

#: Values of ``api_response.status`` and ``load_log.status``. ``kept``: the answer would have
#: shrunk stored rows, which were kept (see wechat_datacube.history_guard).
STATUSES = ("loaded", "empty", "kept", "not_ready", "failed")

#: The columns every typed table has besides the registry's, with their SQL and comment.
FIXED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    (ACCOUNT_COLUMN, "text NOT NULL", "Account the row belongs to: its name in the accounts file (not the AppID)."),
    (EXTRA_COLUMN, "jsonb NOT NULL DEFAULT '{}'::jsonb", "Fields WeChat sent that the registry does not know yet."),
    ("loaded_at", "timestamptz NOT NULL DEFAULT now()", "When this row was written."),
    ("response_id", "bigint NOT NULL", "The api_response row this row was parsed from."),
)
#: Names a registry column may not use.
RESERVED_COLUMNS = tuple(c[0] for c in FIXED_COLUMNS)

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


@contextmanager
def own_transaction(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """One transaction that this module opens and commits (or rolls back on error).

    Refuses a connection that is already inside a transaction: psycopg would turn our
    block into a savepoint and leave the commit to the caller, so a window that looks
    written could be lost when the caller closes the connection. Works in autocommit
    and in the default (non-autocommit) mode of ``PostgresHook.get_conn()``.
    """
    status = conn.info.transaction_status
    if status != psycopg.pq.TransactionStatus.IDLE:
        raise ConfigError(
            f"storage needs a connection with no open transaction (status {status.name}); commit or roll back first"
        )
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


# --- DDL generated from the registry ----------------------------------------------


def _check_spec(spec: EndpointSpec) -> None:
    clash = set(spec.column_names) & set(RESERVED_COLUMNS)
    if clash:
        raise ConfigError(f"{spec.name}: registry column(s) {sorted(clash)} clash with the table's own columns")
    if spec.date_column not in spec.key:
        raise ConfigError(f"{spec.name}: {spec.date_column} must be part of the key (windows are replaced by date)")


def column_sql(column: Column) -> str:
    """SQL type (and NOT NULL for key columns) of a registry column."""
    return SQL_TYPES[column.type] + (" NOT NULL" if column.required else "")


def table_comment(spec: EndpointSpec) -> str:
    return f"WeChat datacube {spec.name}: {spec.description}"


def primary_key(spec: EndpointSpec) -> tuple[str, ...]:
    return (ACCOUNT_COLUMN, *spec.key)


def window_index_name(spec: EndpointSpec) -> str:
    return f"{spec.table}_account_{spec.date_column}_idx"


def needs_window_index(spec: EndpointSpec) -> bool:
    """The primary key already serves "account + ref_date range" when the key starts with ref_date."""
    return spec.key[0] != spec.date_column


def create_table_sql(schema: str, spec: EndpointSpec) -> sql.Composed:
    """``CREATE TABLE IF NOT EXISTS`` for one endpoint's typed table."""
    _check_spec(spec)
    s = sql.Identifier(schema)
    lines = [sql.SQL("{} {}").format(sql.Identifier(FIXED_COLUMNS[0][0]), sql.SQL(FIXED_COLUMNS[0][1]))]
    lines += [sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(column_sql(c))) for c in spec.columns]
    lines += [sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t, _ in FIXED_COLUMNS[1:]]
    lines.append(
        sql.SQL("CONSTRAINT {} PRIMARY KEY ({})").format(
            sql.Identifier(f"{spec.table}_pkey"), sql.SQL(", ").join(map(sql.Identifier, primary_key(spec)))
        )
    )
    lines.append(
        sql.SQL("CONSTRAINT {} FOREIGN KEY (response_id) REFERENCES {}.api_response (id)").format(
            sql.Identifier(f"{spec.table}_response_id_fkey"), s
        )
    )
    return sql.SQL("CREATE TABLE IF NOT EXISTS {}.{} (\n  {}\n)").format(
        s, sql.Identifier(spec.table), sql.SQL(",\n  ").join(lines)
    )


def create_window_index_sql(schema: str, spec: EndpointSpec) -> sql.Composed:
    return sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {}.{} ({}, {})").format(
        sql.Identifier(window_index_name(spec)),
        sql.Identifier(schema),
        sql.Identifier(spec.table),
        sql.Identifier(ACCOUNT_COLUMN),
        sql.Identifier(spec.date_column),
    )


def column_comments(spec: EndpointSpec) -> dict[str, str]:
    """Every column of the typed table -> its comment (registry's, then the fixed ones)."""
    comments = {name: comment for name, _, comment in FIXED_COLUMNS}
    comments.update({c.name: c.comment for c in spec.columns})
    return comments


def comment_table_sql(schema: str, spec: EndpointSpec) -> sql.Composed:
    return sql.SQL("COMMENT ON TABLE {}.{} IS {}").format(
        sql.Identifier(schema), sql.Identifier(spec.table), sql.Literal(table_comment(spec))
    )


def comment_column_sql(schema: str, spec: EndpointSpec, column: str, comment: str) -> sql.Composed:
    return sql.SQL("COMMENT ON COLUMN {}.{}.{} IS {}").format(
        sql.Identifier(schema), sql.Identifier(spec.table), sql.Identifier(column), sql.Literal(comment)
    )


def add_column_sql(schema: str, spec: EndpointSpec, column: Column) -> sql.Composed:
    # Nullable even for key columns: existing rows have no value. A new *key* column
    # changes the primary key, which reconcile refuses before getting here.
    return sql.SQL("ALTER TABLE {}.{} ADD COLUMN IF NOT EXISTS {} {}").format(
        sql.Identifier(schema), sql.Identifier(spec.table), sql.Identifier(column.name), sql.SQL(SQL_TYPES[column.type])
    )


# --- numbered migration steps -----------------------------------------------------

_BASE_TABLES = """
CREATE TABLE IF NOT EXISTS {s}.api_response (
  id          bigserial PRIMARY KEY,
  account     text NOT NULL,
  endpoint    text NOT NULL,
  begin_date  date NOT NULL,
  end_date    date NOT NULL,
  fetched_at  timestamptz NOT NULL DEFAULT now(),
  dag_id      text,
  run_id      text,
  try_number  integer,
  row_count   integer,
  status      text NOT NULL CONSTRAINT api_response_status_check CHECK (status IN ({statuses})),
  error       text,
  payload     jsonb
);
COMMENT ON TABLE {s}.api_response IS
  'Every datacube response as received (never the access token), with where it came from and what became of it.';
COMMENT ON COLUMN {s}.api_response.payload IS
  'Response body as received (JSON); a body that was not JSON is stored as a JSON string.';
COMMENT ON COLUMN {s}.api_response.row_count IS 'Typed rows written from this response (NULL when none were written).';
COMMENT ON COLUMN {s}.api_response.status IS
  'loaded / empty: rows replaced; kept: some days kept their stored rows; not_ready / failed: typed rows untouched.';
COMMENT ON COLUMN {s}.api_response.error IS 'Why the response was not (or not wholly) loaded.';
CREATE INDEX IF NOT EXISTS api_response_account_endpoint_idx
  ON {s}.api_response (account, endpoint, begin_date);

CREATE TABLE IF NOT EXISTS {s}.load_log (
  account     text NOT NULL,
  endpoint    text NOT NULL,
  ref_date    date NOT NULL,
  status      text NOT NULL CONSTRAINT load_log_status_check CHECK (status IN ({statuses})),
  row_count   integer NOT NULL DEFAULT 0,
  response_id bigint REFERENCES {s}.api_response (id),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  message     text,
  PRIMARY KEY (account, endpoint, ref_date)
);
COMMENT ON TABLE {s}.load_log IS
  'State of each (account, endpoint, ref_date): loaded / empty are final for the planner; failed / not_ready are retried.';
COMMENT ON COLUMN {s}.load_log.response_id IS 'The api_response this state comes from.';
"""


def _m1_base_tables(cur: psycopg.Cursor[Any], schema: str) -> None:
    """api_response (raw responses) and load_log (per-date state)."""
    statuses = ", ".join(f"'{s}'" for s in STATUSES)
    cur.execute(sql.SQL(_BASE_TABLES.format(s="{s}", statuses=statuses)).format(s=sql.Identifier(schema)))


def _m2_endpoint_tables(cur: psycopg.Cursor[Any], schema: str) -> None:
    """One typed table per registry endpoint (the registry as of the run; reconcile keeps it current)."""
    for spec in ENDPOINTS.values():
        cur.execute(create_table_sql(schema, spec))


_QUOTA_BLOCK = """
CREATE TABLE IF NOT EXISTS {s}.quota_block (
  account       text NOT NULL,
  endpoint      text NOT NULL,
  blocked_until timestamptz NOT NULL,
  message       text,
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (account, endpoint)
);
COMMENT ON TABLE {s}.quota_block IS
  'An endpoint that answered 45009 (daily quota) is not called again for the account until blocked_until.';
"""


def _m3_quota_block(cur: psycopg.Cursor[Any], schema: str) -> None:
    """quota_block: shared memory of 45009 so parallel tasks stop calling at once."""
    cur.execute(sql.SQL(_QUOTA_BLOCK).format(s=sql.Identifier(schema)))


def _m4_status_kept(cur: psycopg.Cursor[Any], schema: str) -> None:
    statuses = sql.SQL(", ").join(map(sql.Literal, STATUSES))
    for table in ("api_response", "load_log"):
        name = sql.Identifier(f"{table}_status_check")
        cur.execute(
            sql.SQL("ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {c}, ADD CONSTRAINT {c} CHECK (status IN ({s}))").format(
                t=sql.Identifier(schema, table), c=name, s=statuses
            )
        )
    cur.execute(
        sql.SQL("COMMENT ON COLUMN {} IS {}").format(
            sql.Identifier(schema, "api_response", "status"),
            sql.Literal(
                "loaded / empty: rows replaced; kept: some days kept their stored rows; "
                "not_ready / failed: typed rows untouched."
            ),
        )
    )


def _recover_from_extra(cur: psycopg.Cursor[Any], schema: str, spec: EndpointSpec) -> None:
    """Move values a flat reading left in ``extra`` (inside ``detail``, or at its top) into their columns."""
    table = sql.Identifier(schema, spec.table)
    for column in spec.columns:
        if column.name in spec.key:
            continue
        name = sql.Identifier(column.name)
        found = sql.SQL("coalesce(extra -> 'detail' -> {n}, extra -> {n})").format(n=sql.Literal(column.name))
        value = jsonb_as(found, column.type)
        cur.execute(
            sql.SQL(
                "UPDATE {t} SET {c} = {v}, extra = (extra #- ARRAY['detail', {n}]) - {n}"
                " WHERE {c} IS NULL AND {v} IS NOT NULL"
            ).format(t=table, c=name, v=value, n=sql.Literal(column.name))
        )
    # What is left of a ``detail`` object is unknown fields: keep them as the new reading does.
    cur.execute(
        sql.SQL(
            "UPDATE {t} SET extra = (extra - 'detail') || (extra -> 'detail')"
            " WHERE jsonb_typeof(extra -> 'detail') = 'object'"
        ).format(t=table)
    )


def _m5_official_shapes(cur: psycopg.Cursor[Any], schema: str) -> None:
    """Replacement tables in the official shapes: every documented field typed, values recovered.

    Before this step the four replacement endpoints were read as flat rows, so their numbers
    (nested in ``detail`` by WeChat) landed in ``extra`` and the typed columns held NULL.
    This adds the newly typed columns, moves what ``extra`` holds into them, and folds
    ``title`` (which WeChat does not send for these endpoints) into ``extra`` before
    dropping the column. No row is deleted.
    """
    for spec in ENDPOINTS.values():
        if spec.family != "replacement":
            continue
        live = _live_columns(cur, schema, spec.table)
        if not live:
            continue  # reconcile creates it from the registry
        for column in spec.columns:
            if column.name not in live:
                cur.execute(add_column_sql(schema, spec, column))
        _recover_from_extra(cur, schema, spec)
        if "title" in live and "title" not in spec.column_names:
            table = sql.Identifier(schema, spec.table)
            cur.execute(
                sql.SQL(
                    "UPDATE {} SET extra = extra || jsonb_build_object('title', title)"
                    " WHERE title IS NOT NULL AND NOT extra ? 'title'"
                ).format(table)
            )
            cur.execute(sql.SQL("ALTER TABLE {} DROP COLUMN title").format(table))


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[psycopg.Cursor[Any], str], None]


#: Append-only. Released steps are never edited.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "api_response and load_log", _m1_base_tables),
    Migration(2, "typed endpoint tables from the registry", _m2_endpoint_tables),
    Migration(3, "quota_block", _m3_quota_block),
    Migration(4, "load state 'kept' (a shrinking answer did not erase stored rows)", _m4_status_kept),
    Migration(5, "replacement endpoints in their official shapes", _m5_official_shapes),
)


# --- reconcile: keep tables equal to the registry -----------------------------------


def _live_columns(cur: psycopg.Cursor[Any], schema: str, table: str) -> dict[str, tuple[str, str | None]]:
    """column -> (format_type, comment) of a live table ({} when the table does not exist)."""
    cur.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), col_description(a.attrelid, a.attnum)
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
        """,
        (schema, table),
    )
    return {name: (type_, comment) for name, type_, comment in cur.fetchall()}


def _live_table_comment(cur: psycopg.Cursor[Any], schema: str, table: str) -> str | None:
    cur.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", (f'"{schema}"."{table}"',))
    row = cur.fetchone()
    return row[0] if row else None


def _live_primary_key(cur: psycopg.Cursor[Any], schema: str, table: str) -> tuple[str, ...]:
    cur.execute(
        """
        SELECT a.attname
          FROM pg_index i
          JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) ON true
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE i.indrelid = to_regclass(%s) AND i.indisprimary
         ORDER BY k.pos
        """,
        (f'"{schema}"."{table}"',),
    )
    return tuple(r[0] for r in cur.fetchall())


def reconcile(cur: psycopg.Cursor[Any], schema: str) -> list[str]:
    """Bring every typed table in line with the registry; return what was changed.

    Additive changes are applied; incompatible ones raise ConfigError (see module doc).
    Issues no DDL at all when nothing drifted, so a routine start takes no table locks.
    """
    changes: list[str] = []
    for spec in ENDPOINTS.values():
        live = _live_columns(cur, schema, spec.table)
        if not live:
            cur.execute(create_table_sql(schema, spec))
            changes.append(f"created table {spec.table}")
            live = _live_columns(cur, schema, spec.table)
        else:
            pk = _live_primary_key(cur, schema, spec.table)
            if pk != primary_key(spec):
                raise ConfigError(
                    f"{schema}.{spec.table}: primary key is ({', '.join(pk)}) but the registry says "
                    f"({', '.join(primary_key(spec))}); add a numbered migration that rebuilds the table"
                )
            for column in spec.columns:
                if column.name not in live:
                    cur.execute(add_column_sql(schema, spec, column))
                    changes.append(f"added column {spec.table}.{column.name}")
                elif live[column.name][0] != SQL_TYPES[column.type]:
                    raise ConfigError(
                        f"{schema}.{spec.table}.{column.name} is {live[column.name][0]} but the registry says "
                        f"{SQL_TYPES[column.type]}; add a numbered migration that converts it"
                    )
            live = _live_columns(cur, schema, spec.table)
        if _live_table_comment(cur, schema, spec.table) != table_comment(spec):
            cur.execute(comment_table_sql(schema, spec))
            changes.append(f"commented table {spec.table}")
        for name, comment in column_comments(spec).items():
            if name in live and live[name][1] != comment:
                cur.execute(comment_column_sql(schema, spec, name, comment))
                changes.append(f"commented column {spec.table}.{name}")
        if needs_window_index(spec):
            cur.execute("SELECT to_regclass(%s)", (f'"{schema}"."{window_index_name(spec)}"',))
            row = cur.fetchone()
            if row is None or row[0] is None:
                cur.execute(create_window_index_sql(schema, spec))
                changes.append(f"created index {window_index_name(spec)}")
    changes.extend(ensure_views(cur, schema))
    return changes


# --- the entry point ----------------------------------------------------------------


def _lock_key(schema: str) -> str:
    return f"wechat_datacube.migrate:{schema}"


def migrate(conn: psycopg.Connection[Any], schema: str = DEFAULT_SCHEMA) -> list[int]:
    """Apply pending numbered migrations and reconcile the tables with the registry.

    Returns the versions applied by this call ([] when the schema was current). Safe to
    call at every task start and from many processes at once. ``conn`` is a psycopg 3
    connection (``PostgresHook(...).get_conn()``) with no transaction open; the work is
    committed before returning.
    """
    schema = validate_schema_name(schema)
    s = sql.Identifier(schema)
    with own_transaction(conn), conn.cursor() as cur:
        # Serialise concurrent starters before touching the catalog: CREATE ... IF NOT
        # EXISTS is not race-free in PostgreSQL (two creators can both fail on the unique index).
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (_lock_key(schema),))
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s))
        cur.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(s)
        )
        cur.execute(sql.SQL("SELECT version FROM {}.schema_migrations").format(s))
        done = {r[0] for r in cur.fetchall()}
        unknown = done - {m.version for m in MIGRATIONS}
        if unknown:
            raise ConfigError(
                f"schema {schema} has migration(s) {sorted(unknown)} this code does not know: "
                "it was migrated by a newer release; deploy that release here too"
            )
        applied: list[int] = []
        for step in MIGRATIONS:
            if step.version in done:
                continue
            log.info("schema %s: applying migration %d (%s)", schema, step.version, step.name)
            step.apply(cur, schema)
            cur.execute(
                sql.SQL("INSERT INTO {}.schema_migrations (version, name) VALUES (%s, %s)").format(s),
                (step.version, step.name),
            )
            applied.append(step.version)
        for change in reconcile(cur, schema):
            log.info("schema %s: reconciled with the registry: %s", schema, change)
    return applied
