"""The dashboard's JSON responses, encoded in one pass.

FastAPI's ``jsonable_encoder`` walks the whole document in Python before ``json.dumps``
walks it again; for a year of one account's dashboard (B7 in docs/benchmarks.md) that
walk alone was 236 ms of a 300 ms budget, against 41 ms for ``json.dumps`` with a
``default`` for the few types the reports hold that JSON lacks. The output is the same
document ``jsonable_encoder`` + ``JSONResponse`` give (a test compares them).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import Any

from fastapi.responses import JSONResponse


def _non_json(value: Any) -> Any:
    """Dates as ISO text, decimals as int or float (as ``jsonable_encoder`` does), sets as lists."""
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value.as_tuple().exponent >= 0 else float(value)  # type: ignore[operator]
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"the dashboard cannot send a {type(value).__name__} as JSON")


def encode(content: Any) -> bytes:
    """``content`` as compact UTF-8 JSON; NaN and infinities are refused, as by ``JSONResponse``."""
    return json.dumps(content, default=_non_json, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


class DashboardJSONResponse(JSONResponse):
    """A ``JSONResponse`` that takes report data as it is (dates, decimals) and encodes it in one pass."""

    def render(self, content: Any) -> bytes:
        return encode(content)
