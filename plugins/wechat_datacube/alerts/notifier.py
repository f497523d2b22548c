"""WeComRobotNotifier: alert events to a WeCom group robot, as an Airflow notifier.

Usable wherever Airflow takes a notifier (``on_failure_callback``, a DAG's callbacks, a
``DeadlineAlert``), and through :func:`send_events` by code that already holds events.
What is sent (:meth:`WeComRobotNotifier.notify`): the ``events`` given, else one event
for ``message``, else the event the pipeline builds from the task's context
(:func:`wechat_datacube.alerts.builders.event_from_context`).

How: with ``outbox_conn_id`` the events are committed to the Postgres outbox first and
delivered by whichever process holds the robot's lock (:mod:`.outbox`), so all workers
share one rate window and nothing is lost; if that database cannot be reached, or without
it, they go through this process's outbox (:mod:`.local_outbox`). A failed alert never
fails the task it reports on: nothing here raises; failures are logged, key scrubbed.

Imported when DAG files are parsed: module-level imports are stdlib, the Task SDK's
notifier and hook bases, the event contract and the hook (which imports ``requests`` only
when it sends).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.bases.notifier import BaseNotifier

from wechat_datacube.alerts.events import AlertEvent, custom_event
from wechat_datacube.alerts.wecom import WeComRobotHook, scrub_key

if TYPE_CHECKING:
    from wechat_datacube.alerts.delivery import FlushReport

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = "wecom_robot_default"


def _as_events(events: Sequence[AlertEvent | Mapping[str, Any]]) -> list[AlertEvent]:
    """Events, or their JSON form (what a DeadlineAlert's serialised kwargs can carry)."""
    return [e if isinstance(e, AlertEvent) else AlertEvent.from_json(e) for e in events]


def _scrub(hook: WeComRobotHook, text: str) -> str:
    """``text`` without the robot key: the hook's own key when it could read its connection."""
    try:
        return hook.scrub(text)
    except Exception:
        return scrub_key(text)


def _not_sent(count: int, error: str | None) -> dict[str, Any]:
    from wechat_datacube.alerts.delivery import FlushReport

    return {**FlushReport(failed=count, error=error).as_dict(), "via": None}


def _via_outbox(hook: WeComRobotHook, outbox_conn_id: str, events: list[AlertEvent]) -> FlushReport | None:
    """Commit the events to the outbox and flush it; None when the database cannot be reached or written."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from wechat_datacube.alerts import outbox

    try:
        conn = PostgresHook(postgres_conn_id=outbox_conn_id).get_conn()
    except Exception as exc:
        log.warning("alert outbox %r unreachable (%s); sending directly", outbox_conn_id, _scrub(hook, str(exc)))
        return None
    with contextlib.closing(conn):
        try:
            if events:
                outbox.enqueue(conn, hook.robot_id, events)
        except Exception as exc:
            log.warning("alert outbox %r not writable (%s); sending directly", outbox_conn_id, _scrub(hook, str(exc)))
            return None
        return outbox.flush(conn, hook.robot_id, hook.send_markdown)


def _via_process(hook: WeComRobotHook, events: list[AlertEvent]) -> FlushReport:
    from wechat_datacube.alerts.delivery import deliver
    from wechat_datacube.alerts.local_outbox import LOCAL_OUTBOX

    LOCAL_OUTBOX.enqueue(hook.robot_id, events)
    return deliver(LOCAL_OUTBOX, hook.robot_id, hook.send_markdown)


def send_events(
    events: Sequence[AlertEvent | Mapping[str, Any]],
    *,
    wecom_conn_id: str = DEFAULT_CONN_ID,
    outbox_conn_id: str | None = None,
) -> dict[str, Any]:
    """Deliver ``events`` to the robot of ``wecom_conn_id``; never raises.

    With an outbox and no events, sends what is still pending there (events an unreachable
    or rate-limiting robot left behind): every task of an account with alerts does so at
    its end, so such events go out with the next task, not only with the next alert.

    Returns the report: ``sent`` / ``failed`` / ``pending`` event counts, ``requests``
    made, ``waited`` seconds, ``busy`` (another process delivers them), ``stopped``,
    ``error`` (scrubbed) and ``via`` ("outbox", "process", or None when nothing could be
    tried). ``sent`` counts every event this call delivered, others' included.
    """
    try:
        batch = _as_events(events)
    except Exception as exc:
        log.warning("WeCom alert not sent: events unreadable: %s", exc)
        return _not_sent(len(events), f"events unreadable: {type(exc).__name__}")
    if not batch and not outbox_conn_id:
        return _not_sent(0, None)
    hook = WeComRobotHook(wecom_conn_id)
    try:
        hook.robot_id  # noqa: B018  reads and checks the connection before anything is stored
        report = _via_outbox(hook, outbox_conn_id, batch) if outbox_conn_id else None
        via = "outbox"
        if report is None:
            if not batch:  # only a flush of the outbox was asked for, and it cannot be reached
                return _not_sent(0, None)
            report, via = _via_process(hook, batch), "process"
    except Exception as exc:
        # A missing or broken connection, or a bug: the alert is lost, the task is not.
        text = _scrub(hook, str(exc))
        log.warning("WeCom alert (%d event(s)) via %r not sent: %s: %s", len(batch), wecom_conn_id,
                    type(exc).__name__, text)  # fmt: skip
        return _not_sent(len(batch), f"{type(exc).__name__}: {text}")
    result = {**report.as_dict(), "via": via}
    if report.pending or report.failed or report.error:
        log.warning("WeCom robot %s: %s", hook.robot_id, result)
    else:
        log.info("WeCom robot %s: %s", hook.robot_id, result)
    return result


class WeComRobotNotifier(BaseNotifier):
    """Send alert events to a WeCom group robot (connection type ``wecom_robot``).

    :param wecom_conn_id: the robot's connection.
    :param message: a message of your own (templated): sent as one ``custom`` event.
    :param events: events to send (or their JSON form); take precedence over ``message``.
    :param outbox_conn_id: a Postgres connection for the shared outbox (recommended with
        several workers: one rate window per robot for all of them, nothing lost while the
        robot is down). None: this process's outbox.
    """

    template_fields = ("message",)

    def __init__(
        self,
        *,
        wecom_conn_id: str = DEFAULT_CONN_ID,
        message: str | None = None,
        events: Sequence[AlertEvent | Mapping[str, Any]] = (),
        outbox_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.wecom_conn_id = wecom_conn_id
        self.message = message
        self.events = tuple(events)
        self.outbox_conn_id = outbox_conn_id
        #: The last :func:`send_events` report (for callers and tests).
        self.last_report: dict[str, Any] | None = None

    def _events(self, context: Any) -> list[AlertEvent]:
        if self.events:
            return _as_events(self.events)
        if self.message:
            return [custom_event(self.message)]
        from wechat_datacube.alerts.builders import event_from_context  # written by the pipeline side

        event = event_from_context(context)
        return [event] if event is not None else []

    def notify(self, context: Any) -> None:
        """Send; never raises (a failed alert must not fail the task it reports on)."""
        try:
            events = self._events(context)
        except Exception as exc:
            log.warning("WeCom alert not built: %s: %s", type(exc).__name__, scrub_key(str(exc)))
            self.last_report = _not_sent(0, f"event not built: {type(exc).__name__}")
            return
        self.last_report = send_events(events, wecom_conn_id=self.wecom_conn_id, outbox_conn_id=self.outbox_conn_id)

    async def async_notify(self, context: Any) -> None:
        """For the triggerer (deadline alerts): the same, in a worker thread."""
        await asyncio.to_thread(self.notify, context)
