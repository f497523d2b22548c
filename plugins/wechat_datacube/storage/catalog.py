"""What the live database holds: columns, comments, keys and relations, read from the catalog.

The reconcile pass, the numbered migrations and the views compare these with what the
code generates, and issue DDL only for what differs.
"""

from __future__ import annotations

from typing import Any

import psycopg


def qualified(schema: str, name: str) -> str:
    """``"schema"."name"`` as ``to_regclass`` reads it (both are validated identifiers)."""
    return f'"{schema}"."{name}"'


def live_columns(cur: psycopg.Cursor[Any], schema: str, table: str) -> dict[str, tuple[str, str | None]]:
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


def relation_comment(cur: psycopg.Cursor[Any], schema: str, name: str) -> str | None:
    """The comment of a table or view (None when it has none or does not exist)."""
    cur.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", (qualified(schema, name),))
    row = cur.fetchone()
    return row[0] if row else None


def relation_exists(cur: psycopg.Cursor[Any], schema: str, name: str) -> bool:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified(schema, name),))
    row = cur.fetchone()
    return bool(row and row[0])


def live_primary_key(cur: psycopg.Cursor[Any], schema: str, table: str) -> tuple[str, ...]:
    """The primary key columns of a live table, in key order (() when it has none)."""
    cur.execute(
        """
        SELECT a.attname
          FROM pg_index i
          JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) ON true
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE i.indrelid = to_regclass(%s) AND i.indisprimary
         ORDER BY k.pos
        """,
        (qualified(schema, table),),
    )
    return tuple(r[0] for r in cur.fetchall())


def primary_key_name(cur: psycopg.Cursor[Any], schema: str, table: str) -> str | None:
    """The name of a live table's primary key constraint (None when it has none)."""
    cur.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s) AND contype = 'p'",
        (qualified(schema, table),),
    )
    row = cur.fetchone()
    return row[0] if row else None
