"""Response bodies as ``api_response.payload`` (jsonb) will hold them (pure functions).

PostgreSQL jsonb refuses U+0000 in any string (keys too) and NaN/Infinity, which are not
JSON but which Python's parser (and so the hook) accepts. A good body must be refused
*before* the transaction, with a message naming the place (:func:`body_json`); a failed
one is kept anyway, made storable and free of credentials (:func:`failure_payload`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from wechat_datacube.errors import BadPayloadError, is_secret_name, redact_secrets

_NUL_PROBLEM = "contains a NUL character (PostgreSQL jsonb cannot store it)"
_NAN_PROBLEM = "contains NaN or Infinity (not valid JSON)"
#: How json.dumps writes U+0000; PostgreSQL jsonb refuses the escape.
_NUL_ESCAPE = "\\u0000"


def _unstorable(value: Any) -> tuple[list[Any], str] | None:
    """(path, reason) of the first thing PostgreSQL jsonb refuses in ``value``, or None.

    The path (keys and list indexes) is built on the way back from a find only, so a
    clean value costs one walk.
    """
    if isinstance(value, str):
        return ([], _NUL_PROBLEM) if "\x00" in value else None
    if isinstance(value, float):
        return None if math.isfinite(value) else ([], _NAN_PROBLEM)
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = _unstorable(key) or _unstorable(item)
            if found:
                return [key, *found[0]], found[1]
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _unstorable(item)
            if found:
                return [index, *found[0]], found[1]
    return None


def jsonb_problem(value: Any) -> str | None:
    """Why PostgreSQL jsonb would refuse ``value`` (a NUL character, NaN/Infinity), or None."""
    found = _unstorable(value)
    return found[1] if found else None


def _path_text(path: Sequence[Any], limit: int = 120) -> str:
    text = "body" + "".join(f"[{step!r}]" for step in path)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def body_json(
    body: Any, *, account: str, endpoint: str, begin_date: dt.date | str, end_date: dt.date | str
) -> str:
    """``body`` as the JSON text ``api_response.payload`` (jsonb) will accept, else BadPayloadError.

    A NaN, an Infinity or a U+0000 anywhere in a response — an unknown top-level key
    included, where row typing never looks — would otherwise surface as a psycopg error
    with no context, inside the transaction, and be retried as if transient (calling the
    API again for the same unstorable answer). One C-speed ``json.dumps`` is the check and
    also the serialisation the insert needs (psycopg's ``Jsonb`` would run the same one);
    only a body it flags is walked, to name the place (and to rule out a literal
    backslash-``u0000`` text, which is no NUL).
    The message names the place, never the value (it may sit next to a credential).
    """
    try:
        text = json.dumps(body, allow_nan=False)
    except ValueError:  # NaN or Infinity (or a circular structure, which only a caller bug makes)
        found = _unstorable(body)
        if found is None:
            raise
    else:
        found = _unstorable(body) if _NUL_ESCAPE in text else None
        if found is None:
            return text
    path, problem = found
    raise BadPayloadError(
        f"bad payload: {_path_text(path)} {problem}: PostgreSQL cannot store this response",
        account=account,
        endpoint=endpoint,
        begin_date=begin_date,
        end_date=end_date,
    )


_JSON_SCALARS = (bool, int, float, type(None))
#: How a non-finite float is kept: as the text JSON would have needed.
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _redact(value: Any) -> Any:
    """A credential-free copy of ``value`` made of JSON types only.

    Works on the structure, before anything is serialised: a field named like a credential
    becomes ``***`` whatever it holds, and every string (a URL in an errmsg, JSON text)
    has its token-looking parts replaced. A value of another type is kept as its redacted
    text — never as the ``repr`` of a whole structure, whose quoting the text rules miss.
    """
    if isinstance(value, str):
        return redact_secrets(value)
    if isinstance(value, Mapping):
        return {str(k): "***" if is_secret_name(str(k)) else _redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact(v) for v in value]
    if isinstance(value, _JSON_SCALARS):
        return value
    return redact_secrets(str(value))


def _json_safe(value: Any) -> Any:
    """``value`` (JSON types) with what jsonb refuses made storable, so a broken body can still be kept.

    NaN/Infinity become the strings ``"NaN"``/``"Infinity"``/``"-Infinity"`` and U+0000 becomes
    U+FFFD, in keys and values: the place stays visible for diagnosis.
    """
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, float) and not math.isfinite(value):
        return _NON_FINITE[repr(value)]
    if isinstance(value, Mapping):
        return {_json_safe(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _parsed(body_or_text: Any) -> Any:
    """Bytes as text, and text that is JSON as its structure (Python's parser accepts NaN too)."""
    if isinstance(body_or_text, (bytes, bytearray)):
        body_or_text = bytes(body_or_text).decode("utf-8", errors="replace")
    if isinstance(body_or_text, str):
        try:
            return json.loads(body_or_text)
        except ValueError:
            pass
    return body_or_text


def failure_payload(body_or_text: Any) -> Any:
    """The JSON to keep for a failed response: parsed JSON when it is JSON, else the text as a JSON string.

    Redacted first, on the structure (by key and by value), then made JSON-safe for jsonb;
    the result always serialises with ``allow_nan=False``.
    """
    return _json_safe(_redact(_parsed(body_or_text)))


def failure_message(message: Any) -> str:
    """An error message as ``api_response.error`` / ``load_log.message`` keep it: redacted, storable text."""
    return redact_secrets(str(message)).replace("\x00", "\ufffd")
