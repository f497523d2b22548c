"""Schema migrations on real PostgreSQL: from empty, re-applied, concurrent, and equal to the registry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.fixtures.storage import at_once
from wechat_datacube.endpoints import ENDPOINTS, Column, EndpointSpec
from wechat_datacube.errors import ConfigError
from wechat_datacube.load_status import LoadStatus
from wechat_datacube.storage.catalog import live_primary_key
from wechat_datacube.storage.migrations import DATA_TRACK, MIGRATIONS, ensure_schema, migrate
from wechat_datacube.storage.versions import fingerprint

#: How each registry type must appear in PostgreSQL (format_type spelling). Written out on
#: purpose rather than imported from storage.schema.SQL_TYPES: it is the independent oracle
#: for that mapping, which the migrations themselves use.
EXPECTED_TYPES = {
    "int": "integer",
    "bigint": "bigint",
    "text": "text",
    "date": "date",
    "float": "double precision",
    "jsonb": "jsonb",
    "bool": "boolean",
}
ALL_VERSIONS = [m.version for m in MIGRATIONS]


@pytest.fixture
def conn(fresh_pg: tuple[str, str]) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(fresh_pg[1]) as connection:
        yield connection


def tables(conn: psycopg.Connection[Any], schema: str = "wechat", kind: str = "BASE TABLE") -> set[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = %s", (schema, kind)
    )
    names = {r[0] for r in rows}
    conn.rollback()
    return names


def live_columns(
    conn: psycopg.Connection[Any], table: str, schema: str = "wechat"
) -> dict[str, tuple[str, bool, str | None]]:
    """column -> (type, not null, comment)."""
    rows = conn.execute(
        """SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, col_description(a.attrelid, a.attnum)
             FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped""",
        (f"{schema}.{table}",),
    ).fetchall()
    conn.rollback()
    return {name: (type_, notnull, comment) for name, type_, notnull, comment in rows}


def change_registry(monkeypatch: pytest.MonkeyPatch, **changes: Any) -> EndpointSpec:
    """Put a variant of getusershare into the registry, as a newer release of the code would."""
    spec = ENDPOINTS["getusershare"]._replace(**changes)
    monkeypatch.setitem(ENDPOINTS, spec.name, spec)
    return spec


def share_columns_with(name: str, **changes: Any) -> tuple[Column, ...]:
    """getusershare's columns with column ``name`` changed."""
    return tuple(c._replace(**changes) if c.name == name else c for c in ENDPOINTS["getusershare"].columns)


def test_migrate_creates_every_table_from_an_empty_database(conn: psycopg.Connection[Any]) -> None:
    assert migrate(conn) == ALL_VERSIONS
    expected = {"schema_migrations", "api_response", "load_log", "quota_block"} | {s.table for s in ENDPOINTS.values()}
    assert tables(conn) == expected
    scene_views = {v.view for s in ENDPOINTS.values() for v in s.scene_lists}
    assert tables(conn, kind="VIEW") == scene_views | {"daily_readers", "daily_followers"}


def test_the_status_columns_accept_every_load_state_and_nothing_else(conn: psycopg.Connection[Any]) -> None:
    """The CHECK constraints are generated from LoadStatus: a new state needs no hand-written SQL list."""
    migrate(conn)
    for status in LoadStatus:
        with conn.transaction():
            conn.execute("INSERT INTO wechat.load_log (account, endpoint, ref_date, status) VALUES ('a', %s, '2025-11-03', %s)",
                         (f"e_{status}", status))
    with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
        conn.execute("INSERT INTO wechat.load_log (account, endpoint, ref_date, status) VALUES ('a', 'e', '2025-11-03', 'done')")
    checks = conn.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname IN ('api_response_status_check', 'load_log_status_check')"
    ).fetchall()
    conn.rollback()
    assert len(checks) == 2
    for (definition,) in checks:
        assert all(f"'{s.value}'" in definition for s in LoadStatus), definition


def test_migrate_again_is_a_no_op(conn: psycopg.Connection[Any]) -> None:
    migrate(conn)
    before = conn.execute("SELECT version, applied_at FROM wechat.schema_migrations ORDER BY 1").fetchall()
    conn.rollback()
    assert migrate(conn) == []
    after = conn.execute("SELECT version, applied_at FROM wechat.schema_migrations ORDER BY 1").fetchall()
    assert after == before


def test_migrate_into_a_custom_schema(conn: psycopg.Connection[Any]) -> None:
    migrate(conn, schema="analytics_wx")
    assert "load_log" in tables(conn, "analytics_wx")
    assert tables(conn, "wechat") == set()


def test_migrate_rejects_a_bad_schema_name_before_touching_the_database(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(ConfigError, match="invalid schema name"):
        migrate(conn, schema="Robert'); DROP TABLE x;--")
    assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'robert%'").fetchone() == (0,)


def test_four_processes_migrating_at_once_all_succeed_with_one_set_of_tables(fresh_pg: tuple[str, str]) -> None:
    applied = sorted(at_once(migrate, fresh_pg[1]), key=len)
    assert applied == [[], [], [], ALL_VERSIONS]
    with psycopg.connect(fresh_pg[1]) as check:
        versions = [r[0] for r in check.execute("SELECT version FROM wechat.schema_migrations ORDER BY 1")]
        assert versions == ALL_VERSIONS
        assert len(tables(check)) == 4 + len(ENDPOINTS)  # schema_migrations, api_response, load_log, quota_block


def test_every_registry_column_exists_with_its_type_nullability_and_comment(conn: psycopg.Connection[Any]) -> None:
    migrate(conn)
    for spec in ENDPOINTS.values():
        live = live_columns(conn, spec.table)
        for column in spec.columns:
            assert column.name in live, f"{spec.table}.{column.name} missing"
            type_, notnull, comment = live[column.name]
            assert type_ == EXPECTED_TYPES[column.type], f"{spec.table}.{column.name}"
            assert notnull == column.required, f"{spec.table}.{column.name}"
            assert comment == column.comment, f"{spec.table}.{column.name}"
        assert live["account"][:2] == ("text", True)
        assert live["extra"][:2] == ("jsonb", True)
        assert live["loaded_at"][:2] == ("timestamp with time zone", True)
        assert live["response_id"][:2] == ("bigint", True)
        assert all(comment for _, _, comment in live.values()), f"{spec.table} has an uncommented column"


def test_every_typed_table_has_the_registry_key_comment_and_foreign_key(conn: psycopg.Connection[Any]) -> None:
    migrate(conn)
    for spec in ENDPOINTS.values():
        pk = live_primary_key(conn.cursor(), "wechat", spec.table)
        assert pk == ("account", *spec.key)
        comment = conn.execute("SELECT obj_description(%s::regclass, 'pg_class')", (f"wechat.{spec.table}",)).fetchone()
        assert comment is not None and spec.description in comment[0]
        fk = conn.execute(
            "SELECT confrelid::regclass::text FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
            (f"wechat.{spec.table}",),
        ).fetchall()
        assert fk == [("wechat.api_response",)]
    conn.rollback()


def test_every_typed_table_has_an_index_led_by_account_and_ref_date(conn: psycopg.Connection[Any]) -> None:
    migrate(conn)
    for spec in ENDPOINTS.values():
        leads = conn.execute(
            """SELECT array_agg(a.attname ORDER BY k.pos)
                 FROM pg_index i
                 JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) ON k.pos <= 2
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                WHERE i.indrelid = %s::regclass GROUP BY i.indexrelid""",
            (f"wechat.{spec.table}",),
        ).fetchall()
        assert ["account", "ref_date"] in [r[0] for r in leads], spec.table
    conn.rollback()


def test_a_column_added_to_the_registry_is_added_by_the_next_migrate(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate(conn)
    spec = change_registry(
        monkeypatch, columns=(*ENDPOINTS["getusershare"].columns, Column("forward_user", "bigint", "Users who forwarded."))
    )
    assert migrate(conn) == []  # no numbered step: the reconcile pass does it
    assert live_columns(conn, spec.table)["forward_user"] == ("bigint", False, "Users who forwarded.")


def test_a_changed_registry_comment_is_applied_by_the_next_migrate(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate(conn)
    spec = change_registry(monkeypatch, columns=share_columns_with("share_user", comment="Sharers (updated)."))
    migrate(conn)
    assert live_columns(conn, spec.table)["share_user"][2] == "Sharers (updated)."


def test_a_new_registry_endpoint_gets_its_table_on_the_next_migrate(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate(conn)
    change_registry(monkeypatch, name="getnewthing", table="new_thing")
    migrate(conn)
    assert "new_thing" in tables(conn)


def test_a_registry_type_change_stops_migrate_with_a_clear_error(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate(conn)
    spec = change_registry(monkeypatch, columns=share_columns_with("share_user", type="float"))
    with pytest.raises(ConfigError, match=r"user_share.share_user is bigint but the registry says double precision"):
        migrate(conn)
    assert live_columns(conn, spec.table)["share_user"][0] == "bigint"


def test_a_registry_key_change_stops_migrate_with_a_clear_error(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate(conn)
    change_registry(monkeypatch, key=("ref_date",))
    with pytest.raises(ConfigError, match="primary key is"):
        migrate(conn)


def test_a_database_migrated_by_a_newer_release_is_refused(conn: psycopg.Connection[Any]) -> None:
    migrate(conn)
    conn.execute("INSERT INTO wechat.schema_migrations (version, name) VALUES (999, 'future')")
    conn.commit()
    with pytest.raises(ConfigError, match=r"migration\(s\) \[999\] this code does not know"):
        migrate(conn)


def test_migrate_refuses_a_connection_inside_a_transaction(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SELECT 1")
    with pytest.raises(ConfigError, match="no open transaction"):
        migrate(conn)


def test_migrate_works_with_the_postgres_hook_connection(fresh_pg: tuple[str, str]) -> None:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook_conn = PostgresHook(postgres_conn_id=fresh_pg[0]).get_conn()
    try:
        assert isinstance(hook_conn, psycopg.Connection)
        assert migrate(hook_conn) == ALL_VERSIONS
        assert hook_conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    finally:
        hook_conn.close()


# --- upgrade of a deployment made by release 3 (replacement endpoints read flat) -------------

#: The four replacement tables as release 3 created them (written out: the oracle of the old layout).
RELEASE_3_TABLES = """
CREATE TABLE wechat.article_read (account text NOT NULL, ref_date date NOT NULL, msgid text NOT NULL, title text,
  read_user bigint, read_user_source jsonb, extra jsonb NOT NULL DEFAULT '{}', loaded_at timestamptz NOT NULL DEFAULT now(),
  response_id bigint NOT NULL REFERENCES wechat.api_response (id), PRIMARY KEY (account, ref_date, msgid));
CREATE TABLE wechat.article_share (account text NOT NULL, ref_date date NOT NULL, msgid text NOT NULL, title text,
  share_user bigint, extra jsonb NOT NULL DEFAULT '{}', loaded_at timestamptz NOT NULL DEFAULT now(),
  response_id bigint NOT NULL REFERENCES wechat.api_response (id), PRIMARY KEY (account, ref_date, msgid));
CREATE TABLE wechat.biz_summary (account text NOT NULL, ref_date date NOT NULL, read_user bigint,
  read_user_source jsonb, share_user bigint, zaikan_user bigint, like_user bigint, comment_count bigint,
  collection_user bigint, extra jsonb NOT NULL DEFAULT '{}', loaded_at timestamptz NOT NULL DEFAULT now(),
  response_id bigint NOT NULL REFERENCES wechat.api_response (id), PRIMARY KEY (account, ref_date));
CREATE TABLE wechat.article_total_detail (account text NOT NULL, ref_date date NOT NULL, msgid text NOT NULL,
  title text, publish_type integer, stat_date date NOT NULL, read_user bigint, share_user bigint,
  read_subscribe_user bigint, read_delivery_rate double precision, read_finish_rate double precision,
  read_avg_activetime double precision, zaikan_user bigint, like_user bigint, comment_count bigint,
  collection_user bigint, extra jsonb NOT NULL DEFAULT '{}', loaded_at timestamptz NOT NULL DEFAULT now(),
  response_id bigint NOT NULL REFERENCES wechat.api_response (id), PRIMARY KEY (account, ref_date, msgid, stat_date));
"""
SCENES = [{"scene_desc": "全部", "user_count": 41}, {"scene_desc": "搜一搜", "user_count": 5}]


def make_release_3_deployment(conn: psycopg.Connection[Any]) -> None:
    """A schema at migration 3 holding what release 3 stored from official-shape answers."""
    migrate(conn)
    with conn.transaction():
        conn.execute("DROP VIEW wechat.daily_readers, wechat.article_read_scene, wechat.biz_summary_scene,"
                     " wechat.article_total_detail_scene")
        conn.execute("DROP TABLE wechat.article_read, wechat.article_share, wechat.biz_summary,"
                     " wechat.article_total_detail")
        conn.execute(RELEASE_3_TABLES)
        for table in ("api_response", "load_log"):
            conn.execute(f"ALTER TABLE wechat.{table} DROP CONSTRAINT {table}_status_check, ADD CONSTRAINT"
                         f" {table}_status_check CHECK (status IN ('loaded', 'empty', 'not_ready', 'failed'))")
        conn.execute("DELETE FROM wechat.schema_migrations WHERE version > 3")
        conn.execute("INSERT INTO wechat.api_response (id, account, endpoint, begin_date, end_date, status)"
                     " VALUES (1, 'acme', 'x', '2025-11-03', '2025-11-03', 'loaded')")
        # The flat reading: keys typed, the whole ``detail`` object in extra, metrics NULL.
        conn.execute("INSERT INTO wechat.article_read (account, ref_date, msgid, title, extra, response_id) VALUES"
                     " ('acme', '2025-11-03', '9_1', 'a title', %s, 1)",
                     (Jsonb({"detail": {"read_user": 41, "read_user_source": SCENES, "forward_user": 2}}),))
        conn.execute("INSERT INTO wechat.article_share (account, ref_date, msgid, extra, response_id) VALUES"
                     " ('acme', '2025-11-03', '9_1', %s, 1)", (Jsonb({"detail": {"share_user": "7"}}),))
        conn.execute("INSERT INTO wechat.biz_summary (account, ref_date, extra, response_id) VALUES"
                     " ('acme', '2025-11-03', %s, 1)",
                     (Jsonb({"detail": {"read_user": 41, "like_user": 3, "send_page_count": 2, "share_user": "n/a"}}),))
        # detail_list was flattened right; its then-unknown fields sat in extra.
        conn.execute("INSERT INTO wechat.article_total_detail (account, ref_date, msgid, stat_date, read_user, extra,"
                     " response_id) VALUES ('acme', '2025-11-03', '9_1', '2025-11-04', 41, %s, 1)",
                     (Jsonb({"praise_money": 300, "read_jump_position": [{"position": 1, "rate": 0.9}]}),))


def test_a_release_3_deployment_upgrades_and_recovers_the_numbers_left_in_extra(conn: psycopg.Connection[Any]) -> None:
    make_release_3_deployment(conn)
    assert migrate(conn) == [4, 5, 6, 7]
    rows = conn.execute("SELECT read_user, read_user_source, extra FROM wechat.article_read").fetchall()
    assert rows == [(41, SCENES, {"forward_user": 2, "title": "a title"})]
    assert conn.execute("SELECT share_user, extra FROM wechat.article_share").fetchall() == [(7, {})]
    # A value that does not fit its column stays in extra rather than failing the upgrade.
    assert conn.execute("SELECT read_user, like_user, send_page_count, share_user, extra FROM wechat.biz_summary"
                        ).fetchall() == [(41, 3, 2, None, {"share_user": "n/a"})]
    assert conn.execute("SELECT praise_money, read_jump_position, extra FROM wechat.article_total_detail"
                        ).fetchall() == [(300, [{"position": 1, "rate": 0.9}], {})]
    assert "title" not in live_columns(conn, "article_read")
    assert conn.execute("SELECT scene_desc, user_count FROM wechat.article_read_scene ORDER BY 2 DESC").fetchall() == [
        ("全部", 41), ("搜一搜", 5)
    ]
    conn.rollback()
    with conn.transaction():  # the new load state is accepted after the upgrade
        conn.execute("INSERT INTO wechat.load_log (account, endpoint, ref_date, status) VALUES ('a', 'e', '2025-11-03', 'kept')")


def test_upgrading_twice_changes_nothing_more(conn: psycopg.Connection[Any]) -> None:
    make_release_3_deployment(conn)
    migrate(conn)
    before = conn.execute("SELECT to_jsonb(t) - 'loaded_at' FROM wechat.biz_summary t").fetchall()
    conn.rollback()
    assert migrate(conn) == []
    assert conn.execute("SELECT to_jsonb(t) - 'loaded_at' FROM wechat.biz_summary t").fetchall() == before


# --- migration 6: indexes for the dashboard's lookups by article -----------------------------

#: The read indexes as PostgreSQL must show them (written out: the oracle of schema.read_indexes).
READ_INDEX_DEFS = {
    "article_summary_account_msgid_idx": "ON {s}.article_summary USING btree (account, msgid, ref_date)",
    "article_total_account_msgid_idx": "ON {s}.article_total USING btree (account, msgid, ref_date)",
    "article_total_detail_account_msgid_idx": "ON {s}.article_total_detail USING btree (account, msgid, ref_date)",
}


def index_definitions(conn: psycopg.Connection[Any], schema: str) -> dict[str, str]:
    """Every index of ``schema`` -> its definition with the schema spelled ``{s}`` (to compare two schemas)."""
    rows = conn.execute(
        "SELECT indexname, replace(indexdef, %s, ' {s}.') FROM pg_indexes WHERE schemaname = %s", (f" {schema}.", schema)
    ).fetchall()
    conn.rollback()
    return dict(rows)


def make_release_5_deployment(conn: psycopg.Connection[Any], schema: str) -> None:
    """A schema as release 5 left it: migrations 1-5 recorded, no read index, release 5's fingerprint."""
    migrate(conn, schema)
    with conn.transaction():
        for name in READ_INDEX_DEFS:
            conn.execute(f"DROP INDEX {schema}.{name}")
        conn.execute(f"DELETE FROM {schema}.schema_migrations WHERE version > 5")
        conn.execute(f"COMMENT ON TABLE {schema}.schema_migrations IS"
                     " 'wechat_datacube data schema: migration 5, definition 0000000000000000'")
        conn.execute(f"INSERT INTO {schema}.api_response (id, account, endpoint, begin_date, end_date, status)"
                     " VALUES (1, 'acme', 'getarticletotal', '2025-03-10', '2025-03-10', 'loaded')")
        conn.execute(f"INSERT INTO {schema}.article_total (account, ref_date, msgid, title, stat_date, response_id)"
                     " VALUES ('acme', '2025-03-10', '9_1', 'a title', '2025-03-11', 1)")


def test_a_fresh_schema_has_the_read_indexes(conn: psycopg.Connection[Any]) -> None:
    migrate(conn)
    found = index_definitions(conn, "wechat")
    for name, definition in READ_INDEX_DEFS.items():
        assert found.get(name) == f"CREATE INDEX {name} {definition}"


def test_a_release_5_deployment_gets_the_read_indexes_and_then_equals_a_fresh_schema(
    conn: psycopg.Connection[Any],
) -> None:
    migrate(conn, "fresh")
    make_release_5_deployment(conn, "old")
    assert not set(READ_INDEX_DEFS) & set(index_definitions(conn, "old"))
    assert ensure_schema(conn, "old") is True  # the one-query check sees release 5's fingerprint
    assert [r[0] for r in conn.execute("SELECT version FROM old.schema_migrations ORDER BY 1")] == ALL_VERSIONS
    conn.rollback()
    assert index_definitions(conn, "old") == index_definitions(conn, "fresh")
    for schema in ("old", "fresh"):
        (comment,) = conn.execute("SELECT obj_description(%s::regclass, 'pg_class')",
                                  (f"{schema}.schema_migrations",)).fetchone()
        conn.rollback()
        assert comment == fingerprint(DATA_TRACK, schema)
        assert ensure_schema(conn, schema) is False
    # The stored row is still there, and found through the new index's columns.
    assert conn.execute("SELECT title FROM old.article_total WHERE account = 'acme' AND msgid = '9_1'").fetchall() == [
        ("a title",)
    ]


def test_a_table_the_registry_gains_later_gets_its_read_index_from_the_reconcile_pass(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate(conn)
    spec = ENDPOINTS["getarticlesummary"]._replace(name="getnewarticles", table="new_articles")
    monkeypatch.setitem(ENDPOINTS, spec.name, spec)
    assert migrate(conn) == []  # no numbered step: the reconcile pass creates table and index
    assert index_definitions(conn, "wechat")["new_articles_account_msgid_idx"] == (
        "CREATE INDEX new_articles_account_msgid_idx ON {s}.new_articles USING btree (account, msgid, ref_date)"
    )
    assert ensure_schema(conn) is False


# --- migration 7: the user, message and interface tables -------------------------------------

#: The tables migration 7 adds (written out: issue #18 names them; the oracle of the step's selection).
STEP_7_TABLES = (
    "user_summary", "user_cumulate", "upstream_msg", "upstream_msg_hour", "upstream_msg_week", "upstream_msg_month",
    "upstream_msg_dist", "upstream_msg_dist_week", "upstream_msg_dist_month", "interface_summary",
    "interface_summary_hour",
)
#: The one of them a release-6 deployment already holds, as a reconcile pass would have made it.
ALREADY_THERE = "user_summary"
STEP_7 = next(m for m in MIGRATIONS if m.version == 7)
STEP_7_SPECS = [s for s in ENDPOINTS.values() if s.table in STEP_7_TABLES]


def make_release_6_deployment(conn: psycopg.Connection[Any], schema: str) -> None:
    """A schema as release 6 left it (migrations 1-6, release 6's fingerprint, none of the new views), holding rows.

    Ten of the eleven tables are absent; ``user_summary`` exists with a row, as a reconcile
    pass would have made it, so the step must leave an existing table and its rows alone.
    """
    migrate(conn, schema)
    with conn.transaction():
        conn.execute(f"DROP VIEW {schema}.daily_followers")
        conn.execute(f"DROP TABLE {', '.join(f'{schema}.{t}' for t in STEP_7_TABLES if t != ALREADY_THERE)}")
        conn.execute(f"DELETE FROM {schema}.schema_migrations WHERE version > 6")
        conn.execute(f"COMMENT ON TABLE {schema}.schema_migrations IS"
                     " 'wechat_datacube data schema: migration 6, definition 0000000000000000'")
        conn.execute(f"INSERT INTO {schema}.api_response (id, account, endpoint, begin_date, end_date, status)"
                     " VALUES (1, 'acme', 'getusershare', '2025-03-10', '2025-03-10', 'loaded')")
        conn.execute(f"INSERT INTO {schema}.user_share (account, ref_date, share_scene, share_user, share_count,"
                     " response_id) VALUES ('acme', '2025-03-10', 1, 4, 9, 1)")
        conn.execute(f"INSERT INTO {schema}.user_summary (account, ref_date, user_source, new_user, cancel_user,"
                     " response_id) VALUES ('acme', '2025-03-10', 0, 12, 3, 1)")


def stored_rows(conn: psycopg.Connection[Any], schema: str) -> dict[str, list[Any]]:
    """Every row of the two tables that hold rows in the release-6 deployment."""
    out = {
        table: conn.execute(f"SELECT to_jsonb(t) FROM {schema}.{table} t ORDER BY 1").fetchall()
        for table in ("user_share", ALREADY_THERE, "api_response")
    }
    conn.rollback()
    return out


def catalog(conn: psycopg.Connection[Any], schema: str) -> dict[str, Any]:
    """The new tables' columns (type, not null, comment), primary keys and comments, and every index of ``schema``."""
    out: dict[str, Any] = {"indexes": index_definitions(conn, schema)}
    for table in STEP_7_TABLES:
        (comment,) = conn.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", (f"{schema}.{table}",)).fetchone()
        key = live_primary_key(conn.cursor(), schema, table)
        conn.rollback()
        out[table] = (live_columns(conn, table, schema), key, comment)
    return out


def test_step_7_selects_exactly_the_tables_of_the_three_families() -> None:
    assert sorted(s.table for s in STEP_7_SPECS) == sorted(STEP_7_TABLES)
    assert {s.family for s in STEP_7_SPECS} == {"user", "message", "interface"}
    assert STEP_7.name == "the user, message and interface tables"


def test_step_7_alone_creates_the_missing_tables_typed_and_keeps_the_existing_one(
    conn: psycopg.Connection[Any],
) -> None:
    """The step itself, not the reconcile pass after it, creates the tables; applied twice, it changes nothing."""
    make_release_6_deployment(conn, "old")
    before = stored_rows(conn, "old")
    with conn.transaction(), conn.cursor() as cur:
        STEP_7.apply(cur, "old")
    assert set(STEP_7_TABLES) <= tables(conn, "old")
    for spec in STEP_7_SPECS:
        live = live_columns(conn, spec.table, "old")
        assert {c.name: (EXPECTED_TYPES[c.type], c.required) for c in spec.columns} == {
            c.name: live[c.name][:2] for c in spec.columns
        }, spec.table
        assert live_primary_key(conn.cursor(), "old", spec.table) == ("account", *spec.key)
        conn.rollback()
    assert stored_rows(conn, "old") == before
    once = catalog(conn, "old")
    with conn.transaction(), conn.cursor() as cur:
        STEP_7.apply(cur, "old")
    assert catalog(conn, "old") == once
    assert stored_rows(conn, "old") == before


def test_a_release_6_deployment_gets_the_new_tables_and_then_equals_a_fresh_schema(
    conn: psycopg.Connection[Any],
) -> None:
    migrate(conn, "fresh")
    make_release_6_deployment(conn, "old")
    before = stored_rows(conn, "old")
    assert set(STEP_7_TABLES) & tables(conn, "old") == {ALREADY_THERE}
    assert migrate(conn, "old") == [7]
    assert set(STEP_7_TABLES) <= tables(conn, "old")
    assert "daily_followers" in tables(conn, "old", kind="VIEW")
    migrated = catalog(conn, "old")
    assert migrated == catalog(conn, "fresh")
    for spec in STEP_7_SPECS:
        columns, key, comment = migrated[spec.table]
        assert key == ("account", *spec.key)
        assert comment is not None and spec.description in comment
        for column in spec.columns:
            assert columns[column.name] == (EXPECTED_TYPES[column.type], column.required, column.comment)
    assert stored_rows(conn, "old") == before  # no stored row is touched, the pre-existing table's included
    ledger = conn.execute("SELECT version, name, applied_at FROM old.schema_migrations ORDER BY 1").fetchall()
    conn.rollback()
    assert [(v, n) for v, n, _ in ledger][-1] == (7, STEP_7.name)
    # Again: nothing to apply, nothing changed; the one-query check is satisfied.
    assert migrate(conn, "old") == []
    assert conn.execute("SELECT version, name, applied_at FROM old.schema_migrations ORDER BY 1").fetchall() == ledger
    conn.rollback()
    assert catalog(conn, "old") == migrated
    assert stored_rows(conn, "old") == before
    assert ensure_schema(conn, "old") is False
