"""The wheel as a user gets it: built from its sources, installed into a fresh virtualenv.

Both live outside the repository (pytest's temporary directories), so nothing the tests
find can come from the checkout: not ``plugins/`` on ``sys.path``, not the editable
installs of the dev venv, not the repo's ``include/`` or ``dags/``.

The wheel is built from a copy of exactly the files the Dockerfile copies for the image
(``SOURCES``), never in the working tree: setuptools keeps ``build/lib`` between builds,
so an in-tree build can ship a module that was deleted since (``make wheel`` removes
``build/`` first for the same reason), and the copy keeps other test runs' trees untouched.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: What the distribution is built from (pyproject.toml finds the package under plugins/).
SOURCES = ("pyproject.toml", "README.md", "plugins")
CONSTRAINTS = REPO / "constraints.txt"
#: Environment variables of the test session that must not reach the fresh virtualenv.
_SESSION_ONLY = ("AIRFLOW", "WECHAT_DATACUBE", "PYTHON", "VIRTUAL_ENV")


#: Timings of this session's build and install, printed at the end (see pytest_terminal_summary).
_FIGURES: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The figures for the CI log, shown without -s: how long building and installing took."""
    for line in _FIGURES:
        terminalreporter.write_line(f"packaging: {line}")


def outside_repo(path: Path) -> Path:
    """``path``, resolved; fails when it lies inside the repository."""
    path = path.resolve()
    assert REPO != path and REPO not in path.parents, f"{path} is inside the repository"
    return path


def copy_sources(dest: Path) -> Path:
    """The distribution's sources, without byte code or the editable install's egg-info."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        else:
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build --wheel`` on a copy of the sources: the airflow-wechat-datacube wheel."""
    root = outside_repo(tmp_path_factory.mktemp("wheel"))
    source, out = copy_sources(root / "src"), root / "dist"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(source)],
        cwd=root, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (built,) = out.glob("*.whl")
    _FIGURES.append(f"wheel {built.name} built in {time.monotonic() - started:.1f} s")
    return built


@dataclass(frozen=True)
class FreshVenv:
    """A virtualenv outside the repo holding only the wheel and what it depends on."""

    root: Path
    venv: Path
    env: dict[str, str]

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def run(self, *args: str | Path, extra_env: Mapping[str, str] | None = None, timeout: float = 300) -> str:
        """Run a command of the venv (``python``, ``airflow``) in its clean environment; its stdout."""
        program, *rest = args
        result = subprocess.run(
            [str(self.venv / "bin" / program), *map(str, rest)],
            env={**self.env, **(extra_env or {})}, cwd=self.root, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout

    def fails(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``python`` with ``args`` expecting it to fail; the finished process."""
        result = subprocess.run(
            [str(self.python), *args], env=self.env, cwd=self.root, capture_output=True, text=True, timeout=120
        )
        assert result.returncode != 0, result.stdout
        return result


def _clean_env(venv: Path, home: Path) -> dict[str, str]:
    """The machine's environment (PATH, pip's registries) without the test session's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SESSION_ONLY)}
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )
    return env


def _install(venv: Path, wheel: Path, env: dict[str, str]) -> None:
    """pip of the dev venv installs into the fresh one (``--python``), from the configured registries.

    Airflow at the dev venv's version, everything else pinned by constraints.txt; pip's cache
    is used where it has the files, the registries otherwise (a new CI machine).
    """
    airflow = f"apache-airflow=={importlib.metadata.version('apache-airflow')}"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--no-input", "--retries", "10", str(wheel), airflow, "-c", str(CONSTRAINTS)],
        env=env, cwd=venv.parent, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.fixture(scope="session")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreshVenv]:
    """A new virtualenv and AIRFLOW_HOME in a temporary directory, the wheel installed into it.

    Removed afterwards: it weighs about 300 MB, and pytest keeps its last three temporary trees.
    """
    root = outside_repo(tmp_path_factory.mktemp("fresh-venv"))
    venv, home = root / "venv", root / "airflow-home"
    home.mkdir()
    # --without-pip: no ensurepip needed; the dev venv's pip installs into it.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    env = _clean_env(venv, home)
    started = time.monotonic()
    _install(venv, wheel, env)
    _FIGURES.append(
        f"fresh virtualenv installed (wheel, Airflow, constraints.txt) in {time.monotonic() - started:.1f} s"
    )
    yield FreshVenv(root=root, venv=venv, env=env)
    shutil.rmtree(root, ignore_errors=True)
