"""The read indexes: derived from the registry, part of the generated DDL and of the schema fingerprint."""

from __future__ import annotations

import pytest

from wechat_datacube.endpoints import ENDPOINTS
from wechat_datacube.storage import migrations, schema
from wechat_datacube.storage.versions import fingerprint


def test_the_article_tables_read_per_article_get_an_index_by_account_and_msgid() -> None:
    """Tables with titles or cumulative curves (stat_date); getarticleread / getarticleshare are not read per article."""
    indexes = {spec.table: schema.read_indexes(spec) for spec in ENDPOINTS.values()}
    with_index = {table: [(i.name, i.columns) for i in found] for table, found in indexes.items() if found}
    assert with_index == {
        "article_summary": [("article_summary_account_msgid_idx", ("account", "msgid", "ref_date"))],
        "article_total": [("article_total_account_msgid_idx", ("account", "msgid", "ref_date"))],
        "article_total_detail": [("article_total_detail_account_msgid_idx", ("account", "msgid", "ref_date"))],
    }
    assert all(len(i.name) <= 63 for found in indexes.values() for i in found)  # PostgreSQL would truncate


def test_the_registry_ddl_creates_them() -> None:
    ddl = [s.as_string() for s in schema.registry_ddl("wechat", list(ENDPOINTS.values()))]
    assert (
        'CREATE INDEX IF NOT EXISTS "article_total_account_msgid_idx" ON "wechat"."article_total"'
        ' ("account", "msgid", "ref_date")'
    ) in ddl


def test_a_changed_read_index_changes_the_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    """So ensure_schema migrates every deployment whose indexes the code no longer matches."""
    before = fingerprint(migrations.DATA_TRACK, "wechat")
    assert before.startswith("wechat_datacube data schema: migration 7, ")
    monkeypatch.setattr(schema, "read_indexes", lambda spec: ())
    assert fingerprint(migrations.DATA_TRACK, "wechat") != before


def test_the_read_indexes_are_relations_the_one_query_check_asks_for() -> None:
    relations = migrations.DATA_TRACK.relations("wechat")
    assert {"article_summary_account_msgid_idx", "article_total_account_msgid_idx",
            "article_total_detail_account_msgid_idx"} <= set(relations)
