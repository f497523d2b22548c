"""Which date windows a task asks WeChat for — pure functions, no I/O.

A daily run of business date D asks for D; for endpoints whose values keep maturing
(getarticletotal: 7 days, getarticletotaldetail: 30) it also re-asks for the send date
whose maturity window has just completed, so every article ends up stored with its full
cumulative series at the cost of one extra call per day. Explicit ranges (manual runs,
bulk backfill) are split into windows of the endpoint's max span.

Week and month endpoints (:mod:`wechat_datacube.periods`) ask, for business dates
[B, E], for the labels (Mondays, 1sts) of the periods that *end* in [B, E]: the run of a
Sunday fetches its week, the other six daily runs have nothing to fetch and skip. Their
windows run from a label to a label, so a window may hold days that carry no rows.

An endpoint with ``lookback_days`` (getusersummary) asks for a one-day range together with
the day before it, in the same call; a longer range is cut into windows from its end, so
its newest day is never asked for alone either.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from wechat_datacube.dates import DateRange
from wechat_datacube.endpoints import EndpointSpec
from wechat_datacube.periods import is_label, labels_ending_between, last_day

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
    #: The last business date the window answers for, when that is after ``end``: the last
    #: day of the week or month labelled ``end`` (``None``: ``end`` itself).
    through: dt.date | None = None

    @classmethod
    def of(cls, dates: DateRange, reason: str = REQUESTED) -> Window:
        return cls(dates.begin, dates.end, reason)

    @property
    def last_day(self) -> dt.date:
        """The newest business date this window's answer covers (readiness waits for it)."""
        return self.through or self.end


def labels(spec: EndpointSpec, window: DateRange) -> list[dt.date]:
    """The days of ``window`` that can carry rows of ``spec`` (every day, or its Mondays / 1sts)."""
    return [day for day in window if is_label(day, spec.period)]


def label_window(spec: EndpointSpec, label: dt.date, reason: str = REQUESTED) -> Window:
    """The one-label window of ``label``: one day, or one week / month asked for by its label."""
    stop = last_day(label, spec.period)
    return Window(label, label, reason, stop if stop != label else None)


def _period_windows(spec: EndpointSpec, servable: DateRange, lower: dt.date) -> list[Window]:
    """Windows of labels whose period ends in ``servable``: as many labels per call as the span holds."""
    found = [label for label in labels_ending_between(servable.begin, servable.end, spec.period) if label >= lower]
    windows: list[Window] = []
    for label in found:
        last = windows[-1] if windows else None
        if last is not None and (label - last.begin).days < spec.max_span:
            windows[-1] = Window(last.begin, label, REQUESTED, label_window(spec, label).through)
        else:
            windows.append(label_window(spec, label))
    return windows


def _day_windows(spec: EndpointSpec, servable: DateRange, lower: dt.date) -> list[Window]:
    """Windows of at most the span; with a lookback, widened or cut from the end (module docstring)."""
    if not spec.lookback_days:
        return [Window.of(w) for w in servable.windows(spec.max_span)]
    if servable.days <= spec.lookback_days:
        begin = max(lower, servable.end - dt.timedelta(days=spec.lookback_days))
        return [Window(min(begin, servable.begin), servable.end)]
    windows = []
    end = servable.end
    while end >= servable.begin:
        begin = max(servable.begin, end - dt.timedelta(days=spec.max_span - 1))
        windows.append(Window(begin, end))
        end = begin - dt.timedelta(days=1)
    return windows[::-1]


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
    if servable is None:
        windows: list[Window] = []
    elif spec.period == "day":
        windows = _day_windows(spec, servable, lower)
    else:
        windows = _period_windows(spec, servable, lower)
    if refetch_matured and spec.maturity_days > 1:
        matured = dates.end - dt.timedelta(days=spec.maturity_days - 1)
        covered = any(matured in w for w in windows)
        if not covered and DateRange(matured, matured).clipped(lower, active_until):
            windows.insert(0, Window(matured, matured, MATURED))
    return windows


def calls_needed(days: int, span: int) -> int:
    """API calls to cover ``days`` consecutive days with windows of ``span`` days."""
    return -(-days // span)
