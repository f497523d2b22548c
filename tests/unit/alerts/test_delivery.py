"""The delivery loop's rules on a simulated clock: the window, coalescing, failures, the sender lock.

The store is the in-process one (:class:`LocalOutbox`) on a clock that only moves when the
loop sleeps, and ``send`` records what it is given: every rule is checked without waiting
a real minute. The same loop over Postgres and a real robot is in tests/integration/alerts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from tests.fixtures.wecom_robot import failed_task_event
from wechat_datacube.alerts.delivery import FlushReport, Outcome, deliver, wait_before_sending
from wechat_datacube.alerts.events import AlertEvent
from wechat_datacube.alerts.local_outbox import LocalOutbox
from wechat_datacube.alerts.render import pack
from wechat_datacube.alerts.wecom import RobotError, RobotRateLimited, RobotRejected, RobotUnavailable

ROBOT = "robot-0123456789"
START = dt.datetime(2024, 6, 15, 2, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(seconds=60)


@dataclass
class SimulatedWorld:
    """A clock that moves when the loop sleeps; events that 'arrive' at set times while it does."""

    now: dt.datetime = START
    arrivals: list[tuple[dt.datetime, AlertEvent]] = field(default_factory=list)
    outbox: LocalOutbox = field(init=False)
    sent: list[tuple[dt.datetime, str]] = field(default_factory=list)
    failures: list[RobotError] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.outbox = LocalOutbox(clock=lambda: self.now)

    def sleep(self, seconds: float) -> None:
        self.advance_to(self.now + dt.timedelta(seconds=seconds))

    def advance_to(self, moment: dt.datetime) -> None:
        """Move the clock; what arrived meanwhile is enqueued (its callers found the lock taken)."""
        self.now = max(self.now, moment)
        due = [e for at, e in self.arrivals if at <= self.now]
        self.arrivals = [(at, e) for at, e in self.arrivals if at > self.now]
        if due:
            self.outbox.enqueue(ROBOT, due)

    def send(self, content: str) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((self.now, content))

    def deliver(self, **kwargs: object) -> FlushReport:
        return deliver(self.outbox, ROBOT, self.send, sleep=self.sleep, **kwargs)  # type: ignore[arg-type]

    def run(self, **kwargs: object) -> None:
        """Each arrival is followed by a flush (its caller's), unless it came while a flush was waiting."""
        while self.arrivals:
            self.advance_to(self.arrivals[0][0])
            self.deliver(**kwargs)

    def requests_in_busiest_minute(self) -> int:
        times = [at for at, _ in self.sent]
        return max((sum(1 for t in times if at - MINUTE < t <= at) for at in times), default=0)


def _at(seconds: float) -> dt.datetime:
    return START + dt.timedelta(seconds=seconds)


def test_send_now_while_a_slot_stays_free_for_a_digest() -> None:
    times = [_at(i) for i in range(18)]
    assert wait_before_sending(times, 1, now=_at(30), limit=20, window=MINUTE) is None


def test_the_last_slot_waits_for_the_oldest_request_to_leave_the_window() -> None:
    times = [_at(i) for i in range(19)]
    assert wait_before_sending(times, 1, now=_at(30), limit=20, window=MINUTE) == pytest.approx(30.05)


def test_several_messages_wait_until_enough_requests_left_the_window() -> None:
    times = [_at(i) for i in range(20)]
    # 3 messages, window full: the three oldest (0, 1, 2 s) must leave: at 62 s.
    assert wait_before_sending(times, 3, now=_at(30), limit=20, window=MINUTE) == pytest.approx(32.05)


def test_more_messages_than_a_window_holds_send_what_fits_at_once_in_an_empty_window() -> None:
    assert wait_before_sending([], 25, now=_at(0), limit=20, window=MINUTE) == 0.0


def test_one_event_is_sent_alone_as_its_own_message() -> None:
    world = SimulatedWorld()
    world.outbox.enqueue(ROBOT, [failed_task_event(1)])

    report = world.deliver()

    assert (report.sent, report.requests, report.pending, report.waited) == (1, 1, 0, 0.0)
    assert "## <font" in world.sent[0][1] and "acct-01" in world.sent[0][1]


def test_burst_of_50_in_one_minute_costs_at_most_20_requests_and_loses_nothing() -> None:
    world = SimulatedWorld(arrivals=[(_at(i), failed_task_event(i)) for i in range(50)])  # one a second

    world.run()

    assert len(world.sent) <= 20
    assert world.outbox.count_pending(ROBOT) == 0
    for i in range(50):
        assert sum(f"acct-{i:02d}" in content for _, content in world.sent) == 1


def test_a_sustained_storm_never_puts_more_than_20_requests_in_any_minute() -> None:
    world = SimulatedWorld(arrivals=[(_at(i * 0.5), failed_task_event(i % 100)) for i in range(600)])  # 5 minutes

    world.run(max_seconds=10_000)

    assert world.requests_in_busiest_minute() <= 20
    assert world.outbox.count_pending(ROBOT) == 0
    assert sum(content.count("acct-") for _, content in world.sent) == 600


def test_rate_limited_answer_stops_and_leaves_the_events_pending() -> None:
    world = SimulatedWorld(failures=[RobotRateLimited("errcode 45009")])
    world.outbox.enqueue(ROBOT, [failed_task_event(1)])

    report = world.deliver()

    assert (report.sent, report.pending, report.failed, report.requests, report.stopped) == (
        0, 1, 0, 1, "rate_limited",
    )  # fmt: skip
    assert world.deliver().sent == 1  # the next flush delivers it


def test_unreachable_robot_fails_an_event_after_five_attempts() -> None:
    world = SimulatedWorld(failures=[RobotUnavailable("HTTP 500")] * 5)
    world.outbox.enqueue(ROBOT, [failed_task_event(1)])

    reports = [world.deliver() for _ in range(5)]

    assert [r.pending for r in reports] == [1, 1, 1, 1, 0]
    assert [r.failed for r in reports] == [0, 0, 0, 0, 1]
    assert all(r.stopped == "unavailable" for r in reports)


def test_rejected_message_fails_its_events_and_the_next_message_still_goes() -> None:
    world = SimulatedWorld(failures=[RobotRejected("errcode 40058")])
    events = [failed_task_event(i) for i in range(50)]
    first, second = pack(events)  # two digests
    world.outbox.enqueue(ROBOT, events)

    report = world.deliver()

    assert (report.failed, report.sent, report.pending, report.requests) == (len(first), len(second), 0, 2)
    assert f"acct-{second[0]:02d}" in world.sent[0][1]


def test_time_budget_leaves_the_events_pending_instead_of_waiting_past_it() -> None:
    world = SimulatedWorld()
    for _ in range(20):  # the window is full: the next slot frees in 59 s
        world.outbox.record(ROBOT, _at(-1), [], Outcome.SENT, None, 5)
    world.outbox.enqueue(ROBOT, [failed_task_event(1)])

    report = world.deliver(max_seconds=30)

    assert (report.stopped, report.pending, report.requests, report.waited) == ("time_budget", 1, 0, 0.0)
    assert world.now == START


def test_a_caller_finding_the_lock_taken_returns_at_once_and_the_holder_sends_its_event() -> None:
    """The race the re-check closes: an event committed after the holder's last look, before its unlock."""

    class RacyOutbox(LocalOutbox):
        late_report: FlushReport | None = None
        racing: Callable[[], None] | None = None

        def unlock(self, robot_id: str) -> None:
            if self.racing is not None:
                race, self.racing = self.racing, None
                race()
            super().unlock(robot_id)

    sent: list[str] = []
    outbox = RacyOutbox()

    def late_caller() -> None:
        outbox.enqueue(ROBOT, [failed_task_event(2)])
        outbox.late_report = deliver(outbox, ROBOT, sent.append)

    outbox.racing = late_caller
    outbox.enqueue(ROBOT, [failed_task_event(1)])

    report = deliver(outbox, ROBOT, sent.append)

    assert outbox.late_report is not None and outbox.late_report.busy and outbox.late_report.requests == 0
    assert report.sent == 2 and report.pending == 0
    assert ["acct-01" in sent[0], "acct-02" in sent[1]] == [True, True]
