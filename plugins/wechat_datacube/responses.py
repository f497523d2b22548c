"""What a datacube response body means, decided in one place (pure functions).

The hook reads every body through these rules, and storage applies the same ones to a
body handed to it directly, so the two can never disagree. This is the only place that
judges stray rows: the hook applies :func:`in_window` to the rows it returns, the row
normaliser (:mod:`wechat_datacube.storage.rows`) to the rows as they will be stored.

* a body without a ``list`` array is *malformed* (:class:`MalformedResponseError`, retried,
  raw body kept): it cannot be told apart from "no data", so it must never be stored as an
  empty day;
* rows dated outside the requested window are dropped (WeChat has returned stray rows,
  some years old; storing them would overwrite other windows) — but an answer whose rows
  *all* lie outside the window is malformed too, not an empty day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from wechat_datacube.endpoints import EndpointSpec
from wechat_datacube.errors import MalformedResponseError


def response_list(body: Any, **context: Any) -> list[Any]:
    """The ``list`` of a successful body, or MalformedResponseError (``context``: account, endpoint, dates)."""
    if not isinstance(body, Mapping):
        raise MalformedResponseError(
            f"response body is a {type(body).__name__}, not a JSON object", raw=body, **context
        )
    rows = body.get("list")
    if not isinstance(rows, list):
        what = "has no 'list' array" if rows is None else f"has a 'list' that is a {type(rows).__name__}"
        raise MalformedResponseError(f"response {what} (keys: {sorted(map(str, body))[:10]})", raw=body, **context)
    return rows


def row_date(spec: EndpointSpec, row: Any) -> dt.date | None:
    """The date that places a row in a window, or None when it has no parsable one.

    Surrounding blanks are ignored, as the column typing ignores them: a row that storage
    would type as a date outside the window is judged a stray here, never stored.
    """
    value = row.get(spec.date_column) if isinstance(row, Mapping) else None
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        return None


def in_window(
    spec: EndpointSpec, rows: list[Any], begin: dt.date, end: dt.date, **context: Any
) -> tuple[list[Any], list[dt.date]]:
    """(rows dated inside [begin, end], dates of the rows dropped as outside it).

    Rows without a parsable date are kept: normalisation rejects them with a clear error
    instead of this rule hiding a broken payload. Raises MalformedResponseError when the
    answer had rows and every one of them lies outside the window.
    """
    kept: list[Any] = []
    stray: list[dt.date] = []
    for row in rows:
        day = row_date(spec, row)
        if day is not None and not begin <= day <= end:
            stray.append(day)
        else:
            kept.append(row)
    if rows and not kept:
        raise MalformedResponseError(
            f"all {len(rows)} row(s) are dated outside the requested window (e.g. {min(stray)}): "
            "an answer for other dates is not an empty day",
            raw={"list": rows},
            **context,
        )
    return kept, stray
