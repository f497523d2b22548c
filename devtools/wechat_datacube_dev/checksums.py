"""One checksum of a typed table's contents, for tests, benchmarks and the reliability suite.

"Loading again changed nothing" and "the faulty run stored what the clean one did" are
judged by comparing tables, and a comparison is only as good as its checksum: it must not
depend on row order or on bookkeeping that changes with every write (``loaded_at``,
``response_id``). So it is computed here, once: a row count and the md5 of the rows' text
sorted, over the registry's columns of the table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

from wechat_datacube.endpoints import LEGACY, get_endpoint

#: (row count, md5 of the sorted rows' text; the md5 of '' for an empty table).
Checksum = tuple[int, str]


def table_checksums(
    dsn: str,
    endpoints: Iterable[str] = LEGACY,
    *,
    schema: str = "wechat",
    begin: dt.date | None = None,
    end: dt.date | None = None,
    with_account: bool = True,
    with_extra: bool = False,
) -> dict[str, Checksum]:
    """Row count and an order-independent md5 of each endpoint's table, by table name.

    Over the registry's columns, and ``account`` unless ``with_account`` is false (so two
    accounts loaded from the same data compare equal), and the ``extra`` column (unknown
    fields WeChat sent) if ``with_extra``; optionally only the rows whose date column lies
    in [begin, end]. Bookkeeping (loaded_at, response_id) is left out: loading the same
    data again gives the same checksum.
    """
    out: dict[str, Checksum] = {}
    with psycopg.connect(dsn) as conn:
        for endpoint in endpoints:
            spec = get_endpoint(endpoint)
            columns = (("account",) if with_account else ()) + spec.column_names + (("extra",) if with_extra else ())
            where = sql.SQL("")
            params: tuple[Any, ...] = ()
            if begin is not None and end is not None:
                where = sql.SQL(" WHERE {} BETWEEN %s AND %s").format(sql.Identifier(spec.date_column))
                params = (begin, end)
            query = sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                "FROM (SELECT {cols} FROM {tbl}{where}) t"
            ).format(
                cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
                tbl=sql.Identifier(schema, spec.table),
                where=where,
            )
            count, digest = conn.execute(query, params).fetchone()
            out[spec.table] = (count, digest)
    return out
