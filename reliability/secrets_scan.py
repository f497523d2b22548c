"""R6: after every other phase, look for the app secrets and every issued token everywhere.

Secrets searched for: the AppSecret of every connection (the wrong one of R5 included)
and every token any simulator of the run handed out (access tokens of all modes, the R4
and R7 subprocesses' included). Places searched:

* every file under each Airflow home (component logs, task logs, DAG-processor logs) and
  the R4/R7 subprocess logs;
* every table of the Airflow metadata database (XCom values, rendered fields, run confs,
  task instances, the event log, serialized DAGs, ...), each row as text;
* every table of every data database except the token cache (``access_token_cache``,
  ``authorizer_refresh_token``), each row as text; the token cache is checked separately:
  every stored token must be marked encrypted and none may appear in plain text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.fixtures.postgres import ADMIN_DSN

TOKEN_CACHE_TABLES = {"access_token_cache", "authorizer_refresh_token"}


@dataclass
class Finding:
    place: str
    items: int
    bytes: int
    hits: list[str]


class Needles:
    """The strings to look for, matched in one pass per text."""

    def __init__(self, values: Iterable[str]) -> None:
        self.values = sorted({v for v in values if v and len(v) >= 8}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(v) for v in self.values)) if self.values else None

    def find(self, text: str) -> list[str]:
        if self._pattern is None:
            return []
        return sorted({m.group(0) for m in self._pattern.finditer(text)})


def _describe(hit: str) -> str:
    return f"{hit[:4]}…({len(hit)} chars)"  # never print the secret itself


def scan_files(roots: Iterable[Path], needles: Needles, exclude: Iterable[Path] = ()) -> Finding:
    skip = {p.resolve() for p in exclude}
    files = bytes_ = 0
    hits: list[str] = []
    for root in roots:
        paths = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in paths:
            if path.resolve() in skip:
                continue
            text = path.read_bytes().decode("utf-8", errors="replace")
            files += 1
            bytes_ += len(text)
            hits += [f"{path.name}: {_describe(h)}" for h in needles.find(text)]
    return Finding("log files", files, bytes_, hits)


def _tables(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
        "AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
    ).fetchall()


def scan_database(dsn: str, needles: Needles, label: str) -> tuple[Finding, dict[str, int]]:
    """Every row of every table as text, token-cache tables left out; (finding, rows per table)."""
    rows_per_table: dict[str, int] = {}
    bytes_ = 0
    hits: list[str] = []
    with psycopg.connect(dsn) as conn:
        for schema, table in _tables(conn):
            if table in TOKEN_CACHE_TABLES:
                continue
            count = 0
            cur = conn.cursor(name=f"scan_{table}"[:60])
            cur.itersize = 2000
            cur.execute(sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(schema, table)))
            for (text,) in cur:
                count += 1
                bytes_ += len(text)
                hits += [f"{schema}.{table}: {_describe(h)}" for h in needles.find(text)]
            cur.close()
            rows_per_table[f"{schema}.{table}"] = count
        conn.rollback()
    return Finding(label, sum(rows_per_table.values()), bytes_, hits), rows_per_table


def token_cache(dsn: str, needles: Needles) -> dict[str, Any]:
    """Rows of every token cache table: all encrypted? any plaintext hit?"""
    rows = encrypted = 0
    hits: list[str] = []
    with psycopg.connect(dsn) as conn:
        for schema, table in _tables(conn):
            if table != "access_token_cache":
                continue
            for text, is_encrypted in conn.execute(
                sql.SQL("SELECT t::text, t.encrypted FROM {} t WHERE t.token IS NOT NULL").format(
                    sql.Identifier(schema, table)
                )
            ).fetchall():
                rows += 1
                encrypted += bool(is_encrypted)
                hits += needles.find(text)
    return {"rows": rows, "encrypted": encrypted, "plaintext_hits": len(hits)}


def metadata_dsn(meta_db: str) -> str:
    return make_conninfo(**{**conninfo_to_dict(ADMIN_DSN), "dbname": meta_db})


def plant_canaries(canary: str, folder: Path, dsn: str) -> Path:
    """Put a fake secret where the scan must find it: a log file and a data table (positive controls)."""
    path = folder / "r6-canary.log"
    path.write_text(f"a line that leaks {canary} on purpose\n")
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE public.r6_canary (note text)")
        conn.execute("INSERT INTO public.r6_canary VALUES (%s)", (f"planted {canary}",))
    return path


def scan(
    *, homes: list[Path], extra_files: list[Path], meta_dbs: list[str], data_dsns: list[str], secrets: list[str],
    canary: str,
) -> dict[str, Any]:
    """Search everything for ``secrets``; ``canary`` was planted on purpose and must be found twice."""
    needles = Needles([*secrets, canary])
    findings = [scan_files([*homes, *extra_files], needles)]
    xcom_rows = 0
    for meta in meta_dbs:
        finding, per_table = scan_database(metadata_dsn(meta), needles, "Airflow metadata DB (all tables)")
        xcom_rows += per_table.get("public.xcom", 0)
        findings.append(finding)
    caches = []
    for dsn in data_dsns:
        finding, _ = scan_database(dsn, needles, "data databases (all tables but the token cache)")
        findings.append(finding)
        caches.append(token_cache(dsn, needles))
    merged: dict[str, Finding] = {}
    marker = _describe(canary)
    controls = 0
    for f in findings:
        m = merged.setdefault(f.place, Finding(f.place, 0, 0, []))
        m.items += f.items
        m.bytes += f.bytes
        controls += sum(marker in h for h in f.hits)
        m.hits += [h for h in f.hits if marker not in h]
    return {
        "canaries_found": controls,
        "needles": len(needles.values),
        "findings": list(merged.values()),
        "xcom_rows": xcom_rows,
        "token_cache": {
            "rows": sum(c["rows"] for c in caches),
            "encrypted": sum(c["encrypted"] for c in caches),
            "plaintext_hits": sum(c["plaintext_hits"] for c in caches),
        },
    }
