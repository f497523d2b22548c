"""Data freshness per endpoint, from ``load_log``: what is there, what is not, and why.

Pure functions over rows already read (:mod:`.queries`), so the rules are testable
without a database. For each endpoint the account pulls, over the requested range:

* ``last_loaded`` — the newest day with rows (over all time, not just the range);
* ``empty_days`` — WeChat answered, with nothing (final);
* ``not_ready_days`` / ``failed_days`` — tried, no data yet (the pipeline retries them);
* ``gaps`` — runs of days the endpoint should have (within the account's start date, the
  endpoint's first date, its cutover range, and up to yesterday in Beijing) with no
  load_log entry at all: never fetched.

``calendar`` gives every day of the range its state for the freshness chart; days the
endpoint is not expected to have are ``n/a``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from wechat_datacube.accounts import AccountConfig
from wechat_datacube.dates import iter_days
from wechat_datacube.endpoints import get_endpoint

MISSING = "missing"
NOT_EXPECTED = "n/a"


def expected_range(
    account: AccountConfig, endpoint: str, begin: dt.date, end: dt.date, yesterday: dt.date
) -> tuple[dt.date, dt.date]:
    """The part of [begin, end] for which ``endpoint`` should have a state (may be empty: lo > hi)."""
    spec = get_endpoint(endpoint)
    active_from, active_until = account.active_range(endpoint)
    lo = max(d for d in (begin, account.start_date, spec.first_date, active_from) if d is not None)
    hi = min(d for d in (end, yesterday, active_until) if d is not None)
    return lo, hi


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


def endpoint_freshness(
    account: AccountConfig,
    begin: dt.date,
    end: dt.date,
    log_rows: list[dict[str, Any]],
    latest: dict[str, dict[str, Any]],
    yesterday: dt.date,
) -> list[dict[str, Any]]:
    """One freshness report per endpoint of ``account`` (see the module doc)."""
    by_endpoint: dict[str, dict[dt.date, str]] = {}
    for row in log_rows:
        by_endpoint.setdefault(row["endpoint"], {})[row["ref_date"]] = row["status"]
    reports = []
    for endpoint in account.endpoints:
        states = by_endpoint.get(endpoint, {})
        lo, hi = expected_range(account, endpoint, begin, end, yesterday)
        calendar = []
        for day in iter_days(begin, end):
            status = states.get(day) or (MISSING if lo <= day <= hi else NOT_EXPECTED)
            calendar.append({"ref_date": day, "status": status})
        last = latest.get(endpoint, {})

        def days_with(status: str, _calendar: list[dict[str, Any]] = calendar) -> list[dt.date]:
            return [c["ref_date"] for c in _calendar if c["status"] == status]

        reports.append(
            {
                "endpoint": endpoint,
                "table": get_endpoint(endpoint).table,
                "expected_from": lo if lo <= hi else None,
                "expected_to": hi if lo <= hi else None,
                "last_loaded": last.get("last_loaded"),
                "last_final": last.get("last_final"),
                "last_updated_at": last.get("last_updated_at"),
                "loaded_days": len(days_with("loaded")),
                "empty_days": days_with("empty"),
                "not_ready_days": days_with("not_ready"),
                "failed_days": days_with("failed"),
                "gaps": runs(days_with(MISSING)),
                "calendar": calendar,
            }
        )
    return reports
