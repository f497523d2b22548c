"""The airflow-wechat-datacube wheel: the provider package only, and it works outside the repo.

Issue 15, "Installable like any provider": the wheel holds ``wechat_datacube`` (every file
of ``plugins/wechat_datacube/``, computed from the tree) and no development package, tests
or DAG files; installed into a fresh virtualenv with Airflow and constraints.txt
(conftest.py), Airflow lists the provider, the UI's connection form for ``wechat`` has its
fields and labels, and a copy of ``dags/`` with an accounts file parses with no import error.
"""

from __future__ import annotations

import configparser
import json
import shutil
import zipfile
from collections.abc import Iterable
from email.parser import Parser
from pathlib import Path

import pytest
import yaml

from tests.packaging.conftest import REPO, FreshVenv, outside_repo
from wechat_datacube.provider import CONN_FIELDS, DISTRIBUTION, get_provider_info

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(1800)]

PACKAGE = "wechat_datacube"
DEV_PACKAGE = "wechat_datacube_dev"
ENTRY_POINT = "wechat_datacube.provider:get_provider_info"
DAILY_PREFIX, BACKFILL_DAG = "wechat_datacube_daily__", "wechat_datacube_backfill"


def package_files(root: Path = REPO / "plugins" / PACKAGE) -> set[str]:
    """Every file of the package in the tree (modules and package data), as its path in a wheel."""
    return {
        f"{PACKAGE}/{path.relative_to(root).as_posix()}"
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def wheel_problems(names: Iterable[str], expected: set[str]) -> list[str]:
    """What is wrong with a wheel's file list, given the package files it must hold exactly."""
    names = set(names)
    tops = {name.split("/")[0] for name in names}
    problems = [
        f"not the provider package: {top}" for top in sorted(tops) if top != PACKAGE and not top.endswith(".dist-info")
    ]
    problems += [f"missing from the wheel: {name}" for name in sorted(expected - names)]
    stray = {name for name in names if name.startswith(f"{PACKAGE}/")} - expected
    problems += [f"not in the tree (a stale build?): {name}" for name in sorted(stray)]
    return problems


def _dist_info(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (path,) = [n for n in archive.namelist() if n.split("/")[0].endswith(".dist-info") and n.endswith(f"/{name}")]
        return archive.read(path).decode()


def _result(stdout: str) -> dict:
    """The JSON a script run in the fresh venv printed after ``RESULT`` (Airflow may log on stdout too)."""
    return json.loads(next(line for line in stdout.splitlines() if line.startswith("RESULT "))[len("RESULT ") :])


def _cli_json(stdout: str) -> list[dict]:
    return json.loads(stdout[stdout.index("[") :])


# -- the wheel's contents --------------------------------------------------------------


def test_the_wheel_holds_every_file_of_the_provider_package_and_nothing_else(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert wheel_problems(names, package_files()) == []


def test_the_wheel_declares_the_airflow_provider_entry_point(wheel: Path) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read_string(_dist_info(wheel, "entry_points.txt"))
    assert entry_points.get("apache_airflow_provider", "provider_info") == ENTRY_POINT
    metadata = Parser().parsestr(_dist_info(wheel, "METADATA"))
    assert metadata["Name"] == DISTRIBUTION
    assert any(req.startswith("apache-airflow") for req in metadata.get_all("Requires-Dist"))


def test_wheel_problems_names_other_packages_missing_files_and_stale_modules() -> None:
    expected = {"wechat_datacube/__init__.py", "wechat_datacube/dashboard/page.html"}
    names = [
        "wechat_datacube/__init__.py",
        "wechat_datacube/storage.py",  # deleted from the tree, left in build/lib
        "wechat_datacube_dev/__init__.py",
        "tests/test_hook.py",
        "airflow_wechat_datacube-0.1.0.dist-info/METADATA",
    ]
    assert wheel_problems(names, expected) == [
        "not the provider package: tests",
        "not the provider package: wechat_datacube_dev",
        "missing from the wheel: wechat_datacube/dashboard/page.html",
        "not in the tree (a stale build?): wechat_datacube/storage.py",
    ]


def test_package_files_are_read_from_the_tree_with_data_files_and_without_byte_code(tmp_path: Path) -> None:
    for name in (
        "__init__.py",
        "dashboard/__init__.py",
        "dashboard/static/chart.css",
        "__pycache__/hook.cpython-311.pyc",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert package_files(tmp_path) == {
        "wechat_datacube/__init__.py",
        "wechat_datacube/dashboard/__init__.py",
        "wechat_datacube/dashboard/static/chart.css",
    }


def test_the_build_directories_must_lie_outside_the_repository(tmp_path_factory: pytest.TempPathFactory) -> None:
    with pytest.raises(AssertionError, match="inside the repository"):
        outside_repo(REPO / "build")
    assert outside_repo(tmp_path_factory.getbasetemp()) == tmp_path_factory.getbasetemp().resolve()


# -- installed into a fresh virtualenv, outside the repo -----------------------------------

IMPORT_EVERY_MODULE = """
import importlib, json, pkgutil, wechat_datacube
names = [m.name for m in pkgutil.walk_packages(wechat_datacube.__path__, "wechat_datacube.")]
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = repr(exc)
print("RESULT", json.dumps({"file": wechat_datacube.__file__, "modules": names, "failed": failed}))
"""

# What the UI's connection form is built from (the api-server's /ui/connections/hook_meta).
CONNECTION_FORM = """
from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
(meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "wechat"]
print("RESULT", meta.model_dump_json())
"""

PARSE_DAGS = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print("RESULT", json.dumps({
    "dags": {dag_id: sorted(dag.tags) for dag_id, dag in bag.dags.items()},
    "import_errors": {path: str(error) for path, error in bag.import_errors.items()},
}))
"""


def test_every_module_of_the_package_imports_from_site_packages(fresh_venv: FreshVenv) -> None:
    found = _result(fresh_venv.run("python", "-c", IMPORT_EVERY_MODULE))
    assert found["failed"] == {}
    assert Path(found["file"]).is_relative_to(fresh_venv.venv)
    in_tree = {
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for name in package_files()
        if name.endswith(".py")
    }
    assert set(found["modules"]) == in_tree - {PACKAGE}


def test_the_development_package_is_not_installed(fresh_venv: FreshVenv) -> None:
    assert f"No module named '{DEV_PACKAGE}'" in fresh_venv.fails("-c", f"import {DEV_PACKAGE}").stderr


def test_airflow_lists_the_provider_and_its_hook(fresh_venv: FreshVenv) -> None:
    providers = _cli_json(fresh_venv.run("airflow", "providers", "list", "-o", "json"))
    assert DISTRIBUTION in {p["package_name"] for p in providers}
    hooks = _cli_json(fresh_venv.run("airflow", "providers", "hooks", "-o", "json"))
    conn_type = next(c for c in get_provider_info()["connection-types"] if c["connection-type"] == "wechat")
    assert {
        "connection_type": "wechat",
        "class": conn_type["hook-class-name"],
        "package_name": DISTRIBUTION,
    }.items() <= next(h for h in hooks if h["connection_type"] == "wechat").items()


def test_the_connection_form_has_the_wechat_fields_and_labels(fresh_venv: FreshVenv) -> None:
    form = _result(fresh_venv.run("python", "-c", CONNECTION_FORM))
    conn_type = next(c for c in get_provider_info()["connection-types"] if c["connection-type"] == "wechat")
    behaviour = conn_type["ui-field-behaviour"]
    standard = form["standard_fields"]
    assert {field: standard[field]["title"] for field in behaviour["relabeling"]} == behaviour["relabeling"]
    assert all(standard[{"schema": "url_schema"}.get(f, f)]["hidden"] for f in behaviour["hidden-fields"])
    assert {name: field["schema"]["title"] for name, field in form["extra_fields"].items()} == {
        name: field["label"] for name, field in CONN_FIELDS.items()
    }


def test_a_copy_of_dags_with_an_accounts_file_parses_with_no_import_error(fresh_venv: FreshVenv) -> None:
    work = fresh_venv.root / "project"
    shutil.copytree(REPO / "dags", work / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    accounts = str(shutil.copy2(REPO / "include" / "accounts.yaml", work / "accounts.yaml"))
    names = [entry["name"] for entry in yaml.safe_load(Path(accounts).read_text())["accounts"]]
    parsed = _result(
        fresh_venv.run("python", "-c", PARSE_DAGS, work / "dags", extra_env={"WECHAT_DATACUBE_ACCOUNTS": accounts})
    )
    assert parsed["import_errors"] == {}
    assert set(parsed["dags"]) == {BACKFILL_DAG, *(f"{DAILY_PREFIX}{name}" for name in names)}
    assert not [dag_id for dag_id, tags in parsed["dags"].items() if "config-error" in tags]
