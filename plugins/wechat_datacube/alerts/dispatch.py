"""Where an account's alerts go, and the one function that sends events there.

An account's targets are plain data (:class:`AlertTargets`: JSON-serialisable, so the
backfill plan can hand them to its mapped tasks through XCom): the WeCom robots named by
``alert_conn_ids`` in the accounts file, any other Airflow notifier named by
``alert_notifiers`` (Slack, SMTP, ...: a dotted class path, the keyword its message goes in,
and its own keyword arguments), and the Postgres connection whose ``wechat_alerts`` outbox
coordinates the robots' rate limit across workers.

:func:`deliver` never raises: an alert that cannot be sent is logged (without secrets) and
the task it reports on carries on as if nothing happened.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from wechat_datacube.alerts.events import AlertEvent
from wechat_datacube.alerts.targets import AlertTargets, NotifierSpec
from wechat_datacube.errors import redact_secrets

__all__ = ["AlertTargets", "NotifierSpec", "deliver"]

log = logging.getLogger(__name__)


def _other_notifier(spec: NotifierSpec, text: str, context: Mapping[str, Any]) -> None:
    """Build and call one configured notifier. ``notify`` directly: the text is not a Jinja template."""
    from airflow.sdk._shared.module_loading import import_string

    cls = import_string(spec.notifier)
    notifier = cls(**{**dict(spec.kwargs), spec.message_field: text})
    notifier.notify(dict(context))


def deliver(events: Sequence[AlertEvent], targets: AlertTargets | Mapping[str, Any] | None,
            context: Mapping[str, Any] | None = None) -> None:
    """Send ``events`` to every target; never raises (a failed alert must not fail the task).

    With no events, the robots' outbox is still flushed: what an unreachable robot left
    pending goes out now.
    """
    targets = AlertTargets.from_json(targets)
    for robot in targets.robots:  # with no events: a flush of what the outbox still holds (see send_events)
        try:
            from wechat_datacube.alerts.notifier import send_events

            send_events(list(events), wecom_conn_id=robot, outbox_conn_id=targets.outbox_conn_id)
        except Exception as exc:  # noqa: BLE001 - any failure of an alert is logged, never raised
            log.warning("alert to WeCom robot %s not sent: %s", robot, redact_secrets(f"{type(exc).__name__}: {exc}"))
    for spec in targets.notifiers if events else ():
        try:
            _other_notifier(spec, _text(events), context or {})
        except Exception as exc:  # noqa: BLE001 - as above
            log.warning("alert to notifier %s not sent: %s", spec.notifier,
                        redact_secrets(f"{type(exc).__name__}: {exc}"))


def _text(events: Sequence[AlertEvent]) -> str:
    """One message for other channels: an event's full text, or a digest of several."""
    from wechat_datacube.alerts.render import render_digest, render_event

    return render_event(events[0]) if len(events) == 1 else render_digest(list(events))
