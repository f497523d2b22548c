"""HTTP transport for the WeChat API: one session, timeouts, bounded retries, typed errors.

Kept apart from the hook so that token sources (tokens.py) and data calls share the same
session, the same retry rules and the same redaction. Nothing here knows about endpoints
or dates beyond carrying them into error messages.

Secrets discipline: the access token travels in the query string, so

* URLs only ever reach messages through :func:`errors.redact_secrets`;
* a ``requests`` exception's own text (it embeds the URL) is never used: we report the
  exception's type name only, and raise ``from None`` so the original is not chained
  into tracebacks;
* urllib3's debug log line (``"POST /datacube/x?access_token=... HTTP/1.1" 200``) is
  redacted by a logging filter installed at import.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from wechat_datacube.dates import next_beijing_midnight
from wechat_datacube.errors import (
    ErrorClass,
    HttpStatusError,
    MalformedResponseError,
    PermanentError,
    QuotaExceededError,
    TransientError,
    WeChatDatacubeError,
    classify,
    error_for_errcode,
    redact_secrets,
)

log = logging.getLogger(__name__)

#: errcode of the per-minute frequency limit: wait for the next minute, not a backoff.
FREQUENCY_LIMIT_ERRCODE = 45011


#: How much of a broken body is kept for diagnosis.
MAX_RAW_CHARS = 200_000


class _RedactQueryFilter(logging.Filter):
    """Redact token/secret query parameters from urllib3's request log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(redact_secrets(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact_secrets(record.msg)
        return True


for _name in ("urllib3.connectionpool", "urllib3", "requests"):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, _RedactQueryFilter) for f in _logger.filters):
        _logger.addFilter(_RedactQueryFilter())


@dataclass(frozen=True)
class HttpBackoff:
    """How hard one HTTP call is tried, within one task try, before a transient failure is given up.

    ``max_attempts`` bounds the number of requests; ``max_retry_seconds`` bounds the total
    time spent waiting between them (the waits are what we control; each request is
    itself bounded by the timeouts). Backoff is exponential with jitter. Not to be confused
    with the Airflow retry policy (:mod:`wechat_datacube.retry_policy`), which decides
    whether and when a failed task is tried again.
    """

    max_attempts: int = 4
    max_retry_seconds: float = 120.0
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    #: Cap of the wait after 45011 (WeChat's limit is per minute: the next minute suffices).
    rate_limit_wait_max: float = 61.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Delay before attempt ``attempt + 1`` (attempt counts from 1)."""
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class CallContext:
    """What an error message should say about the call (never the token)."""

    account: str | None = None
    endpoint: str | None = None
    begin_date: dt.date | str | None = None
    end_date: dt.date | str | None = None

    def kwargs(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "endpoint": self.endpoint,
            "begin_date": self.begin_date,
            "end_date": self.end_date,
        }


def _text(response: requests.Response) -> str:
    """The start of a response's body as text; "" when it cannot be read (a cut connection)."""
    try:
        return response.text[:MAX_RAW_CHARS]
    except requests.RequestException:
        return ""


class Transport:
    """Sends one logical request, retrying transient failures within its :class:`HttpBackoff`."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: tuple[float, float],
        verify: bool,
        backoff: HttpBackoff,
        clock: Callable[[], dt.datetime],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.verify = verify
        self.backoff = backoff
        self.clock = clock
        self.sleep = sleep
        self.session = requests.Session()
        self._rng = random.Random()

    def close(self) -> None:
        self.session.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        context: CallContext,
        on_attempt: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Return the parsed JSON body of a successful call, or raise a typed error.

        Transient failures (-1, 45011, HTTP 5xx/429, timeouts, dropped connections,
        malformed bodies) are retried within the backoff's limits; everything else raises at once.
        """
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            if on_attempt is not None:
                on_attempt()
            try:
                return self._once(method, path, params=params, json_body=json_body, context=context)
            except TransientError as exc:
                delay = self._delay_after(exc, attempt)
                if attempt >= self.backoff.max_attempts or waited + delay > self.backoff.max_retry_seconds:
                    exc.reword(f"{exc.message} (gave up after {attempt} attempt(s))")
                    raise
                log.warning(
                    "transient WeChat error on %s (attempt %d/%d), retrying in %.1f s: %s",
                    path,
                    attempt,
                    self.backoff.max_attempts,
                    delay,
                    exc,
                )
                waited += delay
                self.sleep(delay)

    def _delay_after(self, exc: TransientError, attempt: int) -> float:
        if exc.errcode == FREQUENCY_LIMIT_ERRCODE:
            now = self.clock()
            to_next_minute = 60.0 - (now.second + now.microsecond / 1e6) + self._rng.uniform(0.1, 1.0)
            return min(self.backoff.rate_limit_wait_max, to_next_minute)
        return self.backoff.delay(attempt, self._rng)

    def _once(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None,
        json_body: dict[str, Any] | None,
        context: CallContext,
    ) -> dict[str, Any]:
        url = self.base_url + path
        ctx = context.kwargs()
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                json=json_body,
                timeout=self.timeout,
                verify=self.verify,
            )
        except requests.Timeout as exc:
            raise TransientError(f"timeout calling {redact_secrets(url)} ({type(exc).__name__})", **ctx) from None
        except requests.ConnectionError as exc:
            raise TransientError(
                f"connection failed calling {redact_secrets(url)} ({type(exc).__name__})", **ctx
            ) from None
        except requests.RequestException as exc:
            raise TransientError(f"request to {redact_secrets(url)} failed ({type(exc).__name__})", **ctx) from None
        return self._parse(response, url, ctx)

    def _parse(self, response: requests.Response, url: str, ctx: dict[str, Any]) -> dict[str, Any]:
        status = response.status_code
        where = redact_secrets(url)
        if status >= 500 or status == 429:
            raise HttpStatusError(f"HTTP {status} from {where}", status=status, raw=_text(response), **ctx)
        if status != 200:
            raise PermanentError(f"unexpected HTTP {status} from {where}", **ctx)
        try:
            body = response.json()
        except (ValueError, json.JSONDecodeError):
            ctype = response.headers.get("Content-Type", "?")
            raise MalformedResponseError(
                f"non-JSON body ({ctype}) from {where}", raw=response.text[:MAX_RAW_CHARS], **ctx
            ) from None
        except requests.RequestException as exc:  # body cut off mid-read
            raise TransientError(f"reading the body from {where} failed ({type(exc).__name__})", **ctx) from None
        if not isinstance(body, dict):
            raise MalformedResponseError(f"JSON body from {where} is not an object", raw=body, **ctx)
        errcode = body.get("errcode", 0)
        if errcode in (0, None):
            return body
        try:
            code = int(errcode)
        except (TypeError, ValueError):
            raise MalformedResponseError(f"non-numeric errcode from {where}", **ctx) from None
        errmsg = body.get("errmsg")
        errmsg = redact_secrets(str(errmsg)) if errmsg is not None else None
        if classify(code) is ErrorClass.QUOTA:
            raise QuotaExceededError(
                "WeChat daily quota reached (45009): stop calling until the reset",
                reset_at=next_beijing_midnight(self.clock()),
                errcode=code,
                errmsg=errmsg,
                **ctx,
            )
        error: WeChatDatacubeError = error_for_errcode(code, errmsg, **ctx)
        raise error
