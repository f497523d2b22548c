"""One API value as the Python type of its registry column, or a short reason why not (pure).

WeChat sends some integers as strings; those are coerced. Anything that cannot be coerced
without guessing (text where a number belongs, a boolean for a count, an integer beyond
the column's range, a datetime for a date) is refused with :class:`UnfitValue`, which the
row normaliser turns into a BadPayloadError naming account, endpoint, dates and field.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from wechat_datacube.endpoints import Column
from wechat_datacube.storage.payloads import jsonb_problem

_INT_RANGES = {"int": (-(2**31), 2**31 - 1), "bigint": (-(2**63), 2**63 - 1)}
_INT_TEXT = re.compile(r"[+-]?\d+")
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")


class UnfitValue(ValueError):
    """A value that does not fit its column; the message is the reason, without the value."""


def _coerce_int(value: Any, type_: str) -> int:
    if isinstance(value, bool):
        raise UnfitValue("a boolean where an integer belongs")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise UnfitValue("not an integer")
    low, high = _INT_RANGES[type_]
    if not low <= number <= high:
        raise UnfitValue(f"out of range for {type_}")
    return number


def _coerce_float(value: Any) -> float:
    if isinstance(value, bool):
        raise UnfitValue("a boolean where a number belongs")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise UnfitValue("not a number") from None
    else:
        raise UnfitValue("not a number")
    if not math.isfinite(number):
        raise UnfitValue("not a finite number")
    return number


def _coerce_text(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)  # e.g. a msgid sent as a number: the text is unambiguous
    else:
        raise UnfitValue("not a string")
    if "\x00" in text:
        raise UnfitValue("contains a NUL character (PostgreSQL text cannot store it)")
    return text


def _coerce_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        raise UnfitValue("a datetime where a calendar date belongs")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise UnfitValue("not a YYYY-MM-DD date")


def _coerce_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise UnfitValue("not a boolean")


def _coerce_jsonb(value: Any) -> Any:
    problem = jsonb_problem(value)
    if problem:
        raise UnfitValue(problem)
    return value


def coerce_value(column: Column, value: Any) -> Any:
    """Return ``value`` as the Python type of ``column`` (None stays None); UnfitValue when it does not fit."""
    if value is None:
        return None
    if column.type in _INT_RANGES:
        return _coerce_int(value, column.type)
    coerce = _COERCIONS.get(column.type)
    if coerce is None:  # pragma: no cover - registry bug
        raise UnfitValue(f"unsupported column type {column.type!r}")
    return coerce(value)


_COERCIONS = {
    "float": _coerce_float,
    "text": _coerce_text,
    "date": _coerce_date,
    "bool": _coerce_bool,
    "jsonb": _coerce_jsonb,
}
