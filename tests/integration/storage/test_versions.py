"""ensure_schema: one statement when the schema is current, a migration when it is behind."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.fixtures.storage import at_once, sent_messages
from wechat_datacube.endpoints import ENDPOINTS, Column
from wechat_datacube.errors import ConfigError
from wechat_datacube.storage import migrations
from wechat_datacube.storage.migrations import MIGRATIONS, ensure_schema, migrate
from wechat_datacube.storage.versions import Migration, fingerprint

ALL_VERSIONS = [m.version for m in MIGRATIONS]


class CountingCursor(psycopg.Cursor[Any]):
    """A real cursor that also records every statement executed through it."""

    executed: list[str] = []

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> CountingCursor:
        CountingCursor.executed.append(query if isinstance(query, str) else query.as_string(self))
        return super().execute(query, params, **kwargs)


@pytest.fixture
def conn(fresh_pg: tuple[str, str]) -> Iterator[psycopg.Connection[Any]]:
    CountingCursor.executed = []
    with psycopg.connect(fresh_pg[1], cursor_factory=CountingCursor) as connection:
        yield connection


def ensure_counted(conn: psycopg.Connection[Any]) -> tuple[bool, list[str], list[str]]:
    """(ensure_schema's answer, the messages sent to the server, the statements executed by cursors)."""
    CountingCursor.executed = []
    answer: list[bool] = []
    sent = sent_messages(conn, lambda: answer.append(ensure_schema(conn)))
    return answer[0], sent, list(CountingCursor.executed)


def relations(conn: psycopg.Connection[Any], schema: str = "wechat") -> set[str]:
    rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))
    names = {r[0] for r in rows}
    conn.rollback()
    return names


def test_a_current_schema_costs_exactly_one_statement(conn: psycopg.Connection[Any]) -> None:
    migrate(conn)
    migrated, sent, executed = ensure_counted(conn)
    assert migrated is False
    assert len(executed) == 1 and executed[0].startswith("SELECT")
    assert len(sent) == 1, sent  # no BEGIN, no COMMIT: the one statement is all the server sees
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE and conn.autocommit is False


def test_an_empty_database_is_migrated_once_then_checked_in_one_statement(conn: psycopg.Connection[Any]) -> None:
    migrated, sent, _ = ensure_counted(conn)
    assert migrated is True and len(sent) > 40  # the full migration: every step, reconcile, views
    assert {"schema_migrations", "api_response", "load_log", "quota_block", "daily_readers"} <= relations(conn)
    assert [r[0] for r in conn.execute("SELECT version FROM wechat.schema_migrations ORDER BY 1")] == ALL_VERSIONS
    conn.rollback()
    migrated, sent, _ = ensure_counted(conn)
    assert (migrated, len(sent)) == (False, 1)


def test_the_fingerprint_is_the_ledgers_comment(conn: psycopg.Connection[Any]) -> None:
    migrate(conn)
    (comment,) = conn.execute("SELECT obj_description('wechat.schema_migrations'::regclass, 'pg_class')").fetchone()
    conn.rollback()
    assert comment == fingerprint(migrations.DATA_TRACK, "wechat")
    assert comment.startswith(f"wechat_datacube data schema: migration {ALL_VERSIONS[-1]}, definition ")


def test_a_registry_change_makes_ensure_schema_migrate(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate(conn)
    spec = ENDPOINTS["getusershare"]
    monkeypatch.setitem(
        ENDPOINTS, spec.name, spec._replace(columns=(*spec.columns, Column("forward_user", "bigint", "Forwarders.")))
    )
    migrated, _, _ = ensure_counted(conn)
    assert migrated is True
    assert conn.execute("SELECT col_description('wechat.user_share'::regclass, 4)").fetchone() is not None
    assert conn.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'wechat' AND table_name = 'user_share'"
        " AND column_name = 'forward_user'"
    ).fetchone() == (1,)
    conn.rollback()
    migrated, sent, _ = ensure_counted(conn)
    assert (migrated, len(sent)) == (False, 1)


def test_a_changed_view_makes_ensure_schema_migrate(conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    migrate(conn)
    real = migrations.views

    def changed(schema: str) -> list[Any]:
        return [v._replace(comment=v.comment + " (reworded)") if v.name == "daily_readers" else v for v in real(schema)]

    monkeypatch.setattr(migrations, "views", changed)
    assert ensure_counted(conn)[0] is True
    assert ensure_counted(conn)[0] is False


@pytest.mark.parametrize("relation", ["user_share", "daily_readers", "article_read_scene", "article_total_account_msgid_idx"])
def test_a_missing_relation_makes_ensure_schema_migrate(conn: psycopg.Connection[Any], relation: str) -> None:
    migrate(conn)
    with conn.transaction():
        (kind,) = conn.execute("SELECT relkind FROM pg_class WHERE oid = %s::regclass", (f"wechat.{relation}",)).fetchone()
        drop = {"r": "TABLE", "v": "VIEW", "i": "INDEX"}[kind]
        conn.execute(sql.SQL("DROP {} {} CASCADE").format(sql.SQL(drop), sql.Identifier("wechat", relation)))
    assert ensure_counted(conn)[0] is True
    assert conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"wechat.{relation}",)).fetchone() == (True,)
    conn.rollback()
    assert ensure_counted(conn)[0] is False


def test_a_new_numbered_step_makes_ensure_schema_migrate(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate(conn)

    def add_table(cur: psycopg.Cursor[Any], schema: str) -> None:
        cur.execute(sql.SQL("CREATE TABLE {} (id integer)").format(sql.Identifier(schema, "from_step_99")))

    track = migrations.DATA_TRACK
    monkeypatch.setattr(migrations, "DATA_TRACK", dataclasses.replace(
        track, steps=(*track.steps, Migration(99, "a step of the next release", add_table))
    ))
    assert ensure_counted(conn)[0] is True
    assert "from_step_99" in relations(conn)
    assert [r[0] for r in conn.execute("SELECT version FROM wechat.schema_migrations ORDER BY 1")] == [*ALL_VERSIONS, 99]
    conn.rollback()
    assert ensure_counted(conn)[0] is False


def test_a_schema_migrated_by_newer_code_is_refused(conn: psycopg.Connection[Any]) -> None:
    migrate(conn)
    with conn.transaction():  # what a newer release leaves: a step we do not know, its own fingerprint
        conn.execute("INSERT INTO wechat.schema_migrations (version, name) VALUES (999, 'future')")
        conn.execute("COMMENT ON TABLE wechat.schema_migrations IS 'wechat_datacube data schema: migration 999'")
    with pytest.raises(ConfigError, match=r"migration\(s\) \[999\] this code does not know"):
        ensure_schema(conn)


def test_ensure_schema_refuses_a_connection_inside_a_transaction(conn: psycopg.Connection[Any]) -> None:
    migrate(conn)
    conn.execute("SELECT 1")
    with pytest.raises(ConfigError, match="no open transaction"):
        ensure_schema(conn)


def test_ensure_schema_rejects_a_bad_schema_name_before_any_statement(conn: psycopg.Connection[Any]) -> None:
    sent = sent_messages(conn, lambda: pytest.raises(ConfigError, ensure_schema, conn, "Bad-Name"))
    assert sent == []


def test_ensure_schema_with_the_postgres_hook_connection(fresh_pg: tuple[str, str]) -> None:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook_conn = PostgresHook(postgres_conn_id=fresh_pg[0]).get_conn()
    try:
        assert ensure_schema(hook_conn) is True
        assert ensure_schema(hook_conn) is False
        assert hook_conn.autocommit is False
        assert hook_conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    finally:
        hook_conn.close()


def test_four_tasks_starting_at_once_on_an_empty_database_all_succeed(fresh_pg: tuple[str, str]) -> None:
    # Those that saw it behind migrated one after the other (the lock); a late one may find it current.
    assert True in at_once(ensure_schema, fresh_pg[1])
    with psycopg.connect(fresh_pg[1]) as check:
        assert [r[0] for r in check.execute("SELECT version FROM wechat.schema_migrations ORDER BY 1")] == ALL_VERSIONS
        check.rollback()
        assert ensure_schema(check) is False
