"""docker-compose.yaml, resolved and validated without a Docker engine.

No Docker engine runs here, so the stack cannot be started. Two resolvers parse the file,
interpolate ``.env.example`` and give the resolved services: our own
(tests/fixtures/compose/resolve.py, which validates against the Compose specification's JSON
schema kept in the repo, so ``make test`` needs no system tool) and, when installed,
``docker-compose config`` (Debian's package) as an extra. Every check runs on each, against
what the README promises: the official Airflow 3.3.2 Celery layout built from
this repository, a separate database for the WeChat data, the simulator under the
``demo`` profile, connections and pool at init, and secrets only from the env file.

The compose file's executor, broker and result backend are also held to what the Celery
test (tests/dags/test_celery.py) and ``make run EXECUTOR=celery`` run with: the same
settings, with the values ``celery_settings`` derives from compose's own broker and
metadata database (:func:`celery_differences`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from wechat_datacube_dev.localrun.airflow_cluster import CELERY_EXECUTOR, celery_settings
from wechat_datacube_dev.localrun.redis_broker import LOCAL_REDIS_URL

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


BROKER_URL = "AIRFLOW__CELERY__BROKER_URL"
RESULT_BACKEND = "AIRFLOW__CELERY__RESULT_BACKEND"
SQL_ALCHEMY_CONN = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"


def celery_differences(env: Mapping[str, str]) -> list[str]:
    """Where a service's Celery settings differ from the Celery test's (names only, no values: they hold passwords).

    Expected: every setting ``celery_settings`` spells, with the value it gives for the
    service's own broker and metadata database — CeleryExecutor, that broker, the metadata
    DB as ``db+postgresql://`` result backend — and a ``redis://`` broker on the Redis
    database the local clusters use. Empty when they agree.
    """
    try:
        expected = celery_settings(env.get(BROKER_URL, ""), env.get(SQL_ALCHEMY_CONN, ""))
    except ValueError as exc:  # no (PostgreSQL) metadata DB to derive the result backend from
        return [f"{SQL_ALCHEMY_CONN}: {exc}"]
    differences = [f"{key} differs" if key in env else f"{key} missing" for key, value in expected.items()
                   if env.get(key) != value]  # fmt: skip
    broker, local = urlsplit(env.get(BROKER_URL, "")), urlsplit(LOCAL_REDIS_URL)
    if (broker.scheme, broker.path) != (local.scheme, local.path):
        differences.append(f"{BROKER_URL}: not {local.scheme}:// on Redis database {local.path}")
    return differences


def test_celery_settings_are_those_the_celery_test_runs_with(resolved: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES | {"airflow-cli"}:
        env = resolved["services"][name]["environment"]
        assert celery_differences(env) == [], name
        assert env["AIRFLOW__CORE__EXECUTOR"] == CELERY_EXECUTOR, name
        assert env[RESULT_BACKEND] == "db+postgresql://airflow:REPLACE-airflow-db-password@postgres/airflow", name


def test_the_result_backend_follows_the_metadata_database_password(resolver: str, tmp_path: Path) -> None:
    """One variable, AIRFLOW_DB_PASSWORD, for the metadata DB and the result backend on it."""
    env_file = tmp_path / "other.env"
    env_file.write_text(ENV_EXAMPLE.read_text().replace("REPLACE-airflow-db-password", "another-pw-7f3a"))
    env = resolve_with(resolver, env_file)["services"]["airflow-worker"]["environment"]
    assert "another-pw-7f3a" in env[RESULT_BACKEND] and celery_differences(env) == []


@pytest.mark.parametrize(
    ("key", "value", "difference"),
    [
        ("AIRFLOW__CORE__EXECUTOR", "LocalExecutor", "AIRFLOW__CORE__EXECUTOR differs"),
        (BROKER_URL, "redis://:@redis:6379/1", f"{BROKER_URL}: not redis://"),
        (BROKER_URL, "amqp://guest:guest@rabbitmq:5672//", f"{BROKER_URL}: not redis://"),
        (RESULT_BACKEND, "db+postgresql://airflow:REPLACE-airflow-db-password@postgres/other", f"{RESULT_BACKEND} differs"),
        (RESULT_BACKEND, "db+postgresql+psycopg2://airflow:REPLACE-airflow-db-password@postgres/airflow",
         f"{RESULT_BACKEND} differs"),
        (RESULT_BACKEND, None, f"{RESULT_BACKEND} missing"),
        (SQL_ALCHEMY_CONN, "sqlite:////tmp/airflow.db", f"{SQL_ALCHEMY_CONN}: the Celery result backend needs"),
    ],
)  # fmt: skip
def test_a_compose_file_that_drifts_from_the_celery_test_is_caught(
    resolved: dict[str, Any], key: str, value: str | None, difference: str
) -> None:
    env = dict(resolved["services"]["airflow-worker"]["environment"])
    assert celery_differences(env) == []
    if value is None:
        del env[key]
    else:
        env[key] = value
    differences = celery_differences(env)
    assert any(d.startswith(difference) for d in differences), differences
    assert not any("REPLACE-airflow-db-password" in d for d in differences)  # no password in a failure message
