"""The data schema's numbered migrations, and the two ways to run them.

* :data:`MIGRATIONS` is an append-only list of numbered steps, recorded in
  ``<schema>.schema_migrations``. Never edit a released step; add a new one.
* After the numbered steps, :func:`wechat_datacube.storage.reconcile.reconcile` keeps the
  typed tables and views equal to the registry (additive changes only).
* :func:`ensure_schema` is what a task calls: one statement when the schema is current
  (see :mod:`.versions`), a full :func:`migrate` when it is behind.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import sql

from wechat_datacube.endpoints import ENDPOINTS, EndpointSpec
from wechat_datacube.storage.catalog import live_columns, relation_exists
from wechat_datacube.storage.connection import DEFAULT_SCHEMA
from wechat_datacube.storage.reconcile import reconcile
from wechat_datacube.storage.schema import (
    add_column_sql,
    create_read_index_sql,
    create_table_sql,
    create_window_index_sql,
    needs_window_index,
    read_indexes,
    registry_ddl,
    statuses_sql,
    window_index_name,
)
from wechat_datacube.storage.versions import Migration, Track, ensure, migrate_track
from wechat_datacube.storage.views import jsonb_as, views

log = logging.getLogger(__name__)

_STATUS_COMMENT = (
    "loaded / empty: rows replaced; kept: some days kept their stored rows; not_ready / failed: typed rows untouched."
)

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
COMMENT ON COLUMN {s}.api_response.status IS {status_comment};
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
    """api_response (raw responses) and load_log (per-date state); statuses from LoadStatus."""
    cur.execute(
        sql.SQL(_BASE_TABLES).format(
            s=sql.Identifier(schema), statuses=statuses_sql(), status_comment=sql.Literal(_STATUS_COMMENT)
        )
    )


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
    for table in ("api_response", "load_log"):
        name = sql.Identifier(f"{table}_status_check")
        cur.execute(
            sql.SQL("ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {c}, ADD CONSTRAINT {c} CHECK (status IN ({s}))").format(
                t=sql.Identifier(schema, table), c=name, s=statuses_sql()
            )
        )
    cur.execute(
        sql.SQL("COMMENT ON COLUMN {} IS {}").format(
            sql.Identifier(schema, "api_response", "status"), sql.Literal(_STATUS_COMMENT)
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


def _fold_title_into_extra(cur: psycopg.Cursor[Any], schema: str, spec: EndpointSpec) -> None:
    table = sql.Identifier(schema, spec.table)
    cur.execute(
        sql.SQL(
            "UPDATE {} SET extra = extra || jsonb_build_object('title', title)"
            " WHERE title IS NOT NULL AND NOT extra ? 'title'"
        ).format(table)
    )
    cur.execute(sql.SQL("ALTER TABLE {} DROP COLUMN title").format(table))


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
        live = live_columns(cur, schema, spec.table)
        if not live:
            continue  # reconcile creates it from the registry
        for column in spec.columns:
            if column.name not in live:
                cur.execute(add_column_sql(schema, spec, column))
        _recover_from_extra(cur, schema, spec)
        if "title" in live and "title" not in spec.column_names:
            _fold_title_into_extra(cur, schema, spec)


def ensure_read_indexes(cur: psycopg.Cursor[Any], schema: str) -> list[str]:
    """Create the registry's read indexes (:func:`.schema.read_indexes`) that are missing; what was done.

    Only on tables that exist: a table the registry gains later is created by the reconcile
    pass, which then calls this, so fresh, migrated and later-created tables all get them.
    """
    changes = []
    for spec in ENDPOINTS.values():
        if not relation_exists(cur, schema, spec.table):
            continue
        for index in read_indexes(spec):
            if not relation_exists(cur, schema, index.name):
                log.info("schema %s: creating index %s (%s)", schema, index.name, index.why)
                cur.execute(create_read_index_sql(schema, index))
                changes.append(f"created index {index.name}")
    return changes


def _m6_read_indexes(cur: psycopg.Cursor[Any], schema: str) -> None:
    """Indexes for the dashboard's lookups that are not by date (B7: 50 accounts x 3 years).

    Plain ``CREATE INDEX`` inside the migration's transaction: it blocks writes to the
    table while it builds (seconds for years of rows, see docs/benchmarks.md, B7), which a
    migration run between loads can afford; ``CONCURRENTLY`` cannot run in a transaction.
    """
    ensure_read_indexes(cur, schema)


#: The families whose tables migration 7 brings to deployments made before them.
_STEP_7_FAMILIES = ("user", "message", "interface")


def _m7_user_message_interface(cur: psycopg.Cursor[Any], schema: str) -> None:
    """Typed tables of the user, message and interface families (issue #18), with the registry's indexes.

    The reconcile pass would create them too; a numbered step makes the upgrade explicit:
    the ledger records when a deployment gained the families, and the upgrade's log names
    the step. Every statement is ``IF NOT EXISTS`` because the tables may already be there:
    step 2 of a fresh schema creates every table of the registry it runs with, and a
    reconcile pass may have made one. A table that exists is left as it is, rows included;
    the reconcile pass after the steps checks its columns and key and writes the comments,
    as it does for every typed table.
    """
    for spec in ENDPOINTS.values():
        if spec.family not in _STEP_7_FAMILIES:
            continue
        cur.execute(create_table_sql(schema, spec))
        if needs_window_index(spec):
            cur.execute(create_window_index_sql(schema, spec))
        for index in read_indexes(spec):
            cur.execute(create_read_index_sql(schema, index))


#: Append-only. Released steps are never edited.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "api_response and load_log", _m1_base_tables),
    Migration(2, "typed endpoint tables from the registry", _m2_endpoint_tables),
    Migration(3, "quota_block", _m3_quota_block),
    Migration(4, "load state 'kept' (a shrinking answer did not erase stored rows)", _m4_status_kept),
    Migration(5, "replacement endpoints in their official shapes", _m5_official_shapes),
    Migration(6, "indexes for the dashboard's lookups by article", _m6_read_indexes),
    Migration(7, "the user, message and interface tables", _m7_user_message_interface),
)


def _reconcile(cur: psycopg.Cursor[Any], schema: str) -> list[str]:
    """The registry reconcile pass, then the read indexes of tables it may just have created."""
    return [*reconcile(cur, schema), *ensure_read_indexes(cur, schema)]


def _relations(schema: str) -> list[str]:
    """The tables, indexes and views a migration re-creates when they are missing: the reconciled ones.

    The numbered steps' own tables (api_response, load_log, quota_block) are not listed: no
    migration re-creates them once recorded, so their absence would only make every task
    migrate in vain (and then fail on the missing table, as it would anyway).
    """
    specs = list(ENDPOINTS.values())
    return [
        *(s.table for s in specs),
        *(window_index_name(s) for s in specs if needs_window_index(s)),
        *(i.name for s in specs for i in read_indexes(s)),
        *(v.name for v in views(schema)),
    ]


def _definition(schema: str) -> str:
    """The registry's DDL and the views, as text: any change to either changes the fingerprint."""
    derived = views(schema)
    parts = [*registry_ddl(schema, list(ENDPOINTS.values())), *(v.select for v in derived)]
    return "\n".join([*(p.as_string() for p in parts), *(v.comment for v in derived)])


DATA_TRACK = Track("data", "schema_migrations", MIGRATIONS, _relations, _definition, _reconcile)


def migrate(conn: psycopg.Connection[Any], schema: str = DEFAULT_SCHEMA) -> list[int]:
    """Apply pending numbered migrations and reconcile the tables with the registry.

    Returns the versions applied by this call ([] when there were none). Safe to call from
    many processes at once; even with nothing to do it costs a few statements per typed table
    under an exclusive lock (about 140 with the registry's 21 tables), so tasks call
    :func:`ensure_schema` instead. ``conn`` is a psycopg 3 connection
    (``PostgresHook(...).get_conn()``) with no transaction open; the work is committed
    before returning.
    """
    return migrate_track(conn, schema, DATA_TRACK)


def ensure_schema(conn: psycopg.Connection[Any], schema: str = DEFAULT_SCHEMA) -> bool:
    """Make sure ``schema`` is what this code expects: ONE statement when it is; else :func:`migrate`.

    Returns whether it had to migrate. Called at every task try (the window loader, the
    backfill planner). ``conn`` has no transaction open.
    """
    return ensure(conn, schema, DATA_TRACK)
