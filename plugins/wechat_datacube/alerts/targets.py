"""Where an account's alerts go: plain data, read from the accounts file at every DAG parse.

Apart from :mod:`.dispatch` (which sends) so that parsing the accounts file imports no more
than these two small NamedTuples: the event classes and the senders are imported only by
the tasks and callbacks that send something (bench/parse_time.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple


class NotifierSpec(NamedTuple):
    """Another Airflow notifier: ``notifier(**kwargs, **{message_field: text}).notify(context)``."""

    #: Dotted path of a BaseNotifier subclass, e.g.
    #: ``airflow.providers.slack.notifications.slack_webhook.SlackWebhookNotifier``.
    notifier: str
    #: The keyword argument that carries the message text (Slack: ``text``; SMTP: ``html_content``).
    message_field: str = "text"
    #: Its other keyword arguments (connection ids, channel...): never secrets, only references to them.
    kwargs: Mapping[str, Any] = {}


class AlertTargets(NamedTuple):
    """Everything an account's alerts need; empty (the default) sends nothing."""

    robots: tuple[str, ...] = ()
    notifiers: tuple[NotifierSpec, ...] = ()
    #: Postgres connection of the account's data database (the outbox lives there); None: send directly.
    outbox_conn_id: str | None = None

    def __bool__(self) -> bool:
        return bool(self.robots or self.notifiers)

    def as_json(self) -> dict[str, Any]:
        return {
            "robots": list(self.robots),
            "notifiers": [{"notifier": n.notifier, "message_field": n.message_field, "kwargs": dict(n.kwargs)}
                          for n in self.notifiers],
            "outbox_conn_id": self.outbox_conn_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | AlertTargets | None) -> AlertTargets:
        if data is None:
            return cls()
        if isinstance(data, AlertTargets):
            return data
        return cls(
            robots=tuple(data.get("robots") or ()),
            notifiers=tuple(NotifierSpec(**n) for n in data.get("notifiers") or ()),
            outbox_conn_id=data.get("outbox_conn_id"),
        )
