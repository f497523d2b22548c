"""Turn API rows into typed, flat rows that fit the endpoint's table (pure functions).

The registry (:mod:`wechat_datacube.endpoints`) says which fields a row has and of which
type; this module holds WeChat to it. Rules, chosen so that a surprise upstream becomes a
clear error before anything is written rather than a half-written window:

* nested lists (``spec.nested``) are flattened: one stored row per element, with the
  parent's ``spec.parent_columns`` copied into each; a ``spec.detail`` object (where the
  replacement family keeps its numbers) is opened so its fields sit beside the keys;
* rows whose date lies outside the requested window are dropped, by the one rule in
  :func:`wechat_datacube.responses.in_window` (the hook's too), applied to the rows as
  they will be stored; an answer whose rows all lie outside the window is malformed;
* a row that has lost every documented metric while carrying keys we do not know, or an
  object where a number belongs, is :class:`SchemaDriftError`: the shape changed, and
  typing it would silently store NULLs;
* values are coerced to the column type (:mod:`.values`); anything that cannot be
  coerced without guessing is a :class:`BadPayloadError`;
* fields the registry does not know are kept in ``extra`` instead of failing, because
  WeChat adds fields over time;
* a natural key that appears twice is collapsed when the rows are identical and an error
  when they disagree (the table's primary key would reject it anyway, less clearly).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, Protocol

from wechat_datacube.dates import DateRange
from wechat_datacube.endpoints import Column, EndpointSpec
from wechat_datacube.errors import BadPayloadError, SchemaDriftError
from wechat_datacube.responses import in_window, response_list
from wechat_datacube.storage.columns import ACCOUNT_COLUMN, EXTRA_COLUMN
from wechat_datacube.storage.payloads import jsonb_problem
from wechat_datacube.storage.values import UnfitValue, coerce_value

log = logging.getLogger(__name__)

#: One row on its way to the table: (where it came from, its fields, the extras it inherits).
Flat = tuple[str, dict[str, Any], dict[str, Any]]


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


def _flatten(spec: EndpointSpec, rows: Sequence[Any], fail: _Fail) -> list[Flat]:
    """(where, fields, parent extras) per stored row, before typing.

    Applies the registry's shape: a nested list (``spec.nested``) gives one stored row per
    element with the parent's ``spec.parent_columns`` copied in; a ``spec.detail`` object
    (in the item, or in each nested element) is opened so its numbers sit beside the keys.
    """
    flat: list[Flat] = []
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


class _Normalisation:
    """One call of :func:`normalize_rows`: the endpoint, account and window every error names."""

    def __init__(self, spec: EndpointSpec, account: str, dates: DateRange) -> None:
        self.spec, self.account, self.dates = spec, account, dates
        self.context = {"account": account, "endpoint": spec.name, "begin_date": dates.begin, "end_date": dates.end}
        self.known: dict[str, Column] = {c.name: c for c in spec.columns}
        self.required = {c.name for c in spec.columns if c.required} | set(spec.key)

    def fail(self, message: str, *, missing: list[str] | None = None, unknown: list[str] | None = None) -> NoReturn:
        if missing is not None or unknown is not None:
            raise SchemaDriftError(f"schema drift: {message}", missing=missing, unknown=unknown, **self.context)
        raise BadPayloadError(f"bad payload: {message}", **self.context)


def _in_window(job: _Normalisation, flat: list[Flat]) -> list[Flat]:
    """The rows dated inside the window, by :func:`wechat_datacube.responses.in_window` on the rows as stored."""
    kept, stray = in_window(job.spec, [fields for _, fields, _ in flat], job.dates.begin, job.dates.end, **job.context)
    if stray:
        log.warning(
            "%s account=%s %s: dropped %d row(s) dated outside the window (e.g. %s)",
            job.spec.name, job.account, job.dates, len(stray), min(stray),
        )
    keep = {id(fields) for fields in kept}
    return [row for row in flat if id(row[1]) in keep]


def _typed_value(job: _Normalisation, where: str, column: Column, value: Any) -> Any:
    if isinstance(value, (Mapping, list)) and column.type != "jsonb":
        job.fail(
            f"{where}: field {column.name!r} holds {'an object' if isinstance(value, Mapping) else 'a list'} "
            f"where a {column.type} belongs: {_preview(value)}",
            missing=[column.name],
            unknown=sorted(str(k) for k in value) if isinstance(value, Mapping) else [],
        )
    try:
        return coerce_value(column, value)
    except UnfitValue as exc:
        job.fail(f"{where}: field {column.name!r} ({column.type}) {exc}: {_preview(value)}")


def _keep_unknown(spec: EndpointSpec, extra: dict[str, Any], name: str, value: Any) -> None:
    if spec.nested and name in extra and extra[name] != value:
        # The parent has an unknown field of the same name: keep both, as for known ones.
        extra[f"{spec.nested}.{name}"] = value
    else:
        extra[name] = value


def _typed_row(
    job: _Normalisation, where: str, fields: Mapping[str, Any], inherited: Mapping[str, Any]
) -> dict[str, Any]:
    """One table row: account, every registry column (None when absent), and ``extra``."""
    typed: dict[str, Any] = {ACCOUNT_COLUMN: job.account}
    extra = dict(inherited)
    for name, value in fields.items():
        column = job.known.get(name)
        if column is None:
            _keep_unknown(job.spec, extra, name, value)
        else:
            typed[name] = _typed_value(job, where, column, value)
    problem = jsonb_problem(extra)
    if problem:
        job.fail(f"{where}: an unknown field {problem}")
    for name in job.known:
        typed.setdefault(name, None)
    missing = sorted(n for n in job.required if typed[n] is None)
    if missing:
        job.fail(f"{where}: missing key field(s) {', '.join(missing)}")
    typed[EXTRA_COLUMN] = extra
    return typed


def _keep_once(
    job: _Normalisation, where: str, by_key: dict[tuple[Any, ...], dict[str, Any]], row: dict[str, Any]
) -> None:
    """Add ``row`` unless its key is there already: identical rows collapse, differing ones fail."""
    key = tuple(row[k] for k in job.spec.key)
    seen = by_key.setdefault(key, row)
    if seen is not row and seen != row:
        named = dict(zip(job.spec.key, map(str, key), strict=True))
        job.fail(f"{where}: key {named} appears twice with different values")


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
    it out) and ``extra`` (a dict of the fields the registry does not know). The window
    [begin_date, end_date] is parsed by :meth:`DateRange.parse`; rows outside it are
    dropped with a warning (see the module doc). Raises :class:`BadPayloadError` naming account,
    endpoint and dates for a non-object row, a missing or null key field, or a value of
    the wrong type; :class:`SchemaDriftError` when the shape changed.
    """
    job = _Normalisation(spec, account, DateRange.parse(begin_date, end_date, account=account, endpoint=spec.name))
    if not isinstance(rows, (list, tuple)):
        job.fail(f"rows are a {type(rows).__name__}, not a list")
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for where, fields, inherited in _in_window(job, _flatten(spec, rows, job.fail)):
        _check_drift(spec, where, fields, job.fail)
        _keep_once(job, where, by_key, _typed_row(job, where, fields, inherited))
    return list(by_key.values())
