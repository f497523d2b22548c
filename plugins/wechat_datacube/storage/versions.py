"""How a schema is versioned: numbered steps recorded in a ledger, and a one-query check.

A :class:`Track` is one schema's history: an append-only tuple of numbered
:class:`Migration` steps, recorded in a ledger table (``<schema>.<track.ledger>``), then an
optional reconcile pass that keeps generated objects equal to the code. The data schema
and the token schema are two tracks (:mod:`.migrations`, :mod:`.token_tables`); each has
its own ledger, so both can even share one schema.

Why a fingerprint: running every step's check, the reconcile pass and the views under an
exclusive lock costs about 140 statements, and tasks start all the time. The ledger table's
comment holds a fingerprint of the code that last migrated the schema: the latest step and
a digest of everything the track generates (DDL from the registry, views). :func:`ensure`
reads it, together with the existence of every relation the track owns, in ONE statement,
and migrates only when something differs: new code (a step, a registry change) or a table
that went missing. A column dropped by hand is not seen by that check: :func:`migrate_track`
(``make`` targets and tests call it) repairs it.

:func:`migrate_track` runs in one transaction holding a transaction-level advisory lock
keyed on the schema name, so several workers starting together serialise: the first one
applies the steps, the others wait, then find nothing left to do.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from wechat_datacube.errors import ConfigError
from wechat_datacube.storage.catalog import qualified, relation_comment
from wechat_datacube.storage.connection import lock_until_commit, own_transaction, read_alone, validate_schema_name

log = logging.getLogger(__name__)

Step = Callable[[psycopg.Cursor[Any], str], None]


@dataclass(frozen=True)
class Migration:
    """One numbered step. Released steps are never edited: add a new one."""

    version: int
    name: str
    apply: Step


def _no_reconcile(cur: psycopg.Cursor[Any], schema: str) -> list[str]:
    return []


@dataclass(frozen=True)
class Track:
    """One schema's history and what it must hold."""

    #: Shown in the fingerprint and the log ("data", "token").
    name: str
    #: Table (in the migrated schema) that records the applied steps.
    ledger: str
    steps: tuple[Migration, ...]
    #: schema -> every table and view the track owns, its ledger excepted.
    relations: Callable[[str], list[str]]
    #: schema -> the text of everything the track generates; digested into the fingerprint.
    definition: Callable[[str], str]
    #: Runs after the steps at every migration; returns what it changed.
    reconcile: Callable[[psycopg.Cursor[Any], str], list[str]] = _no_reconcile


def fingerprint(track: Track, schema: str) -> str:
    """What the ledger's comment says once ``schema`` is migrated by this code."""
    steps = "\n".join(f"{m.version} {m.name}" for m in track.steps)
    digest = hashlib.sha256(f"{steps}\n{track.definition(schema)}".encode()).hexdigest()[:16]
    latest = max(m.version for m in track.steps)
    return f"wechat_datacube {track.name} schema: migration {latest}, definition {digest}"


def is_current(conn: psycopg.Connection[Any], schema: str, track: Track) -> bool:
    """Whether ``schema`` was migrated by this code and still holds every relation: ONE statement."""
    names = [qualified(schema, n) for n in (track.ledger, *track.relations(schema))]
    row = read_alone(
        conn,
        "SELECT coalesce(obj_description(to_regclass(%s), 'pg_class'), '') = %s"
        " AND bool_and(to_regclass(r) IS NOT NULL) FROM unnest(%s::text[]) AS r",
        (names[0], fingerprint(track, schema), names),
    )
    return bool(row and row[0])


def _create_ledger(cur: psycopg.Cursor[Any], schema: str, track: Track) -> None:
    s = sql.Identifier(schema)
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s))
    cur.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        ).format(sql.Identifier(schema, track.ledger))
    )


def _apply_steps(cur: psycopg.Cursor[Any], schema: str, track: Track) -> list[int]:
    """Apply the steps the ledger does not list; refuse a ledger written by newer code."""
    ledger = sql.Identifier(schema, track.ledger)
    cur.execute(sql.SQL("SELECT version FROM {}").format(ledger))
    done = {r[0] for r in cur.fetchall()}
    unknown = done - {m.version for m in track.steps}
    if unknown:
        raise ConfigError(
            f"schema {schema} has migration(s) {sorted(unknown)} this code does not know: "
            "it was migrated by a newer release; deploy that release here too"
        )
    applied: list[int] = []
    for step in track.steps:
        if step.version in done:
            continue
        log.info("schema %s: applying %s migration %d (%s)", schema, track.name, step.version, step.name)
        step.apply(cur, schema)
        cur.execute(sql.SQL("INSERT INTO {} (version, name) VALUES (%s, %s)").format(ledger), (step.version, step.name))
        applied.append(step.version)
    return applied


def _record_fingerprint(cur: psycopg.Cursor[Any], schema: str, track: Track) -> None:
    stamp = fingerprint(track, schema)
    if relation_comment(cur, schema, track.ledger) != stamp:
        ledger = sql.Identifier(schema, track.ledger)
        cur.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(ledger, sql.Literal(stamp)))


def migrate_track(conn: psycopg.Connection[Any], schema: str, track: Track) -> list[int]:
    """Apply pending steps, reconcile, and stamp the fingerprint; return the versions applied.

    Safe from many processes at once. ``conn`` has no transaction open; the work is
    committed before returning.
    """
    schema = validate_schema_name(schema)
    with own_transaction(conn), conn.cursor() as cur:
        # Serialise concurrent starters before touching the catalog: CREATE ... IF NOT
        # EXISTS is not race-free in PostgreSQL (two creators can both fail on the unique index).
        lock_until_commit(cur, f"wechat_datacube.migrate:{schema}")
        _create_ledger(cur, schema, track)
        applied = _apply_steps(cur, schema, track)
        for change in track.reconcile(cur, schema):
            log.info("schema %s: reconciled with the code: %s", schema, change)
        _record_fingerprint(cur, schema, track)
    return applied


def ensure(conn: psycopg.Connection[Any], schema: str, track: Track) -> bool:
    """Migrate ``schema`` only when :func:`is_current` says it is behind; whether it migrated."""
    schema = validate_schema_name(schema)
    if is_current(conn, schema, track):
        return False
    migrate_track(conn, schema, track)
    return True
