"""docker-compose.yaml, resolved and validated without a Docker engine.

No Docker engine runs here, so the stack cannot be started. Two resolvers parse the file,
interpolate ``.env.example`` and give the resolved services: our own
(tests/fixtures/compose/resolve.py, which validates against the Compose specification's JSON
schema kept in the repo, so ``make test`` needs no system tool) and, when installed,
``docker-compose config`` (Debian's package) as an extra. Every check runs on each, against
what the README promises: the official Airflow 3.3.2 Celery layout built from
this repository, a separate database for the WeChat data, the simulator under the
``demo`` profile, connections and pool at init, and secrets only from the env file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.compose.resolve import ComposeError, resolve

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
AIRFLOW_SERVICES = {
    "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker", "airflow-triggerer",
    "airflow-init",
}  # fmt: skip


def docker_compose(*args: str, env_file: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is not installed: apt-get install docker-compose (.ci/run does it)"
    # A bare environment: every value must come from the env file, not from this shell.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run(
        [binary, "--env-file", str(env_file), "-f", str(COMPOSE), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


RESOLVERS = ["schema"] + (["docker-compose"] if shutil.which("docker-compose") else [])


def resolve_with(resolver: str, env_file: Path) -> dict[str, Any]:
    """The resolved configuration; ComposeError (or a failed assert) when it does not resolve."""
    if resolver == "schema":
        return resolve(COMPOSE, env_file)
    result = docker_compose("config", env_file=env_file)
    if result.returncode != 0:
        raise ComposeError(result.stderr)
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module", params=RESOLVERS)
def resolver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def resolved(resolver: str) -> dict[str, Any]:
    return resolve_with(resolver, ENV_EXAMPLE)


def command_text(service: dict[str, Any]) -> str:
    """The service's command as one shell text (compose may print a list or a string, keeps ``$$``
    escaped and the script's backslash line continuations)."""
    command = service["command"]
    text = " ".join(command) if isinstance(command, list) else command
    return re.sub(r"\\\n\s*", "", text.replace("$$", "$"))


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if re.match(r"^[A-Z_]+=", line))
    return dict(pairs)


def test_config_resolves_the_official_celery_layout_built_from_this_repo(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert AIRFLOW_SERVICES | {"postgres", "redis", "wechat-postgres", "wechat-simulator"} <= set(services)
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["build"]["context"] == str(REPO), name
        assert service["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert service["environment"]["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
            "http://airflow-apiserver:8080/execution/"
        )
    assert command_text(services["airflow-worker"]) == "celery worker"
    assert services["airflow-apiserver"]["ports"][0]["published"] == 8080
    images = {services[name]["image"] for name in AIRFLOW_SERVICES | {"wechat-simulator"}}
    assert len(images) == 1  # one image, built once


def test_dockerfile_extends_the_airflow_version_the_project_pins() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements.txt").read_text(), re.MULTILINE)
    assert pinned, "requirements.txt pins apache-airflow"
    assert re.search(rf"^FROM apache/airflow:{re.escape(pinned[1])}$", dockerfile, re.MULTILINE)
    assert "requirements.txt" in dockerfile and "pip install --no-cache-dir --no-deps /opt/wechat-datacube" in dockerfile


def test_package_code_comes_from_the_image_not_from_a_shadowed_mount(resolved: dict[str, Any]) -> None:
    # Airflow appends the plugins folder to sys.path, so a mounted ./plugins copy of the
    # package would lose to the installed one: only dags/ and include/ are mounted, and the
    # image carries the dashboard plugin file, not a second copy of the package.
    for name in AIRFLOW_SERVICES:
        targets = {v.split(":")[1] for v in resolved["services"][name].get("volumes", [])}
        assert "/opt/airflow/plugins" not in targets, name
        assert {"/opt/airflow/dags", "/opt/airflow/include"} <= targets, name
    dockerfile = (REPO / "Dockerfile").read_text()
    plugin_copies = re.findall(r"^COPY .*plugins/\S* (/opt/airflow/plugins/\S*)$", dockerfile, re.MULTILINE)
    assert plugin_copies == ["/opt/airflow/plugins/"]
    assert "COPY --chown=airflow:root plugins/wechat_datacube_dashboard.py /opt/airflow/plugins/" in dockerfile


def test_every_component_reads_naive_dates_as_beijing_time(resolved: dict[str, Any]) -> None:
    """``[core] default_timezone``: what a naive ``--from-date 2025-01-01`` or REST date means."""
    for name in AIRFLOW_SERVICES | {"airflow-cli"}:
        env = resolved["services"][name]["environment"]
        assert env["AIRFLOW__CORE__DEFAULT_TIMEZONE"] == "Asia/Shanghai", name
        assert not any("DEFAULT_UI_TIMEZONE" in key for key in env), name  # removed in Airflow 3


def test_components_share_one_set_of_secrets_from_the_env_file(resolved: dict[str, Any]) -> None:
    example = env_example()
    for name in AIRFLOW_SERVICES:
        env = resolved["services"][name]["environment"]
        assert env["AIRFLOW__CORE__FERNET_KEY"] == example["AIRFLOW_FERNET_KEY"], name
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == example["AIRFLOW_JWT_SECRET"], name
        assert env["AIRFLOW__API__SECRET_KEY"] == example["AIRFLOW_API_SECRET_KEY"], name
    # No secret is written into the compose file itself.
    text = COMPOSE.read_text()
    for key in ("AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_DB_PASSWORD", "WECHAT_DB_PASSWORD",
                "WECHAT_APPSECRET"):
        assert example[key] not in text, key


def test_without_an_env_file_config_refuses_to_resolve(tmp_path: Path, resolver: str) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    with pytest.raises(ComposeError, match="in .env"):  # the ${VAR:?set VAR in .env} message
        resolve_with(resolver, empty)


def test_a_file_that_breaks_the_compose_specification_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("    restart: always", "    restart: [always]", 1))
    assert broken.read_text() != COMPOSE.read_text()
    with pytest.raises(ComposeError, match="restart"):
        resolve(broken, ENV_EXAMPLE)


def test_wechat_data_has_its_own_database(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    meta, data = services["postgres"], services["wechat-postgres"]
    assert data["environment"]["POSTGRES_DB"] == "wechat"
    assert {v.split(":")[0] for v in meta["volumes"]}.isdisjoint({v.split(":")[0] for v in data["volumes"]})
    for name in ("airflow-scheduler", "airflow-worker"):
        assert services[name]["depends_on"]["wechat-postgres"]["condition"] == "service_healthy"


def test_init_creates_connections_and_the_pool(resolved: dict[str, Any]) -> None:
    init = resolved["services"]["airflow-init"]
    script = command_text(init)
    assert "airflow connections add wechat_pg --conn-type postgres --conn-host wechat-postgres" in script
    assert 'airflow connections add "${WECHAT_CONN_ID}" --conn-type wechat' in script
    assert 'airflow pools set wechat_api "${WECHAT_API_POOL_SLOTS}"' in script
    assert init["environment"]["WECHAT_CONN_ID"] == "wechat_demo"  # the account in include/accounts.yaml
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"


def test_simulator_only_runs_under_the_demo_profile(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    simulator = services["wechat-simulator"]
    assert simulator["profiles"] == ["demo"]
    assert simulator["entrypoint"] == ["python", "-m", "wechat_datacube_dev.simulator"]
    assert "--port 8765" in command_text(simulator)
    assert env_example()["WECHAT_API_BASE_URL"] == "http://wechat-simulator:8765"
    assert all("profiles" not in services[name] for name in AIRFLOW_SERVICES)
