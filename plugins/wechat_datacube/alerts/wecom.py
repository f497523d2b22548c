"""WeComRobotHook: the one place that calls a WeCom (企业微信) group robot.

A robot is a webhook: ``POST <url>?key=<robot key>`` with ``{"msgtype": "markdown",
"markdown": {"content": ...}}``, answered ``{"errcode": 0, "errmsg": "ok"}``. Like
Airflow's HTTP hook, the hook owns the session, the credentials and the retries of one
call and knows nothing of events, DAGs or the rate window (:mod:`.delivery` does).

What an answer means (:meth:`WeComRobotHook.send_markdown`):

* errcode 0 — delivered;
* connection error, timeout, HTTP 5xx, errcode -1 (system busy), a body that is not
  JSON — transient: retried a bounded number of times, then :class:`RobotUnavailable`;
* errcode 45009 (more than about 20 messages in a minute) — :class:`RobotRateLimited`
  at once: retrying inside the minute only makes it worse;
* any other errcode (93000 invalid key, 40008, 40058 ...) or HTTP 4xx —
  :class:`RobotRejected`, never retried.

The key is the credential: it is in the URL's query, and ``requests`` puts URLs into its
exception texts, so every text this module produces passes :func:`scrub_key`, and
exceptions are raised ``from None`` so no chained ``requests`` error carries it out.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

from airflow.sdk.bases.hook import BaseHook

from wechat_datacube.errors import ConfigError, redact_secrets
from wechat_datacube.provider import DEFAULT_WECOM_WEBHOOK_URL as DEFAULT_WEBHOOK_URL

log = logging.getLogger(__name__)

_DEFAULT_PATH = urlsplit(DEFAULT_WEBHOOK_URL).path
#: (connect, read) seconds; the connection's extra ``timeout`` overrides them.
DEFAULT_TIMEOUT = (3.0, 5.0)
#: WeCom's limit for ``markdown.content``, in UTF-8 bytes.
MAX_CONTENT_BYTES = 4096
RATE_LIMITED_ERRCODE = 45009
BUSY_ERRCODE = -1

def scrub_key(text: str, key: str | None = None) -> str:
    """``text`` without the robot key: the literal key (plain and URL-encoded) wherever it stands, then
    every credential :func:`wechat_datacube.errors.redact_secrets` knows (``key=...`` in a URL included)."""
    if key:
        for form in {key, quote(key, safe="")}:
            text = text.replace(form, "***")
    return redact_secrets(text)


class RobotError(Exception):
    """A message the robot did not take. The text never holds the key (see :func:`scrub_key`)."""

    def __init__(self, message: str, *, errcode: int | None = None, status: int | None = None) -> None:
        self.errcode = errcode
        self.status = status
        super().__init__(message)


class RobotRateLimited(RobotError):
    """errcode 45009: the robot's per-minute limit is used up. Send later; do not retry now."""


class RobotRejected(RobotError):
    """The robot refused this message for good (bad key, bad message, HTTP 4xx): retrying cannot help."""


class RobotUnavailable(RobotError):
    """Transient failures (network, timeout, 5xx, busy) still there after the bounded retries."""


@dataclass(frozen=True)
class RobotSettings:
    """What a ``wecom_robot`` connection says. ``repr`` leaves the key out."""

    url: str
    key: str = field(repr=False)
    timeout: tuple[float, float] = DEFAULT_TIMEOUT


def _timeout(value: Any, conn_id: str) -> tuple[float, float]:
    """The extra ``timeout``: one number (connect and read) or ``[connect, read]``."""
    if value is None or value == "":
        return DEFAULT_TIMEOUT
    parts = value if isinstance(value, list | tuple) else [value, value]
    try:
        connect, read = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise ConfigError(
            f"connection {conn_id!r}: extra 'timeout' must be seconds or [connect, read], got {value!r}"
        ) from None
    if connect <= 0 or read <= 0:
        raise ConfigError(f"connection {conn_id!r}: extra 'timeout' must be positive, got {value!r}")
    return connect, read


def robot_settings(conn_id: str, host: str | None, password: str | None, extra: dict[str, Any]) -> RobotSettings:
    """Read a ``wecom_robot`` connection: host = webhook URL (default WeCom's), password = robot key.

    A host without a scheme gets ``https://``, a host without a path gets WeCom's path. A
    key pasted into the host (``...send?key=...``) is refused rather than used: the host
    is shown in the UI and in logs, the password is masked.
    """
    url = (host or "").strip() or DEFAULT_WEBHOOK_URL
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    key_in_host = "key" in parse_qs(parts.query)
    url = urlunsplit((parts.scheme, parts.netloc, parts.path if parts.path not in ("", "/") else _DEFAULT_PATH, "", ""))
    key = (password or "").strip()
    if not key:
        where = "it is in the host field: move it" if key_in_host else "put the webhook URL's key=... value"
        raise ConfigError(
            f"connection {conn_id!r} (WeCom group robot) has no robot key: {where} into the password field"
        )
    return RobotSettings(url=url, key=key, timeout=_timeout(extra.get("timeout"), conn_id))


class WeComRobotHook(BaseHook):
    """Send markdown to a WeCom group robot.

    :param wecom_conn_id: connection of type ``wecom_robot`` (host = webhook URL, default
        :data:`DEFAULT_WEBHOOK_URL`; password = robot key; extra ``timeout``: seconds or
        ``[connect, read]``, default 3 s / 5 s).
    :param max_attempts: requests per message before a transient failure is given up.
    :param backoff_base: wait before the second attempt; doubled before each later one.
    :param sleep: how to wait between attempts (injectable for tests).
    """

    conn_name_attr = "wecom_conn_id"
    default_conn_name = "wecom_robot_default"
    conn_type = "wecom_robot"
    hook_name = "WeCom group robot"

    def __init__(
        self,
        wecom_conn_id: str = default_conn_name,
        *,
        max_attempts: int = 3,
        backoff_base: float = 0.5,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__()
        if max_attempts < 1:
            raise ConfigError("max_attempts must be >= 1")
        self.wecom_conn_id = wecom_conn_id
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self._sleep = sleep or time.sleep

    def __repr__(self) -> str:
        return f"<WeComRobotHook conn_id={self.wecom_conn_id!r}>"

    @cached_property
    def settings(self) -> RobotSettings:
        conn = self.get_connection(self.wecom_conn_id)
        if conn.password:
            from wechat_datacube.tokens import mask_value  # Airflow's masker: task logs never show the key

            mask_value(conn.password.strip())
        return robot_settings(self.wecom_conn_id, conn.host, conn.password, dict(conn.extra_dejson or {}))

    @property
    def url(self) -> str:
        """The webhook URL without the key."""
        return self.settings.url

    @property
    def robot_id(self) -> str:
        """16 hex digits of SHA-256 over URL and key: names the robot (its rate window) without revealing the key."""
        digest = hashlib.sha256(f"{self.settings.url}\n{self.settings.key}".encode()).hexdigest()
        return digest[:16]

    @cached_property
    def session(self) -> Any:
        import requests

        return requests.Session()

    def get_conn(self) -> Any:
        """The hook's ``requests.Session``."""
        return self.session

    def scrub(self, text: str) -> str:
        """``text`` without this robot's key (see :func:`scrub_key`)."""
        return scrub_key(text, self.settings.key)

    def send_markdown(self, content: str) -> dict[str, Any]:
        """Post one markdown message; the robot's answer on success, else a :class:`RobotError`."""
        size = len(content.encode("utf-8"))
        if size > MAX_CONTENT_BYTES:
            raise RobotRejected(f"markdown content is {size} bytes; a WeCom robot takes at most {MAX_CONTENT_BYTES}")
        return self._post({"msgtype": "markdown", "markdown": {"content": content}})

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's connection test: posts a short message to the group."""
        try:
            self.send_markdown("Airflow: WeCom robot connection test / 连接测试 ✓")
        except (RobotError, ConfigError) as exc:
            return False, self.scrub(str(exc))
        return True, "the robot accepted a test message"

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        last = "no attempt made"
        for attempt in range(1, self.max_attempts + 1):
            problem = self._attempt(payload)
            if isinstance(problem, dict):
                return problem
            last = problem
            if attempt < self.max_attempts:
                delay = self.backoff_base * 2 ** (attempt - 1)
                log.warning(
                    "WeCom robot %s: attempt %d/%d failed (%s); retrying in %.1f s",
                    self.robot_id, attempt, self.max_attempts, last, delay,
                )  # fmt: skip
                self._sleep(delay)
        raise RobotUnavailable(f"WeCom robot {self.robot_id} unavailable after {self.max_attempts} attempts: {last}")

    def _attempt(self, payload: dict[str, Any]) -> dict[str, Any] | str:
        """One request: the answer when delivered, a (scrubbed) reason when worth retrying; raises otherwise."""
        import requests

        settings = self.settings
        try:
            response = self.session.post(
                settings.url, params={"key": settings.key}, json=payload, timeout=settings.timeout
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            return self.scrub(f"{type(exc).__name__}: {exc}")
        except requests.RequestException as exc:
            raise RobotRejected(self.scrub(f"request to the WeCom robot failed: {type(exc).__name__}: {exc}")) from None
        status = response.status_code
        if status >= 500:
            return f"HTTP {status}"
        if status == 429:
            raise RobotRateLimited(f"WeCom robot {self.robot_id}: HTTP 429 (too many requests)", status=status)
        if status >= 400:
            raise RobotRejected(f"WeCom robot {self.robot_id}: HTTP {status}", status=status)
        try:
            body = response.json()
            errcode = int(body["errcode"])
        except (ValueError, AttributeError, TypeError, KeyError):
            return f"HTTP {status} with a body that is not the robot's JSON"
        errmsg = self.scrub(str(body.get("errmsg", "")))[:300]
        if errcode == 0:
            return body
        if errcode == BUSY_ERRCODE:
            return f"errcode -1 (system busy): {errmsg}"
        if errcode == RATE_LIMITED_ERRCODE:
            raise RobotRateLimited(
                f"WeCom robot {self.robot_id}: errcode 45009 (more than 20 messages a minute): {errmsg}",
                errcode=errcode,
            )
        raise RobotRejected(f"WeCom robot {self.robot_id} refused the message: errcode {errcode}: {errmsg}",
                            errcode=errcode)  # fmt: skip
