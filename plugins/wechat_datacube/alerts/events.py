"""What an alert is about: one :class:`AlertEvent` per thing a data engineer must hear of.

The pipeline produces events where it learns something (a task that failed for good, a
45009, a stored day kept against a shorter answer, a day still unpublished at its
readiness deadline, a daily run late, the daily report); the notifiers turn them into
messages. Events are plain data — JSON-serialisable (:meth:`AlertEvent.as_json` /
:meth:`AlertEvent.from_json`) so the outbox can keep them until a robot may be called —
and carry no secret: every text field passes :func:`wechat_datacube.errors.redact_secrets`
when the event is built.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from wechat_datacube.errors import redact_secrets


class AlertKind(StrEnum):
    """The kinds of event; each has one message layout (``wechat_datacube.alerts.render``)."""

    #: A task failed for good (no retry left, or a permanent error).
    TASK_FAILED = "task_failed"
    #: WeChat's daily quota (45009) for an endpoint: nothing more until the reset.
    QUOTA_HIT = "quota_hit"
    #: WeChat changed a response's shape; nothing was written.
    SCHEMA_DRIFT = "schema_drift"
    #: A stored day kept its rows because the new answer would have shrunk it.
    DAY_KEPT = "day_kept"
    #: A day still not published by WeChat at its readiness deadline.
    NOT_PUBLISHED = "not_published"
    #: The daily run had not finished by the account's deadline hour (a DeadlineAlert).
    RUN_LATE = "run_late"
    #: The optional daily data report (headline figures and freshness).
    DAILY_REPORT = "daily_report"
    #: A message given by whoever configured a notifier by hand (``message=...``).
    CUSTOM = "custom"


#: How loud each kind is: WeCom markdown's font colours (warning = red/orange, info = green,
#: comment = grey). Failures and lost time are warnings; kept days and reports are not.
SEVERITY: Mapping[AlertKind, str] = {
    AlertKind.TASK_FAILED: "warning",
    AlertKind.QUOTA_HIT: "warning",
    AlertKind.SCHEMA_DRIFT: "warning",
    AlertKind.DAY_KEPT: "comment",
    AlertKind.NOT_PUBLISHED: "warning",
    AlertKind.RUN_LATE: "warning",
    AlertKind.DAILY_REPORT: "info",
    AlertKind.CUSTOM: "comment",
}


#: Alerts about a day or a run are only sent while they are news: a readiness or run deadline
#: missed longer ago than this belongs to a catchup or backfill of old days, which would
#: otherwise send one alert per old day at once.
ALERT_HORIZON = dt.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class AlertEvent:
    """One thing to report. ``headline`` is one line; ``details`` are markdown lines for the full message.

    ``account`` / ``endpoint`` / ``begin_date`` / ``end_date`` / ``errcode`` are also kept as
    fields so a coalesced message can list many events compactly and tests can check them.
    """

    kind: AlertKind
    headline: str
    account: str | None = None
    endpoint: str | None = None
    begin_date: str | None = None
    end_date: str | None = None
    errcode: int | None = None
    #: Markdown lines (``**label**: value``), in order, for a message about this event alone.
    details: tuple[str, ...] = ()
    #: The task log (or DAG run) in the Airflow UI, when there is one.
    link: str | None = None
    #: When it happened (UTC, ISO 8601).
    occurred_at: str = ""

    def __post_init__(self) -> None:
        # Redacted here, once, so nothing built later can carry a token or secret out.
        object.__setattr__(self, "kind", AlertKind(self.kind))
        object.__setattr__(self, "headline", redact_secrets(self.headline))
        object.__setattr__(self, "details", tuple(redact_secrets(line) for line in self.details))
        if self.link is not None:
            object.__setattr__(self, "link", redact_secrets(self.link))
        if not self.occurred_at:
            object.__setattr__(self, "occurred_at", dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))

    @property
    def dates(self) -> str | None:
        """``begin..end`` (one date when they are the same), or None."""
        if self.begin_date is None and self.end_date is None:
            return None
        if self.begin_date == self.end_date or self.end_date is None:
            return str(self.begin_date)
        return f"{self.begin_date}..{self.end_date}"

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["kind"] = self.kind.value
        data["details"] = list(self.details)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlertEvent:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["details"] = tuple(values.get("details") or ())
        return cls(**values)


def custom_event(message: str, *, account: str | None = None, details: Sequence[str] = ()) -> AlertEvent:
    """An event for a message written by hand (a notifier configured with ``message=...``)."""
    return AlertEvent(AlertKind.CUSTOM, headline=message, account=account, details=tuple(details))
