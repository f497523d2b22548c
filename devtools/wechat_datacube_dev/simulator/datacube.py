"""The datacube endpoints' rules: date checks, the data-ready hour and the response body.

Dates before the endpoint's first date contribute no rows; a day D is published only
once the simulated Beijing clock reaches D+1 at ``ready_hour``:00. Until then it adds no
rows, and the replacement endpoints say ``"is_delay": true``. A week/month endpoint's
label date adds rows only once its whole period is published (:func:`.rows.rows_for_day`).
getusersummary asked for the newest published day alone answers ``[]`` (a community
report; ``SimulatorConfig.newest_alone_empty`` turns it off).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from wechat_datacube_dev.simulator.clock import BEIJING
from wechat_datacube_dev.simulator.config import SimulatorConfig
from wechat_datacube_dev.simulator.facts import EndpointFacts
from wechat_datacube_dev.simulator.rows import rows_for_day
from wechat_datacube_dev.simulator.wire import ApiError

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def last_ready_day(now: dt.datetime, ready_hour: int) -> dt.date:
    """The newest ref_date whose data is published at ``now``."""
    beijing = now.astimezone(BEIJING)
    lag = 1 if beijing.hour >= ready_hour else 2
    return beijing.date() - dt.timedelta(days=lag)


def _parse(value: Any, what: str) -> dt.date:
    if not isinstance(value, str) or not _DATE.match(value):
        raise ApiError(61500, f"{what} must be YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ApiError(61500, f"{what} is not a calendar date") from None


def parse_range(facts: EndpointFacts, body: Any, now: dt.datetime) -> tuple[dt.date, dt.date]:
    """Check a request body the way WeChat does: 61500 for format, 61501 for the range."""
    if not isinstance(body, dict):
        raise ApiError(47001)
    begin = _parse(body.get("begin_date"), "begin_date")
    end = _parse(body.get("end_date"), "end_date")
    if begin > end:
        raise ApiError(61501, "begin_date is after end_date")
    if (end - begin).days + 1 > facts.max_span:
        raise ApiError(61501, f"span exceeds {facts.max_span} day(s)")
    if end >= now.astimezone(BEIJING).date():
        raise ApiError(61501, "end_date must be before today")
    return begin, end


def answer(
    facts: EndpointFacts, config: SimulatorConfig, appid: str, begin: dt.date, end: dt.date, now: dt.datetime
) -> dict[str, Any]:
    """The success body for a checked range at time ``now``.

    ``is_delay`` is true only for unpublished days: a published quiet day is an empty
    list that is final, as WeChat's note on the replacement family says.
    """
    last_ready = last_ready_day(now, config.ready_hour)
    hide_lone_newest = facts.newest_alone_empty and config.newest_alone_empty and begin == end == last_ready
    rows: list[dict[str, Any]] = []
    delayed = False
    for day in (begin + dt.timedelta(days=n) for n in range((end - begin).days + 1)):
        if day < facts.first_date or hide_lone_newest:
            continue
        if day > last_ready:
            delayed = True
            continue
        rows.extend(rows_for_day(facts.name, config.seed, appid, day, last_ready, config.quiet_day_rate))
    body: dict[str, Any] = {"list": rows}
    if facts.is_delay:
        body["is_delay"] = delayed
    return body
