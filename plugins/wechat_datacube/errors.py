"""Error classes and the one errcode classification table.

The hook turns each errcode into one of these classes through :data:`ERRCODES`, the
operator maps them to task outcomes, and the DAGs' retry policy decides by class — so
"which codes are worth retrying" is decided in exactly one place (the table). No error
ever carries an access token: messages are built from errcode, errmsg, account, endpoint
and dates only, and URLs pass through :func:`redact_secrets` first.
"""

from __future__ import annotations

import datetime as dt
import re
from enum import StrEnum
from functools import cache
from typing import Any


class ErrorClass(StrEnum):
    TRANSIENT = "transient"
    TOKEN = "token"
    QUOTA = "quota"
    PERMANENT = "permanent"
    NOT_READY = "not_ready"


#: errcode -> (class, what a human should do about it)
ERRCODES: dict[int, tuple[ErrorClass, str]] = {
    -1: (ErrorClass.TRANSIENT, "WeChat system busy; retried with backoff"),
    45011: (ErrorClass.TRANSIENT, "per-minute frequency limit; retried after the next minute"),
    40001: (ErrorClass.TOKEN, "access token invalid or not the latest; refreshed once"),
    40014: (ErrorClass.TOKEN, "invalid access token; refreshed once"),
    42001: (ErrorClass.TOKEN, "access token expired; refreshed once"),
    45009: (ErrorClass.QUOTA, "daily quota reached; resume after midnight Beijing time"),
    40013: (ErrorClass.PERMANENT, "invalid AppID: check the connection's login"),
    40125: (ErrorClass.PERMANENT, "invalid AppSecret: check the connection's password"),
    40164: (ErrorClass.PERMANENT, "caller IP not on the account's API IP whitelist: add it in the MP console"),
    41001: (ErrorClass.PERMANENT, "access token missing from the request (a bug)"),
    48001: (ErrorClass.PERMANENT, "API not authorized for this account or token type"),
    50001: (ErrorClass.PERMANENT, "user not authorized for this API"),
    50002: (ErrorClass.PERMANENT, "API banned for this account"),
    61007: (ErrorClass.PERMANENT, "third party: the account did not grant this permission set"),
    61023: (ErrorClass.PERMANENT, "third party: authorizer refresh token invalid; re-authorize the account"),
    61500: (ErrorClass.PERMANENT, "date format error (a bug)"),
    61501: (ErrorClass.PERMANENT, "date range error: span too wide, end >= today or begin > end (clock/timezone?)"),
    47009: (
        ErrorClass.PERMANENT,
        "this endpoint is retired by WeChat (api offline): configure the replacement family "
        "(endpoints: [replacement] in the accounts file: getarticleread, getarticleshare, getbizsummary, "
        "getarticletotaldetail) for this account",
    ),
}

#: What the pipeline does with each error class (ERRCODES says what a person should do).
CLASS_BEHAVIOUR: dict[ErrorClass, str] = {
    ErrorClass.TRANSIENT: "retried in the hook with backoff, then by Airflow (exponential backoff)",
    ErrorClass.TOKEN: "token refreshed once (shared cache), call retried once",
    ErrorClass.QUOTA: "endpoint blocked for the account until 00:00 Beijing (`quota_block`); the task retries after",
    ErrorClass.PERMANENT: "task fails at once, no retry",
}

#: errcodes we do not know are treated as permanent: retrying the unknown burns quota.
UNKNOWN_ERRCODE_CLASS = ErrorClass.PERMANENT


def classify(errcode: int) -> ErrorClass:
    return ERRCODES.get(errcode, (UNKNOWN_ERRCODE_CLASS, ""))[0]


def advice(errcode: int) -> str:
    return ERRCODES.get(errcode, (UNKNOWN_ERRCODE_CLASS, "unknown errcode"))[1]


def describe_errcode(errcode: int) -> str:
    """One line for a person, from :data:`ERRCODES`: the code, its class, what it means and what to check.

    ``errcode 40125 (permanent): invalid AppSecret: check the connection's password``; a code
    the table lacks is named as unknown and treated as permanent (see :func:`classify`).
    """
    error_class, text = ERRCODES.get(errcode, (UNKNOWN_ERRCODE_CLASS, "unknown errcode, treated as permanent"))
    return f"errcode {errcode} ({error_class}): {text}"


#: Query parameters and JSON fields whose name ends like this carry a credential:
#: access_token, component_access_token, authorizer_refresh_token, secret, appsecret,
#: component_verify_ticket...
SECRET_NAME_ENDINGS = ("token", "secret", "ticket")
_SECRET_NAME = rf"[a-z_]*(?:{'|'.join(SECRET_NAME_ENDINGS)})"


def is_secret_name(name: str) -> bool:
    return name.lower().endswith(SECRET_NAME_ENDINGS)


#: Query parameters that carry a credential under a name of their own: a WeCom group robot's
#: webhook is ``...cgi-bin/webhook/send?key=KEY``. Only as a query parameter (after ``?`` or
#: ``&``): a JSON field named ``key`` in a datacube answer is data, not a secret.
SECRET_QUERY_NAMES = ("key",)


@cache
def _secret_pattern() -> re.Pattern[str]:
    """Compiled on first use, not at import: DAG parsing imports this module and never redacts."""
    query = rf"({_SECRET_NAME}=)[^&#\s\"]*"
    json_field = rf"(\"{_SECRET_NAME}\"\s*:\s*\")[^\"]*"  # also in a truncated, unparseable body
    named_query = rf"((?<=[?&])(?:{'|'.join(SECRET_QUERY_NAMES)})=)[^&#\s\"']*"
    return re.compile(rf"{query}|{json_field}|{named_query}", re.IGNORECASE)


def redact_secrets(text: str) -> str:
    """Replace the value of every credential query parameter or JSON string field with ``***``.

    Used on URLs, messages and response bodies kept for diagnosis: a broken token response
    (say, truncated JSON from /cgi-bin/token) must not carry the token into the database,
    and an error naming a robot's webhook URL must not carry its key into a log.
    """
    return _secret_pattern().sub(lambda m: f"{m.group(1) or m.group(2) or m.group(3)}***", text)


class WeChatDatacubeError(Exception):
    """Base class. Carries the context a person needs; never a token or secret."""

    error_class: ErrorClass = ErrorClass.PERMANENT

    def __init__(
        self,
        message: str,
        *,
        errcode: int | None = None,
        errmsg: str | None = None,
        endpoint: str | None = None,
        begin_date: dt.date | str | None = None,
        end_date: dt.date | str | None = None,
        account: str | None = None,
    ) -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        self.endpoint = endpoint
        self.begin_date = str(begin_date) if begin_date is not None else None
        self.end_date = str(end_date) if end_date is not None else None
        self.account = account
        self.message = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.account:
            where.append(f"account={self.account}")
        if self.endpoint:
            where.append(f"endpoint={self.endpoint}")
        if self.begin_date or self.end_date:
            where.append(f"dates={self.begin_date}..{self.end_date}")
        if self.errcode is not None:
            where.append(f"errcode={self.errcode}")
        if self.errmsg:
            where.append(f"errmsg={self.errmsg!r}")
        return f"{self.message} [{', '.join(where)}]" if where else self.message

    def reword(self, message: str) -> None:
        """Replace the message, keeping the context: for a caller that knows more about what went wrong
        (the retries given up, the run conf the dates came from) than the code that raised."""
        self.message = message
        self.args = (self._render(),)

    def context(self) -> dict[str, Any]:
        return {
            "errcode": self.errcode,
            "errmsg": self.errmsg,
            "endpoint": self.endpoint,
            "begin_date": self.begin_date,
            "end_date": self.end_date,
            "account": self.account,
        }


class TransientError(WeChatDatacubeError):
    """Worth retrying: system busy, frequency limit, 5xx, timeouts, broken bodies."""

    error_class = ErrorClass.TRANSIENT


class TokenError(WeChatDatacubeError):
    """The access token was rejected (40001/40014/42001)."""

    error_class = ErrorClass.TOKEN


class QuotaExceededError(WeChatDatacubeError):
    """45009: no more calls today. ``reset_at`` is the next midnight in Beijing."""

    error_class = ErrorClass.QUOTA

    def __init__(self, message: str, *, reset_at: dt.datetime | None = None, **kwargs: Any) -> None:
        if reset_at is None:
            from wechat_datacube.dates import next_beijing_midnight  # dates imports this module

            reset_at = next_beijing_midnight()
        self.reset_at = reset_at
        super().__init__(message, **kwargs)

    def _render(self) -> str:
        return f"{super()._render()} (quota resets at {self.reset_at.isoformat()})"


class QuotaBlockedError(QuotaExceededError):
    """A 45009 seen earlier (by any task) still holds for this endpoint: not called, nothing new to report."""


class PermanentError(WeChatDatacubeError):
    """Retrying cannot help: configuration, authorization or a bug. Fail fast."""

    error_class = ErrorClass.PERMANENT


class ConfigError(PermanentError):
    """The connection, the accounts file or a parameter is wrong."""


class DateRangeError(ConfigError):
    """A date range that cannot be asked for: not dates, begin after end, wider than one call
    allows, or outside what the endpoint serves. Refused before any call.

    The one error for a bad range, wherever the dates entered (operator arguments, a run's
    conf, backfill params, the hook): :meth:`wechat_datacube.dates.DateRange.parse` raises it
    naming the account, endpoint and dates. A :class:`ConfigError`, because the dates come
    from whoever configured or triggered the run, not from WeChat.
    """


class MalformedResponseError(TransientError):
    """The body was not the JSON we expect (HTML error page, truncated JSON, ...).

    ``raw`` keeps what arrived (text or parsed JSON) for diagnosis; it is stored, never
    put into the message.
    """

    def __init__(self, message: str, *, raw: Any = None, **kwargs: Any) -> None:
        self.raw = raw
        super().__init__(message, **kwargs)


class HttpStatusError(TransientError):
    """HTTP 5xx or 429 from WeChat or a proxy in front of it (say nginx's 502 page).

    ``raw`` keeps the page that came with it, for diagnosis: stored (redacted) with the
    failed attempt, never put into the message.
    """

    def __init__(self, message: str, *, status: int, raw: Any = None, **kwargs: Any) -> None:
        self.status = status
        self.raw = raw
        super().__init__(message, **kwargs)


class BadPayloadError(PermanentError):
    """A well-formed response whose rows do not fit the registry (missing keys, wrong types)."""


class SchemaDriftError(BadPayloadError):
    """WeChat changed a response's shape: documented metrics gone while unknown keys appeared,
    or an object where a number belongs. Permanent: retrying gets the same shape, and storing
    it would fill the typed table with NULLs. The raw body is kept; nothing is written."""

    def __init__(self, message: str, *, missing: list[str] | None = None, unknown: list[str] | None = None,
                 **kwargs: Any) -> None:
        self.missing = list(missing or ())
        self.unknown = list(unknown or ())
        super().__init__(message, **kwargs)


class DataQualityError(BadPayloadError):
    """Stored rows fail a sanity check (negative metric, impossible ref_hour, duplicate key)."""


class DataNotReadyError(WeChatDatacubeError):
    """The day's data is not published yet (empty list or ``is_delay`` before the deadline)."""

    error_class = ErrorClass.NOT_READY

    def __init__(self, message: str, *, deadline: dt.datetime | None = None, **kwargs: Any) -> None:
        #: After this moment an empty answer is stored as "empty" instead of retried.
        self.deadline = deadline
        super().__init__(message, **kwargs)


_CLASS_TO_EXCEPTION: dict[ErrorClass, type[WeChatDatacubeError]] = {
    ErrorClass.TRANSIENT: TransientError,
    ErrorClass.TOKEN: TokenError,
    ErrorClass.QUOTA: QuotaExceededError,
    ErrorClass.PERMANENT: PermanentError,
}


def error_for_errcode(errcode: int, errmsg: str | None, **context: Any) -> WeChatDatacubeError:
    """Build the typed error for a body-level errcode."""
    cls = _CLASS_TO_EXCEPTION[classify(errcode)]
    return cls(f"WeChat API error: {advice(errcode)}", errcode=errcode, errmsg=errmsg, **context)
