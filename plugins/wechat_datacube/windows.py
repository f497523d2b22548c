"""Which date windows a task asks WeChat for — pure functions, no I/O.

A daily run of business date D asks for D; for endpoints whose values keep maturing
(getarticletotal: 7 days, getarticletotaldetail: 30) it also re-asks for the send date
whose maturity window has just completed, so every article ends up stored with its full
cumulative series at the cost of one extra call per day. Explicit ranges (manual runs,
bulk backfill) are split into windows of the endpoint's max span.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from wechat_datacube.dates import chunk_range
from wechat_datacube.endpoints import EndpointSpec


@dataclass(frozen=True)
class Window:
    """An inclusive range of ref_dates fetched with one call and written in one transaction."""

    begin: dt.date
    end: dt.date
    #: Why it is fetched: "requested" or "matured" (the trailing re-fetch).
    reason: str = "requested"

    @property
    def days(self) -> int:
        return (self.end - self.begin).days + 1


def clip(
    begin: dt.date, end: dt.date, *, lower: dt.date | None, upper: dt.date | None
) -> tuple[dt.date, dt.date] | None:
    """Intersect [begin, end] with [lower, upper]; None when nothing is left."""
    b = max(begin, lower) if lower else begin
    e = min(end, upper) if upper else end
    return (b, e) if b <= e else None


def plan_windows(
    spec: EndpointSpec,
    begin: dt.date,
    end: dt.date,
    *,
    refetch_matured: bool = False,
    active_from: dt.date | None = None,
    active_until: dt.date | None = None,
) -> list[Window]:
    """Windows for [begin, end], never before the endpoint's first date nor outside the
    account's active range for it; plus the matured re-fetch when asked for."""
    lower = max(spec.first_date, active_from) if active_from else spec.first_date
    windows: list[Window] = []
    clipped = clip(begin, end, lower=lower, upper=active_until)
    if clipped:
        windows.extend(Window(b, e) for b, e in chunk_range(*clipped, spec.max_span))
    if refetch_matured and spec.maturity_days > 1:
        matured = end - dt.timedelta(days=spec.maturity_days - 1)
        covered = any(w.begin <= matured <= w.end for w in windows)
        if not covered and clip(matured, matured, lower=lower, upper=active_until):
            windows.insert(0, Window(matured, matured, reason="matured"))
    return windows


def calls_needed(days: int, span: int) -> int:
    """API calls to cover ``days`` consecutive days with windows of ``span`` days."""
    return -(-days // span)
