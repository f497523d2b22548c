"""Data freshness per endpoint, from ``load_log``: what is there, what is not, and why.

Pure functions over rows already read (:mod:`.queries`), so the rules are testable
without a database. For each endpoint the account pulls, over the requested range:

* ``last_loaded`` — the newest day with rows (over all time, not just the range);
* ``empty_days`` — WeChat answered, with nothing (final);
* ``not_ready_days`` / ``failed_days`` — tried, no data yet (the pipeline retries them);
* ``gaps`` — runs of days the endpoint should have (within the account's start date, the
  endpoint's first date, its cutover range, and up to yesterday in Beijing; for a week or
  month endpoint only the Mondays / 1sts of periods over by then) with no load_log entry at
  all: never fetched.

``calendar`` gives every day of the range its state for the freshness chart; days the
endpoint is not expected to have are ``n/a``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from wechat_datacube.accounts import AccountConfig
from wechat_datacube.dates import DateRange
from wechat_datacube.endpoints import get_endpoint
from wechat_datacube.load_status import LoadStatus
from wechat_datacube.periods import labels_ending_between

#: A calendar day's state besides the load states: expected but never fetched / not expected.
MISSING = "missing"
NOT_EXPECTED = "n/a"


def expected_range(account: AccountConfig, endpoint: str, dates: DateRange, yesterday: dt.date) -> DateRange | None:
    """The part of ``dates`` for which ``endpoint`` should have a state (None: no day of it)."""
    spec = get_endpoint(endpoint)
    active_from, active_until = account.active_range(endpoint)
    first = max(d for d in (account.start_date, spec.first_date, active_from) if d is not None)
    last = min(d for d in (yesterday, active_until) if d is not None)
    return dates.clipped(first, last)


def expected_days(endpoint: str, expected: DateRange | None) -> set[dt.date]:
    """The days that should have a load state: every day of ``expected``, or for a week or
    month endpoint the labels (Mondays, 1sts) of the periods that end in it; a label's other
    days never carry rows and are not expected (see :mod:`wechat_datacube.periods`)."""
    if expected is None:
        return set()
    return set(labels_ending_between(expected.begin, expected.end, get_endpoint(endpoint).period))


def runs(days: Iterable[dt.date]) -> list[dict[str, Any]]:
    """Consecutive days grouped into inclusive ranges: [{from, to, days}]."""
    out: list[dict[str, Any]] = []
    for day in sorted(days):
        if out and out[-1]["to"] + dt.timedelta(days=1) == day:
            out[-1]["to"] = day
            out[-1]["days"] += 1
        else:
            out.append({"from": day, "to": day, "days": 1})
    return out


def _calendar(dates: DateRange, states: Mapping[dt.date, str], expected: set[dt.date]) -> list[dict[str, Any]]:
    """Every day of ``dates`` with its state: the load_log's, else missing (expected) or n/a."""
    return [
        {"ref_date": day, "status": states.get(day) or (MISSING if day in expected else NOT_EXPECTED)}
        for day in dates
    ]


def _report(
    endpoint: str, calendar: list[dict[str, Any]], expected: DateRange | None, last: Mapping[str, Any]
) -> dict[str, Any]:
    """One endpoint's freshness report from its calendar and its all-time latest days (see the module doc)."""

    def days_with(status: str) -> list[dt.date]:
        return [c["ref_date"] for c in calendar if c["status"] == status]

    return {
        "endpoint": endpoint,
        "table": get_endpoint(endpoint).table,
        "expected_from": expected.begin if expected else None,
        "expected_to": expected.end if expected else None,
        "last_loaded": last.get("last_loaded"),
        "last_final": last.get("last_final"),
        "last_updated_at": last.get("last_updated_at"),
        "loaded_days": len(days_with(LoadStatus.LOADED)),
        "empty_days": days_with(LoadStatus.EMPTY),
        "not_ready_days": days_with(LoadStatus.NOT_READY),
        "failed_days": days_with(LoadStatus.FAILED),
        "gaps": runs(days_with(MISSING)),
        "calendar": calendar,
    }


def endpoint_freshness(
    account: AccountConfig,
    dates: DateRange,
    log_rows: list[dict[str, Any]],
    latest: dict[str, dict[str, Any]],
    yesterday: dt.date,
) -> list[dict[str, Any]]:
    """One freshness report per endpoint of ``account`` over ``dates`` (see the module doc)."""
    by_endpoint: dict[str, dict[dt.date, str]] = {}
    for row in log_rows:
        by_endpoint.setdefault(row["endpoint"], {})[row["ref_date"]] = row["status"]
    reports = []
    for endpoint in account.endpoints:
        expected = expected_range(account, endpoint, dates, yesterday)
        calendar = _calendar(dates, by_endpoint.get(endpoint, {}), expected_days(endpoint, expected))
        reports.append(_report(endpoint, calendar, expected, latest.get(endpoint, {})))
    return reports
