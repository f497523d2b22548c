"""The launcher runs on the repository checkout it is installed from, and says so when there is none."""

from __future__ import annotations

from pathlib import Path

import pytest
from wechat_datacube_dev.localrun import CHECKOUT_MARKERS, CheckoutNotFoundError, repo_root

REPO = Path(__file__).resolve().parents[3]


def test_the_checkout_is_the_repository_these_tests_run_in() -> None:
    assert repo_root() == REPO
    assert all((REPO / name).exists() for name in CHECKOUT_MARKERS)


def test_installed_outside_a_checkout_it_says_what_is_missing_and_how_to_install(tmp_path: Path) -> None:
    package_dir = tmp_path / "site-packages" / "wechat_datacube_dev"
    package_dir.mkdir(parents=True)
    with pytest.raises(CheckoutNotFoundError, match=r"has no dags, plugins, README.md: .*make install"):
        repo_root(package_dir)


def test_a_checkout_missing_only_its_dags_names_just_that(tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "README.md").write_text("")
    package_dir = tmp_path / "devtools" / "wechat_datacube_dev"
    package_dir.mkdir(parents=True)
    with pytest.raises(CheckoutNotFoundError, match=r"has no dags:"):
        repo_root(package_dir)
    (tmp_path / "dags").mkdir()
    assert repo_root(package_dir) == tmp_path
