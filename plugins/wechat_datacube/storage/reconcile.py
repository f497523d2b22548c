"""Keep the typed tables equal to the registry: apply what is additive and safe, refuse the rest.

After the numbered steps (:mod:`.migrations`), this pass compares the live tables with
the registry and applies what is *additive and safe*: a table for a new endpoint, a
column the registry gained (``ADD COLUMN IF NOT EXISTS``, nullable), a changed comment,
the window index, the views. It refuses (ConfigError) what is not safe to guess: a column
whose type changed, or a changed primary key: those need a numbered step. So a registry
change is applied by the next migration run, and a registry change that would need a data
migration stops the pipeline with a clear message instead of silently diverging.
"""

from __future__ import annotations

from typing import Any

import psycopg

from wechat_datacube.endpoints import ENDPOINTS, EndpointSpec
from wechat_datacube.errors import ConfigError
from wechat_datacube.storage.catalog import live_columns, live_primary_key, relation_comment, relation_exists
from wechat_datacube.storage.columns import primary_key
from wechat_datacube.storage.schema import (
    SQL_TYPES,
    add_column_sql,
    column_comments,
    comment_column_sql,
    comment_table_sql,
    create_table_sql,
    create_window_index_sql,
    needs_window_index,
    table_comment,
    window_index_name,
)
from wechat_datacube.storage.views import ensure_views


def _refuse_key_change(cur: psycopg.Cursor[Any], schema: str, spec: EndpointSpec) -> None:
    pk = live_primary_key(cur, schema, spec.table)
    if pk != primary_key(spec):
        raise ConfigError(
            f"{schema}.{spec.table}: primary key is ({', '.join(pk)}) but the registry says "
            f"({', '.join(primary_key(spec))}); add a numbered migration that rebuilds the table"
        )


def _add_columns(
    cur: psycopg.Cursor[Any], schema: str, spec: EndpointSpec, live: dict[str, tuple[str, str | None]]
) -> list[str]:
    """Add the registry's new columns; refuse a column whose type changed."""
    changes = []
    for column in spec.columns:
        if column.name not in live:
            cur.execute(add_column_sql(schema, spec, column))
            changes.append(f"added column {spec.table}.{column.name}")
        elif live[column.name][0] != SQL_TYPES[column.type]:
            raise ConfigError(
                f"{schema}.{spec.table}.{column.name} is {live[column.name][0]} but the registry says "
                f"{SQL_TYPES[column.type]}; add a numbered migration that converts it"
            )
    return changes


def _table(cur: psycopg.Cursor[Any], schema: str, spec: EndpointSpec) -> list[str]:
    """Create the table, or bring its columns in line; what was done."""
    if not live_columns(cur, schema, spec.table):
        cur.execute(create_table_sql(schema, spec))
        return [f"created table {spec.table}"]
    _refuse_key_change(cur, schema, spec)
    return _add_columns(cur, schema, spec, live_columns(cur, schema, spec.table))


def _comments(cur: psycopg.Cursor[Any], schema: str, spec: EndpointSpec) -> list[str]:
    changes = []
    if relation_comment(cur, schema, spec.table) != table_comment(spec):
        cur.execute(comment_table_sql(schema, spec))
        changes.append(f"commented table {spec.table}")
    live = live_columns(cur, schema, spec.table)
    for name, comment in column_comments(spec).items():
        if name in live and live[name][1] != comment:
            cur.execute(comment_column_sql(schema, spec, name, comment))
            changes.append(f"commented column {spec.table}.{name}")
    return changes


def _window_index(cur: psycopg.Cursor[Any], schema: str, spec: EndpointSpec) -> list[str]:
    if not needs_window_index(spec) or relation_exists(cur, schema, window_index_name(spec)):
        return []
    cur.execute(create_window_index_sql(schema, spec))
    return [f"created index {window_index_name(spec)}"]


def reconcile(cur: psycopg.Cursor[Any], schema: str) -> list[str]:
    """Bring every typed table and view in line with the registry; return what was changed.

    Additive changes are applied; incompatible ones raise ConfigError (see module doc).
    Issues no DDL at all when nothing drifted, so a run that finds nothing takes no table locks.
    """
    changes: list[str] = []
    for spec in ENDPOINTS.values():
        changes += _table(cur, schema, spec)
        changes += _comments(cur, schema, spec)
        changes += _window_index(cur, schema, spec)
    changes += ensure_views(cur, schema)
    return changes
