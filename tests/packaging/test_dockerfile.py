"""The production image gets the provider only: the wheel's sources, nothing of devtools/.

The Dockerfile lets pip build the distribution from the files it copies to
``/opt/wechat-datacube``; they must be exactly what the wheel is built from (``SOURCES``,
the files tests/packaging/test_wheel.py checks), and no ``COPY`` may bring in the
development package.
"""

from __future__ import annotations

import shlex

import pytest

from tests.packaging.conftest import REPO, SOURCES

pytestmark = pytest.mark.packaging

#: Where the Dockerfile puts what pip installs the distribution from.
INSTALL_DIR = "/opt/wechat-datacube/"
#: Copied there too, for the dependencies (installed before the package, for layer caching).
REQUIREMENTS = "requirements.txt"


def copies(dockerfile: str) -> list[tuple[list[str], str]]:
    """Each ``COPY`` instruction as (sources, destination), options left out."""
    found = []
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            *sources, destination = [w for w in shlex.split(line, comments=True)[1:] if not w.startswith("--")]
            found.append(([s.rstrip("/") for s in sources], destination))
    return found


def image_problems(dockerfile: str) -> list[str]:
    """Why the image would not hold exactly the provider distribution."""
    all_copies = copies(dockerfile)
    problems = [
        f"copies the development package: {source}"
        for sources, _ in all_copies
        for source in sources
        if source.split("/")[0] == "devtools"
    ]
    installed = {s for sources, dest in all_copies if dest.startswith(INSTALL_DIR) for s in sources} - {REQUIREMENTS}
    if installed != set(SOURCES):
        problems.append(f"builds the distribution from {sorted(installed)}, not {sorted(SOURCES)}")
    return problems


def test_the_image_builds_the_provider_from_the_wheel_sources_and_nothing_of_devtools() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert image_problems(dockerfile) == []
    assert f"pip install --no-cache-dir --no-deps {INSTALL_DIR.rstrip('/')}" in dockerfile


def test_image_problems_names_a_devtools_copy_and_a_missing_source() -> None:
    dockerfile = f"""FROM apache/airflow:3.3.2
COPY --chown=airflow:root pyproject.toml README.md {INSTALL_DIR}
COPY --chown=airflow:root devtools/ {INSTALL_DIR}devtools/  # the whole dev package
"""
    assert image_problems(dockerfile) == [
        "copies the development package: devtools",
        "builds the distribution from ['README.md', 'devtools', 'pyproject.toml'], not "
        "['README.md', 'plugins', 'pyproject.toml']",
    ]
