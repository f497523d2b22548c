"""Turn API rows into typed, flat rows that fit the endpoint's table (pure functions).

The registry (:mod:`wechat_datacube.endpoints`) says which fields a row has and of which
type; this module holds WeChat to it. Rules, chosen so that a surprise upstream becomes a
clear error before anything is written rather than a half-written window:

* nested lists (``spec.nested``) are flattened: one stored row per element, with the
  parent's ``spec.parent_columns`` copied into each; a ``spec.detail`` object (where the
  replacement family keeps its numbers) is opened so its fields sit beside the keys;
* a row that has lost every documented metric while carrying keys we do not know, or an
  object where a number belongs, is :class:`SchemaDriftError`: the shape changed, and
  typing it would silently store NULLs;
* values are coerced to the column type (WeChat sends some integers as strings);
  anything that cannot be coerced without guessing is a :class:`BadPayloadError`;
* fields the registry does not know are kept in ``extra`` instead of failing, because
  WeChat adds fields over time;
* rows whose ``ref_date`` lies outside the requested window are dropped, by the one rule
  in :mod:`wechat_datacube.responses`;
* a natural key that appears twice is collapsed when the rows are identical and an error
  when they disagree (the table's primary key would reject it anyway, less clearly).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, Protocol

from wechat_datacube.dates import parse_date
from wechat_datacube.endpoints import Column, EndpointSpec
from wechat_datacube.errors import BadPayloadError, DateRangeError, SchemaDriftError
from wechat_datacube.responses import in_window, response_list

log = logging.getLogger(__name__)

#: Columns every typed table has besides the registry's; a registry column may not use them.
ACCOUNT_COLUMN = "account"
EXTRA_COLUMN = "extra"

_INT_RANGES = {"int": (-(2**31), 2**31 - 1), "bigint": (-(2**63), 2**63 - 1)}
_INT_TEXT = re.compile(r"[+-]?\d+")
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")


class _BadValue(ValueError):
    """Internal: a value that does not fit its column (turned into BadPayloadError with context)."""


def _coerce_int(value: Any, type_: str) -> int:
    if isinstance(value, bool):
        raise _BadValue("a boolean where an integer belongs")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise _BadValue("not an integer")
    low, high = _INT_RANGES[type_]
    if not low <= number <= high:
        raise _BadValue(f"out of range for {type_}")
    return number


def _coerce_float(value: Any) -> float:
    if isinstance(value, bool):
        raise _BadValue("a boolean where a number belongs")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise _BadValue("not a number") from None
    else:
        raise _BadValue("not a number")
    if not math.isfinite(number):
        raise _BadValue("not a finite number")
    return number


def _coerce_text(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)  # e.g. a msgid sent as a number: the text is unambiguous
    else:
        raise _BadValue("not a string")
    if "\x00" in text:
        raise _BadValue("contains a NUL character (PostgreSQL text cannot store it)")
    return text


def _coerce_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        raise _BadValue("a datetime where a calendar date belongs")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _BadValue("not a YYYY-MM-DD date")


def _coerce_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _BadValue("not a boolean")


_NUL_PROBLEM = "contains a NUL character (PostgreSQL jsonb cannot store it)"
_NAN_PROBLEM = "contains NaN or Infinity (not valid JSON)"
#: How json.dumps writes U+0000; PostgreSQL jsonb refuses the escape.
_NUL_ESCAPE = "\\u0000"


def _unstorable(value: Any) -> tuple[list[Any], str] | None:
    """(path, reason) of the first thing PostgreSQL jsonb refuses in ``value``, or None.

    jsonb refuses U+0000 in any string (keys too) and NaN/Infinity, which are not JSON but
    which Python's parser (and so the hook) accepts. The path (keys and list indexes) is
    built on the way back from a find only, so a clean value costs one walk.
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


def _jsonb_problem(value: Any) -> str | None:
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


def coerce_value(column: Column, value: Any) -> Any:
    """Return ``value`` as the Python type of ``column`` (None stays None).

    Raises ``ValueError`` with a short reason when the value does not fit.
    """
    if value is None:
        return None
    if column.type in _INT_RANGES:
        return _coerce_int(value, column.type)
    if column.type == "float":
        return _coerce_float(value)
    if column.type == "text":
        return _coerce_text(value)
    if column.type == "date":
        return _coerce_date(value)
    if column.type == "bool":
        return _coerce_bool(value)
    if column.type == "jsonb":
        problem = _jsonb_problem(value)
        if problem:
            raise _BadValue(problem)
        return value
    raise _BadValue(f"unsupported column type {column.type!r}")  # pragma: no cover - registry bug


def _window(begin_date: dt.date | str, end_date: dt.date | str) -> tuple[dt.date, dt.date]:
    begin, end = parse_date(begin_date, what="begin_date"), parse_date(end_date, what="end_date")
    if begin > end:
        raise DateRangeError("begin_date is after end_date", begin_date=begin, end_date=end)
    return begin, end


def _preview(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def rows_from_body(
    spec: EndpointSpec,
    body: Any,
    *,
    account: str,
    begin_date: dt.date | str,
    end_date: dt.date | str,
) -> list[Any]:
    """Return the raw ``list`` of a successful datacube response body.

    The rule is :func:`wechat_datacube.responses.response_list`, the same one the hook
    applies: a body without a ``list`` array is a MalformedResponseError naming account,
    endpoint and dates, never an empty day.
    """
    return response_list(body, account=account, endpoint=spec.name, begin_date=begin_date, end_date=end_date)


class _Fail(Protocol):
    def __call__(self, message: str, *, missing: list[str] | None = ..., unknown: list[str] | None = ...) -> NoReturn:
        ...


def _merge(fields: dict[str, Any], extra: dict[str, Any], more: Mapping[str, Any], prefix: str) -> None:
    """Add ``more`` to ``fields``; a name already there with another value goes to ``extra`` as prefix.name."""
    for key, value in more.items():
        if key in fields and fields[key] != value:
            extra[f"{prefix}.{key}"] = value
        else:
            fields.setdefault(key, value)


def _open_detail(spec: EndpointSpec, item: Mapping[str, Any], where: str, fail: _Fail) -> dict[str, Any]:
    """An item's own fields with its ``spec.detail`` object (where the numbers live) merged in."""
    fields = {k: v for k, v in item.items() if k != spec.detail}
    if spec.detail is None:
        return fields
    detail = item.get(spec.detail)
    if detail is None:
        # Keys alone (or a flat row): typed as they are; _check_drift catches lost metrics.
        return fields
    if not isinstance(detail, Mapping):
        fail(
            f"{where}: {spec.detail!r} is a {type(detail).__name__}, not an object: {_preview(detail)}; "
            f"WeChat documents the numbers {spec.shape}",
            missing=list(spec.metric_names),
            unknown=[spec.detail],
        )
    extra: dict[str, Any] = {}
    _merge(fields, extra, detail, spec.detail)
    fields.update({k: v for k, v in extra.items() if k not in fields})
    return fields


def _flatten(spec: EndpointSpec, rows: Sequence[Any], fail: _Fail) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, fields, parent extras) per stored row, before typing.

    Applies the registry's shape: a nested list (``spec.nested``) gives one stored row per
    element with the parent's ``spec.parent_columns`` copied in; a ``spec.detail`` object
    (in the item, or in each nested element) is opened so its numbers sit beside the keys.
    """
    flat: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            fail(f"row {i} is a {type(row).__name__}, not an object: {_preview(row)}")
        if spec.nested is None:
            flat.append((f"row {i}", _open_detail(spec, row, f"row {i}", fail), {}))
            continue
        children = row.get(spec.nested)
        if not isinstance(children, list):
            fail(
                f"row {i} has no {spec.nested!r} list"
                if children is None
                else f"row {i}: {spec.nested!r} is a {type(children).__name__}, not a list"
            )
        parent = {k: row[k] for k in spec.parent_columns if k in row}
        parent_extra = {k: v for k, v in row.items() if k not in spec.parent_columns and k != spec.nested}
        for j, child in enumerate(children):
            where = f"row {i} {spec.nested}[{j}]"
            if not isinstance(child, Mapping):
                fail(f"{where} is a {type(child).__name__}, not an object: {_preview(child)}")
            fields = dict(parent)
            child_extra: dict[str, Any] = {}
            # A parent column repeated with another value: keep both, the parent's is typed.
            _merge(fields, child_extra, _open_detail(spec, child, where, fail), spec.nested)
            flat.append((where, fields, {**parent_extra, **child_extra}))
    return flat


def _check_drift(spec: EndpointSpec, where: str, fields: Mapping[str, Any], fail: _Fail) -> None:
    """Fail when a row carries none of the documented metrics but keys we do not know.

    That is what a renamed or re-nested field looks like: typing it would store a row of
    NULLs and the task would succeed. A row with neither (say ``{"ref_date": ...}``) is
    only sparse, and legacy rows legitimately omit metrics by source.
    """
    metrics = spec.metric_names
    if not metrics or any(fields.get(m) is not None for m in metrics):
        return
    unknown = sorted(k for k in fields if k not in spec.column_names)
    if unknown:
        fail(
            f"{where}: none of the documented metrics is present but unknown key(s) are: the response shape "
            f"changed (WeChat documents the numbers {spec.shape}); missing {', '.join(metrics)}; "
            f"unknown {', '.join(unknown)}",
            missing=list(metrics),
            unknown=unknown,
        )


def normalize_rows(
    spec: EndpointSpec,
    rows: Sequence[Any],
    *,
    account: str,
    begin_date: dt.date | str,
    end_date: dt.date | str,
) -> list[dict[str, Any]]:
    """Flatten, type and check API rows; return one dict per table row.

    Each dict has ``account``, every registry column of ``spec`` (None when WeChat left
    it out) and ``extra`` (a dict of the fields the registry does not know). Rows outside
    [begin_date, end_date] are dropped with a warning (the rule of
    :func:`wechat_datacube.responses.in_window`). Raises :class:`BadPayloadError` naming
    account, endpoint and dates for a non-object row, a missing or null key field, or a
    value of the wrong type; :class:`SchemaDriftError` when the shape changed.
    """
    begin, end = _window(begin_date, end_date)
    ctx = {"account": account, "endpoint": spec.name, "begin_date": begin, "end_date": end}

    def fail(message: str, *, missing: list[str] | None = None, unknown: list[str] | None = None) -> NoReturn:
        if missing is not None or unknown is not None:
            raise SchemaDriftError(f"schema drift: {message}", missing=missing, unknown=unknown, **ctx)
        raise BadPayloadError(f"bad payload: {message}", **ctx)

    if not isinstance(rows, (list, tuple)):
        fail(f"rows are a {type(rows).__name__}, not a list")
    rows, stray = in_window(spec, list(rows), begin, end, **ctx)
    known = {c.name: c for c in spec.columns}
    required = {c.name for c in spec.columns if c.required} | set(spec.key)
    out: list[dict[str, Any]] = []
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for where, fields, extra in _flatten(spec, rows, fail):
        _check_drift(spec, where, fields, fail)
        typed: dict[str, Any] = {ACCOUNT_COLUMN: account}
        extra = dict(extra)
        for name, value in fields.items():
            column = known.get(name)
            if column is None:
                if spec.nested and name in extra and extra[name] != value:
                    # The parent has an unknown field of the same name: keep both, as for known ones.
                    extra[f"{spec.nested}.{name}"] = value
                else:
                    extra[name] = value
                continue
            if isinstance(value, (Mapping, list)) and column.type != "jsonb":
                fail(
                    f"{where}: field {name!r} holds {'an object' if isinstance(value, Mapping) else 'a list'} "
                    f"where a {column.type} belongs: {_preview(value)}",
                    missing=[name],
                    unknown=sorted(str(k) for k in value) if isinstance(value, Mapping) else [],
                )
            try:
                typed[name] = coerce_value(column, value)
            except _BadValue as exc:
                fail(f"{where}: field {name!r} ({column.type}) {exc}: {_preview(value)}")
        problem = _jsonb_problem(extra)
        if problem:
            fail(f"{where}: an unknown field {problem}")
        for name in known:
            typed.setdefault(name, None)
        missing = sorted(n for n in required if typed[n] is None)
        if missing:
            fail(f"{where}: missing key field(s) {', '.join(missing)}")
        ref_date = typed[spec.date_column]
        if not begin <= ref_date <= end:
            # A nested element whose parent had no parsable date at the raw level.
            stray.append(ref_date)
            continue
        typed[EXTRA_COLUMN] = extra
        key = tuple(typed[k] for k in spec.key)
        seen = by_key.get(key)
        if seen is not None:
            if seen != typed:
                fail(
                    f"{where}: key {dict(zip(spec.key, map(str, key), strict=True))} appears twice with different values"
                )
            continue
        by_key[key] = typed
        out.append(typed)
    if stray:
        log.warning(
            "%s account=%s %s..%s: dropped %d row(s) dated outside the window (e.g. %s)",
            spec.name,
            account,
            begin,
            end,
            len(stray),
            min(stray),
        )
    return out
