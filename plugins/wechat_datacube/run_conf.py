"""What a manual run asks for — endpoint names and dates — checked so that a wrong ask fails the run.

A run conf naming no endpoint the DAG loads (a typo, or a string where a list belongs,
which a template once split into its letters) used to skip every task and show the run as
a success: nothing loaded, nothing said. Here such an ask becomes a :class:`ConfigError`
that lists what is known and names the account, endpoint and dates where known.

Run time only (the operator's ``execute``, the backfill's plan task): the DAG files do not
import this module, so it costs their parse nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from wechat_datacube.dag_settings import BACKFILL_DAG_ID
from wechat_datacube.dates import DateRange
from wechat_datacube.endpoints import ENDPOINTS, FAMILIES, expand_endpoints
from wechat_datacube.errors import ConfigError, DateRangeError

#: Added to a bad range's message: where a daily DAG's manual dates come from.
CONF_DATES_HINT = "give begin_date and end_date, in order, as YYYY-MM-DD Beijing dates in the run's conf"


def _decoded(text: str) -> Any:
    """What a JSON text encodes (the daily DAG renders the conf value with ``tojson``), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def endpoint_names(value: Any, **context: Any) -> list[str]:
    """The names a run's ``endpoints`` holds: a list of names, or one name (comma-separated text: several).

    A string is a name, never a sequence of letters. Anything else (a number, an object,
    a list holding one) is refused rather than guessed.
    """
    if isinstance(value, str):
        value = _decoded(value)
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
        raise ConfigError(
            f"endpoints must be a list of endpoint names or one name, not {json.dumps(value, default=str)[:200]}",
            **context,
        )
    return [name for name in (item.strip() for item in items) if name]


def known_names() -> str:
    """Every name a run may ask for, for messages: the family keywords, then the endpoints."""
    return f"families {', '.join(FAMILIES)}; endpoints {', '.join(ENDPOINTS)}"


def expand_names(names: Sequence[str], **context: Any) -> tuple[str, ...]:
    """Endpoint names with the family keywords expanded, in order; an unknown name is a ConfigError."""
    unknown = [name for name in names if name not in FAMILIES and name not in ENDPOINTS]
    if unknown:
        raise ConfigError(
            f"unknown endpoint name(s) {', '.join(map(repr, unknown))} in the run's endpoints; known: {known_names()}",
            **context,
        )
    return expand_endpoints(list(names))


def _check_configured(names: Sequence[str], configured: Sequence[str], **context: Any) -> None:
    """Each name (an endpoint, or a family) must select at least one endpoint the DAG loads."""
    idle = [name for name in names if not set(FAMILIES.get(name, (name,))) & set(configured)]
    if idle:
        raise ConfigError(
            f"the run asks for {', '.join(map(repr, idle))}, which this account's DAG does not load "
            f"(it loads {', '.join(configured)}); change the run's endpoints or the accounts file",
            **context,
        )


def selected_endpoints(value: Any, configured: Sequence[str] | None = None, **context: Any) -> tuple[str, ...]:
    """The endpoints a daily run selects (empty: all), checked against the registry and ``configured``.

    ``configured``: the endpoints of the DAG (None: unknown, only the registry is checked).
    """
    names = endpoint_names(value, **context)
    wanted = expand_names(names, **context)
    if names and configured is not None:
        _check_configured(names, configured, **context)
    return wanted


def requested_dates(
    begin: Any, end: Any, *, max_days: int | None, account: str, endpoint: str
) -> DateRange | None:
    """The dates a run asked for (the operator's templated ``begin_date``/``end_date``), or None.

    None when neither is given: the run covers its data interval. One given alone is a
    one-day range. A bad range is a :class:`DateRangeError` naming the account, endpoint
    and dates, and saying where the dates come from; a range longer than ``max_days``
    (None: no limit) is refused by :func:`check_manual_window`.
    """
    if not (begin or end):
        return None
    try:
        dates = DateRange.parse(begin or end, end or begin, account=account, endpoint=endpoint)
    except DateRangeError as exc:  # the run's own dates, not WeChat's: a configuration error
        exc.reword(f"{exc.message}: {CONF_DATES_HINT}")
        raise
    if max_days is not None:
        check_manual_window(dates, max_days, account=account, endpoint=endpoint)
    return dates


def check_manual_window(dates: DateRange, max_days: int, **context: Any) -> None:
    """Refuse a manual range longer than ``max_days``: the daily DAG is no bulk loader.

    One task would fetch every window of the range in a row, with no resume after the
    daily quota and no progress to see; the backfill DAG batches, skips what is loaded and
    resumes.
    """
    if dates.days > max_days:
        raise ConfigError(
            f"a manual run of a daily DAG covers at most {max_days} days, and {dates} is {dates.days}: "
            f"trigger the backfill DAG {BACKFILL_DAG_ID} for longer ranges",
            **{"begin_date": dates.begin, "end_date": dates.end, **context},
        )
