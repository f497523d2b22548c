"""The generated documentation is current: docs/tables.md and the README's generated sections."""

from __future__ import annotations

import pytest
from wechat_datacube_dev.docgen import render_readme, stale_files, tables_doc
from wechat_datacube_dev.localrun import repo_root

from wechat_datacube.endpoints import ENDPOINTS
from wechat_datacube.errors import ERRCODES


def test_committed_docs_match_the_registry_and_the_errcode_table() -> None:
    stale = [str(p.relative_to(repo_root())) for p in stale_files()]
    assert stale == [], f"run `make docs` and commit: {stale}"


def test_readme_lists_every_table_and_every_errcode() -> None:
    readme = (repo_root() / "README.md").read_text(encoding="utf-8")
    for spec in ENDPOINTS.values():
        assert f"| `{spec.table}` | `{spec.name}` |" in readme
    for code in ERRCODES:
        assert f"\n| {code} | " in readme


def test_table_reference_documents_every_column() -> None:
    doc = tables_doc()
    for spec in ENDPOINTS.values():
        section = doc.split(f"\n## {spec.table}\n", 1)[1].split("\n## ", 1)[0]
        for column in spec.columns:
            assert f"| `{column.name}` |" in section, (spec.table, column.name)


def test_a_readme_without_the_markers_is_an_error() -> None:
    with pytest.raises(ValueError, match="generated:tables"):
        render_readme("# no markers here\n")
