"""The delivery loop: pending events out to one robot, within its 20-a-minute window, nothing lost.

Written once over a :class:`Store` (where events wait, which requests were made, a lock
per robot): :mod:`.outbox` keeps them in Postgres for every process and worker,
:mod:`.local_outbox` in this process when there is no database. :func:`deliver`:

* **One sender per robot.** The store's lock is tried, never waited for: a caller that
  finds it taken returns at once, its events already stored. The holder keeps sending
  while events are pending, and after releasing the lock checks once more and starts
  again if one arrived while it was finishing — so no event is left behind by the race
  between "nothing left" and "unlock".
* **The window.** Every request (failed ones too) is recorded. When sending the pending
  groups now would leave no slot of the last ``window`` free, the sender keeps that slot
  for a digest: it waits until enough requests leave the window, packs everything
  pending by then (a burst keeps arriving meanwhile) and sends it. A burst of 50 events
  inside a minute thus costs at most 20 requests and loses nothing.
* **Failures.** 45009 (:class:`~.wecom.RobotRateLimited`): stop, the events stay pending
  for the next flush. Robot unreachable (:class:`~.wecom.RobotUnavailable`): each event's
  attempts + 1, failed after ``max_attempts``; stop. Refused
  (:class:`~.wecom.RobotRejected`): that message's events are failed; go on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any, Protocol

from wechat_datacube.alerts.events import AlertEvent
from wechat_datacube.alerts.render import MAX_BYTES, pack, render_group
from wechat_datacube.alerts.wecom import RobotRateLimited, RobotRejected, RobotUnavailable, scrub_key

log = logging.getLogger(__name__)

#: A WeCom group robot takes about 20 messages a minute (errcode 45009 beyond).
ROBOT_LIMIT = 20
ROBOT_WINDOW = dt.timedelta(seconds=60)
#: Unreachable-robot attempts before an event is given up (marked failed).
MAX_ATTEMPTS = 5
#: Pending events read per round: bounds memory and the packing work.
BATCH = 200
#: How long one caller keeps sending for others before leaving the rest to the next flush.
MAX_SECONDS = 300.0
#: Added to computed waits so a request has surely left the window when we look again.
_MARGIN = 0.05

Send = Callable[[str], Any]


class Outcome(StrEnum):
    SENT = "sent"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    REJECTED = "rejected"


@dataclasses.dataclass(frozen=True)
class Pending:
    """An event waiting for the robot: its store id and the unreachable-robot attempts so far."""

    id: int
    event: AlertEvent
    attempts: int = 0


class Store(Protocol):
    """Where events wait for one robot and the robot's requests are counted."""

    def try_lock(self, robot_id: str) -> bool:
        """Become the one sender for ``robot_id``; False at once if another holds it."""

    def unlock(self, robot_id: str) -> None: ...

    def now(self) -> dt.datetime:
        """Aware "now" on the clock the request times are recorded with."""

    def pending(self, robot_id: str, limit: int) -> list[Pending]:
        """The oldest pending events, oldest first."""

    def count_pending(self, robot_id: str) -> int: ...

    def request_times(self, robot_id: str, since: dt.datetime) -> list[dt.datetime]:
        """When the requests made after ``since`` were made, oldest first."""

    def record(
        self, robot_id: str, at: dt.datetime, ids: Sequence[int], outcome: Outcome, error: str | None,
        max_attempts: int,
    ) -> int:  # fmt: skip
        """Record one request and what became of its events; how many events it marked failed."""


@dataclasses.dataclass
class FlushReport:
    """What one flush did. ``pending`` counts what is still waiting when it returned."""

    sent: int = 0
    failed: int = 0
    pending: int = 0
    requests: int = 0
    #: Seconds spent waiting for the robot's window.
    waited: float = 0.0
    #: Another process was sending for this robot (it delivers what was pending).
    busy: bool = False
    #: Why sending stopped with events pending: rate_limited, unavailable, time_budget.
    stopped: str | None = None
    #: Set when the store itself failed (database gone): scrubbed text.
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def wait_before_sending(
    times: Sequence[dt.datetime], groups: int, *, now: dt.datetime, limit: int, window: dt.timedelta
) -> float | None:
    """Seconds to wait before sending ``groups`` messages, given the request ``times`` inside the window.

    None: send now — that still leaves one slot of the window free for a digest. Else the
    wait until enough of the oldest requests have left the window (at least one, at most
    all of them, so never longer than ``window``).
    """
    used = len(times)
    if used + groups <= limit - 1:
        return None
    leaving = min(max(1, used + groups - limit), used)
    if leaving == 0:
        return 0.0  # more groups than a whole window holds: send what fits now
    return max(0.0, (times[leaving - 1] + window - now).total_seconds()) + _MARGIN


class _Sender:
    """One :func:`deliver` call's state: the store, the robot, the send function and the report."""

    def __init__(
        self, store: Store, robot_id: str, send: Send, *, limit: int, window: dt.timedelta,
        sleep: Callable[[float], None], max_attempts: int, limit_bytes: int, max_seconds: float,
    ) -> None:  # fmt: skip
        self.store, self.robot_id, self.send = store, robot_id, send
        self.limit, self.window, self.sleep = limit, window, sleep
        self.max_attempts, self.limit_bytes, self.max_seconds = max_attempts, limit_bytes, max_seconds
        self.report = FlushReport()
        self.started = store.now()

    def _plan(self) -> tuple[list[list[Pending]], list[dt.datetime], dt.datetime]:
        batch = self.store.pending(self.robot_id, BATCH)
        groups = [[batch[i] for i in group] for group in pack([p.event for p in batch], self.limit_bytes)]
        now = self.store.now()
        return groups, self.store.request_times(self.robot_id, now - self.window), now

    def drain(self) -> str | None:
        """Send until nothing is pending (None) or a reason to stop (returned)."""
        while True:
            groups, times, now = self._plan()
            if not groups:
                return None
            delay = wait_before_sending(times, len(groups), now=now, limit=self.limit, window=self.window)
            if delay is not None:
                if (now - self.started).total_seconds() + delay > self.max_seconds:
                    return "time_budget"
                if delay > 0:
                    log.info("WeCom robot %s: %d request(s) in the last minute; waiting %.1f s to send %d "
                             "message(s)", self.robot_id, len(times), delay, len(groups))  # fmt: skip
                    self.sleep(delay)
                    self.report.waited += delay
                # Everything pending by now goes, in as many messages as the window has room for.
                groups, times, now = self._plan()
                groups = groups[: max(self.limit - len(times), 0)]
            for group in groups:
                stop = self._send_group(group)
                if stop:
                    return stop

    def _send_group(self, group: list[Pending]) -> str | None:
        content = render_group([p.event for p in group], self.limit_bytes)
        error: str | None = None
        try:
            self.send(content)
            outcome = Outcome.SENT
        except RobotRateLimited as exc:
            outcome, error = Outcome.RATE_LIMITED, str(exc)
        except RobotUnavailable as exc:
            outcome, error = Outcome.UNAVAILABLE, str(exc)
        except RobotRejected as exc:
            outcome, error = Outcome.REJECTED, str(exc)
        error = scrub_key(error)[:1000] if error else None
        ids = [p.id for p in group]
        failed = self.store.record(self.robot_id, self.store.now(), ids, outcome, error, self.max_attempts)
        self.report.requests += 1
        self.report.failed += failed
        if outcome is Outcome.SENT:
            self.report.sent += len(ids)
            return None
        log.warning("WeCom robot %s: %d event(s) not delivered (%s): %s", self.robot_id, len(ids), outcome, error)
        return None if outcome is Outcome.REJECTED else outcome.value


def deliver(
    store: Store,
    robot_id: str,
    send: Send,
    *,
    limit: int = ROBOT_LIMIT,
    window: dt.timedelta = ROBOT_WINDOW,
    sleep: Callable[[float], None] = time.sleep,
    max_attempts: int = MAX_ATTEMPTS,
    limit_bytes: int = MAX_BYTES,
    max_seconds: float = MAX_SECONDS,
) -> FlushReport:
    """Send what ``store`` holds for ``robot_id`` through ``send`` (see the module docstring).

    ``send(markdown)`` raises :class:`~.wecom.RobotError` subclasses when the robot does
    not take a message; any other exception is a bug and propagates (the lock released).
    """
    if limit < 1:
        raise ValueError("limit must be >= 1")
    sender = _Sender(
        store, robot_id, send, limit=limit, window=window, sleep=sleep, max_attempts=max_attempts,
        limit_bytes=limit_bytes, max_seconds=max_seconds,
    )  # fmt: skip
    report = sender.report
    while True:
        if not store.try_lock(robot_id):
            report.busy = True  # the holder sends ours too, and re-checks after unlocking
            break
        try:
            report.stopped = sender.drain()
        finally:
            store.unlock(robot_id)
        if report.stopped or not store.count_pending(robot_id):
            break
        # An event was committed between our last look and the unlock: its caller found
        # the lock taken and returned, so it is ours to send.
    report.pending = store.count_pending(robot_id)
    return report
