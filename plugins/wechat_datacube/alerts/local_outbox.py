"""Events waiting for a robot in this process's memory: the :class:`~.delivery.Store` without a database.

Used when no outbox database is configured, or it cannot be reached. The same delivery
loop runs over it, so the threads of one process share one rate window per robot and
coalesce a burst exactly as the Postgres outbox does — but only within this process
(other processes and workers keep their own windows), and what is still pending when the
process ends is lost. :data:`LOCAL_OUTBOX` is the one instance of the process.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections import deque
from collections.abc import Callable, Sequence

from wechat_datacube.alerts.delivery import Outcome, Pending
from wechat_datacube.alerts.events import AlertEvent

#: Request times older than this are forgotten (far longer than any window used).
_KEEP = dt.timedelta(minutes=10)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LocalOutbox:
    """Pending events, request times and a sender lock per robot, guarded for threads."""

    def __init__(self, clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self._clock = clock
        self._guard = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[str, dict[int, Pending]] = {}
        self._requests: dict[str, deque[dt.datetime]] = {}
        self._senders: dict[str, threading.Lock] = {}

    def enqueue(self, robot_id: str, events: Sequence[AlertEvent]) -> list[int]:
        with self._guard:
            queue = self._pending.setdefault(robot_id, {})
            ids = [next(self._ids) for _ in events]
            queue.update((i, Pending(i, event)) for i, event in zip(ids, events, strict=True))
        return ids

    def try_lock(self, robot_id: str) -> bool:
        with self._guard:
            lock = self._senders.setdefault(robot_id, threading.Lock())
        return lock.acquire(blocking=False)

    def unlock(self, robot_id: str) -> None:
        self._senders[robot_id].release()

    def now(self) -> dt.datetime:
        return self._clock()

    def pending(self, robot_id: str, limit: int) -> list[Pending]:
        with self._guard:
            queue = self._pending.get(robot_id, {})
            return [queue[i] for i in sorted(queue)[:limit]]

    def count_pending(self, robot_id: str) -> int:
        with self._guard:
            return len(self._pending.get(robot_id, {}))

    def request_times(self, robot_id: str, since: dt.datetime) -> list[dt.datetime]:
        with self._guard:
            times = self._requests.get(robot_id, deque())
            return [t for t in times if t > since]

    def record(
        self, robot_id: str, at: dt.datetime, ids: Sequence[int], outcome: Outcome, error: str | None,
        max_attempts: int,
    ) -> int:  # fmt: skip
        with self._guard:
            times = self._requests.setdefault(robot_id, deque())
            times.append(at)
            while times and times[0] < at - _KEEP:
                times.popleft()
            queue = self._pending.get(robot_id, {})
            failed = 0
            for i in ids:
                item = queue.get(i)
                if item is None:
                    continue
                if outcome is Outcome.UNAVAILABLE and item.attempts + 1 < max_attempts:
                    queue[i] = Pending(i, item.event, item.attempts + 1)
                elif outcome in (Outcome.SENT, Outcome.REJECTED, Outcome.UNAVAILABLE):
                    del queue[i]  # delivered, or given up: memory keeps no history
                    failed += outcome is not Outcome.SENT
            return failed


#: The process's outbox: shared by every notifier call of this process.
LOCAL_OUTBOX = LocalOutbox()
