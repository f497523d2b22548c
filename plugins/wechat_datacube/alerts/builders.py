"""Events from what the pipeline knows: a failed task's context, a 45009, a kept day, a late day or run.

One builder per kind of event, so every message of a kind says the same things in the same
order; the errcode lines come from :mod:`wechat_datacube.errors` (the table the README's
errcode section is generated from), so an alert and the README never disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from wechat_datacube.alerts.events import AlertEvent, AlertKind
from wechat_datacube.dates import beijing_clock, business_date
from wechat_datacube.errors import (
    CLASS_BEHAVIOUR,
    QuotaExceededError,
    SchemaDriftError,
    WeChatDatacubeError,
    classify,
    describe_errcode,
)


def beijing_time(moment: dt.datetime | str | None) -> str:
    """``2026-06-20 12:00 (Beijing)``: how a message states a moment."""
    return "?" if moment is None else f"{beijing_clock(moment)} (Beijing)"


def errcode_lines(errcode: int | None) -> list[str]:
    """What the errcode means, what the pipeline did about it and what to do: the README's table, as lines."""
    if errcode is None:
        return []
    return [
        f"**errcode**: {describe_errcode(errcode)}",
        f"**the pipeline**: {CLASS_BEHAVIOUR[classify(errcode)]}",
    ]


def _dates_of_task(task: Any, context: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The dates a task was loading: its explicit window, else the run's Beijing business date."""
    begin, end = getattr(task, "date_from", None), getattr(task, "date_to", None)
    if begin or end:
        return (str(begin) if begin else None), (str(end or begin))
    day = business_date(context)
    return (None, None) if day is None else (day.isoformat(), day.isoformat())


def _log_link(context: Mapping[str, Any]) -> str | None:
    ti = context.get("ti")
    try:
        return getattr(ti, "log_url", None)
    except Exception:  # noqa: BLE001 - a link is a convenience: a message goes out without it
        return None


def event_from_context(context: Mapping[str, Any]) -> AlertEvent:
    """The event of a task that failed for good, from its callback context (``context["exception"]``).

    A :class:`~wechat_datacube.errors.SchemaDriftError` is its own kind (it asks for a code
    change, not a config fix); every other failure says what failed, the errcode with its
    meaning and what to do, and links the task log.
    """
    task = context.get("task")
    ti = context.get("ti")
    error = context.get("exception")
    account = getattr(task, "account", None)
    endpoint = getattr(task, "endpoint", None) or getattr(ti, "task_id", None)
    begin, end = _dates_of_task(task, context)
    errcode = None
    if isinstance(error, WeChatDatacubeError):
        account = error.account or account
        endpoint = error.endpoint or endpoint
        begin, end = error.begin_date or begin, error.end_date or end
        errcode = error.errcode
    where = [f"**DAG**: {getattr(ti, 'dag_id', '?')} · run {getattr(ti, 'run_id', '?')}"]
    try_number = getattr(ti, "try_number", None)
    if try_number:
        where.append(f"**try**: {try_number}")
    message = _error_text(error)
    if isinstance(error, SchemaDriftError):
        details = [
            f"**missing**: {', '.join(error.missing) or '-'}",
            f"**unknown**: {', '.join(error.unknown) or '-'}",
            "**what to do**: nothing was written and the raw answer is in `api_response`; "
            "update the registry (`endpoints.py`) for the new shape, then re-run the day",
            *where,
        ]
        return AlertEvent(AlertKind.SCHEMA_DRIFT, headline=f"WeChat changed the shape of {endpoint}",
                          account=account, endpoint=endpoint, begin_date=begin, end_date=end, details=tuple(details),
                          link=_log_link(context))
    details = [*errcode_lines(errcode), *_error_lines(error, message), *where]
    return AlertEvent(AlertKind.TASK_FAILED, headline=f"{endpoint} failed for good", account=account,
                      endpoint=endpoint, begin_date=begin, end_date=end, errcode=errcode, details=tuple(details),
                      link=_log_link(context))


def _error_lines(error: BaseException | None, message: str) -> list[str]:
    """WeChat's own errmsg for an errcode failure (its meaning is already said); the message otherwise."""
    if isinstance(error, WeChatDatacubeError) and error.errcode is not None:
        return [f"**WeChat said**: {error.errmsg}"] if error.errmsg else []
    return [f"**error**: {message}"]


def _error_text(error: BaseException | str | None, most: int = 600) -> str:
    if error is None:
        return "no exception recorded (killed, timed out or marked failed by hand?)"
    if isinstance(error, WeChatDatacubeError):
        text = error.message
    else:
        text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    return text if len(text) <= most else text[: most - 1] + "…"


def quota_event(error: QuotaExceededError, *, backfill: bool, stored: int, planned: int) -> AlertEvent:
    """WeChat's daily quota (45009) for one endpoint: when it resets and what stopped."""
    then = (
        f"the backfill stopped on it after {stored} of {planned} window(s): trigger it again after the reset "
        "and it resumes where it stopped"
        if backfill
        else "the task waits and retries after the reset"
    )
    return AlertEvent(
        AlertKind.QUOTA_HIT, headline=f"daily quota (45009) spent for {error.endpoint}", account=error.account,
        endpoint=error.endpoint, begin_date=error.begin_date, end_date=error.end_date, errcode=45009,
        details=(f"**resets at**: {beijing_time(error.reset_at)}", f"**then**: {then}", *errcode_lines(45009)[:1]),
    )


def kept_event(*, account: str, endpoint: str, days: Sequence[dt.date], reasons: Sequence[str]) -> AlertEvent:
    """Stored days kept their rows because the new answer would have shrunk them (never-shrink)."""
    first, last = min(days), max(days)
    lines = [f"**{day}**: {reason}" for day, reason in zip(days, reasons, strict=True)][:10]
    if len(days) > 10:
        lines.append(f"… and {len(days) - 10} more day(s)")
    return AlertEvent(
        AlertKind.DAY_KEPT, headline=f"{endpoint}: kept the stored rows of {len(days)} day(s)", account=account,
        endpoint=endpoint, begin_date=first.isoformat(), end_date=last.isoformat(),
        details=(*lines, "**what to do**: nothing was lost; to take the shorter answer on purpose, re-run the "
                 "day with `replace_shrinking: true` in the run conf"),
    )


def not_published_event(*, account: str, endpoint: str, days: Sequence[dt.date], deadline: dt.datetime,
                        is_delay: bool) -> AlertEvent:
    """Days WeChat had still not published at their readiness deadline; stored as empty."""
    why = "WeChat still flags the answer `is_delay`" if is_delay else "WeChat still answers with no rows"
    return AlertEvent(
        AlertKind.NOT_PUBLISHED, headline=f"{endpoint}: no data at the readiness deadline", account=account,
        endpoint=endpoint, begin_date=min(days).isoformat(), end_date=max(days).isoformat(),
        details=(f"**deadline**: {beijing_time(deadline)}", f"**answer**: {why}",
                 "**what happened**: the day is stored as `empty`; if WeChat publishes it later, re-run the day "
                 "(or raise `ready_deadline_hour` in the accounts file)"),
    )


def run_late_event(*, account: str, dag_run: Mapping[str, Any], deadline: Any, business_date: str | None,
                   link: str | None = None) -> AlertEvent:
    """A daily run not finished by the account's deadline hour (the DeadlineAlert callback)."""
    state = dag_run.get("state") or "?"
    return AlertEvent(
        AlertKind.RUN_LATE, headline=f"daily run of {business_date or '?'} not finished by {beijing_time(deadline)}",
        account=account, begin_date=business_date, end_date=business_date,
        details=(f"**DAG**: {dag_run.get('dag_id', '?')} · run {dag_run.get('dag_run_id') or dag_run.get('run_id', '?')}",
                 f"**state**: {state}",
                 "**what to do**: open the run: tasks waiting in *up_for_retry* say why (not ready, quota, "
                 "WeChat busy); a full `wechat_api` pool or a stopped scheduler shows as *scheduled*/*queued*"),
        link=link,
    )
