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

from wechat_datacube.dates import DateRange
from wechat_datacube.endpoints import EndpointSpec

#: Why a window is fetched: the dates the run asked for, or the trailing re-fetch of a
#: send date whose values have matured.
REQUESTED = "requested"
MATURED = "matured"


@dataclass(frozen=True)
class Window(DateRange):
    """A date range fetched with one call and written in one transaction, and why it is fetched.

    A :class:`DateRange` (days, iteration, begin <= end) that also says whether it is
    ``requested`` or the ``matured`` re-fetch.
    """

    reason: str = REQUESTED

    @classmethod
    def of(cls, dates: DateRange, reason: str = REQUESTED) -> Window:
        return cls(dates.begin, dates.end, reason)


def plan_windows(
    spec: EndpointSpec,
    dates: DateRange,
    *,
    refetch_matured: bool = False,
    active_from: dt.date | None = None,
    active_until: dt.date | None = None,
) -> list[Window]:
    """Windows for ``dates``, never before the endpoint's first date nor outside the
    account's active range for it; plus the matured re-fetch when asked for."""
    lower = max(spec.first_date, active_from) if active_from else spec.first_date
    servable = dates.clipped(lower, active_until)
    windows = [Window.of(w) for w in servable.windows(spec.max_span)] if servable else []
    if refetch_matured and spec.maturity_days > 1:
        matured = dates.end - dt.timedelta(days=spec.maturity_days - 1)
        covered = any(matured in w for w in windows)
        if not covered and DateRange(matured, matured).clipped(lower, active_until):
            windows.insert(0, Window(matured, matured, MATURED))
    return windows


def calls_needed(days: int, span: int) -> int:
    """API calls to cover ``days`` consecutive days with windows of ``span`` days."""
    return -(-days // span)
