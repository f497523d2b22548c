"""The typed tables' DDL, generated from the endpoint registry.

Why generated: the registry (:mod:`wechat_datacube.endpoints`) is the one place that
knows an endpoint's columns, types, key and comments. Writing the tables by hand would
let the two drift; here the typed tables *are* the registry, rendered as SQL. The
numbered migrations (:mod:`.migrations`) and the reconcile pass (:mod:`.reconcile`)
execute these statements; this module only builds them.
"""

from __future__ import annotations

from typing import NamedTuple

from psycopg import sql

from wechat_datacube.endpoints import Column, ColumnType, EndpointSpec
from wechat_datacube.errors import ConfigError
from wechat_datacube.load_status import LoadStatus
from wechat_datacube.storage.columns import ACCOUNT_COLUMN, FIXED_COLUMNS, RESERVED_COLUMNS, primary_key

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

#: Values ``api_response.status`` and ``load_log.status`` may hold: the load states.
STATUSES: tuple[LoadStatus, ...] = tuple(LoadStatus)


def statuses_sql() -> sql.Composed:
    """The list inside the status columns' ``CHECK (status IN (...))``, generated from :class:`LoadStatus`."""
    return sql.SQL(", ").join(map(sql.Literal, (str(s) for s in STATUSES)))


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


class ReadIndex(NamedTuple):
    """A secondary index some reader of a typed table needs, derived from the registry like the table.

    The key and the window index serve "account + date range"; these serve the lookups
    that are not by date (found with ``bench/dashboard_volume.py``, B7: three years of 50
    accounts). Created by migration 6 and, for tables created later, by the reconcile pass.
    """

    name: str
    table: str
    columns: tuple[str, ...]
    #: Which read needs it (docs, the migration log, the benchmark report).
    why: str


def read_indexes(spec: EndpointSpec) -> tuple[ReadIndex, ...]:
    """The read indexes of ``spec``'s table.

    * Per-article lookups: the dashboard asks the article tables for given articles by
      (account, msgid) — the cumulative curves of its top articles (tables keyed by
      ``stat_date``) and an article's latest title (tables with a ``title`` column, which
      label getarticletotaldetail's untitled articles) — over a year or all history. The
      key (account, ref_date, msgid, ...) makes each of those a walk over every row of the
      account in the range (B7: 12-100 ms per curves query over a year; < 1 ms with the index).
    """
    out: list[ReadIndex] = []
    if "msgid" in spec.key and ("title" in spec.column_names or "stat_date" in spec.key):
        out.append(
            ReadIndex(
                f"{spec.table}_account_msgid_idx",
                spec.table,
                (ACCOUNT_COLUMN, "msgid", spec.date_column),
                "articles by (account, msgid): the dashboard's top-article curves and titles",
            )
        )
    return tuple(out)


def create_read_index_sql(schema: str, index: ReadIndex) -> sql.Composed:
    return sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {}.{} ({})").format(
        sql.Identifier(index.name),
        sql.Identifier(schema),
        sql.Identifier(index.table),
        sql.SQL(", ").join(map(sql.Identifier, index.columns)),
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


def registry_ddl(schema: str, specs: list[EndpointSpec]) -> list[sql.Composed]:
    """Every statement that makes ``specs``' typed tables what the registry says (tables, comments, indexes).

    Not executed as such (reconcile issues only the ones that drifted): its text is what
    the schema fingerprint digests, so any registry change is seen by the one-query check.
    """
    out: list[sql.Composed] = []
    for spec in specs:
        out += [create_table_sql(schema, spec), comment_table_sql(schema, spec)]
        out += [comment_column_sql(schema, spec, name, text) for name, text in column_comments(spec).items()]
        if needs_window_index(spec):
            out.append(create_window_index_sql(schema, spec))
        out += [create_read_index_sql(schema, index) for index in read_indexes(spec)]
    return out
