"""The Postgres outbox on a real database with a real (fake) robot: committed first, sent within the window.

Failure paths run on the real clock (the robot answers at once); the window rules run on a
simulated clock over the real tables, with the fake robot's own limit switched off.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest

from tests.fixtures.wecom_robot import (
    RATE_LIMITED,
    FakeWeComRobot,
    errcode,
    failed_task_event,
    http_status,
    register_wecom_conn,
)
from wechat_datacube.alerts import outbox
from wechat_datacube.alerts.wecom import WeComRobotHook


@pytest.fixture
def db(fresh_pg: tuple[str, str]) -> Iterator[psycopg.Connection]:
    with psycopg.connect(fresh_pg[1]) as conn:
        yield conn


@pytest.fixture
def hook(wecom_robot: FakeWeComRobot, monkeypatch: pytest.MonkeyPatch) -> WeComRobotHook:
    return WeComRobotHook(register_wecom_conn(monkeypatch, wecom_robot), backoff_base=0.01)


def _states(conn: psycopg.Connection) -> list[tuple[str, int]]:
    with conn.transaction():
        return conn.execute("SELECT state, attempts FROM wechat_alerts.outbox ORDER BY id").fetchall()


def _requests(conn: psycopg.Connection) -> list[tuple[bool, int, str]]:
    with conn.transaction():
        return conn.execute("SELECT ok, events, status FROM wechat_alerts.robot_requests ORDER BY id").fetchall()


def test_the_outbox_is_a_migration_track_of_its_own(db: psycopg.Connection) -> None:
    assert outbox.ensure_alert_schema(db) is True
    assert outbox.ensure_alert_schema(db) is False  # current: one statement, nothing done
    with db.transaction():
        ledger = db.execute("SELECT version, name FROM wechat_alerts.alert_migrations").fetchall()
    assert ledger == [(1, "outbox and robot_requests")]


def test_enqueued_events_are_committed_before_anything_is_sent(
    db: psycopg.Connection, fresh_pg: tuple[str, str], wecom_robot: FakeWeComRobot
) -> None:
    ids = outbox.enqueue(db, "robot-a", [failed_task_event(1), failed_task_event(2)])

    with psycopg.connect(fresh_pg[1]) as other:  # another process sees them at once
        rows = other.execute("SELECT id, state, event->>'account' FROM wechat_alerts.outbox ORDER BY id").fetchall()
    assert rows == [(ids[0], "pending", "acct-01"), (ids[1], "pending", "acct-02")]
    assert wecom_robot.requests == []


def test_one_pending_event_goes_as_its_own_message_and_is_marked_sent(
    db: psycopg.Connection, hook: WeComRobotHook, wecom_robot: FakeWeComRobot
) -> None:
    outbox.enqueue(db, hook.robot_id, [failed_task_event(1)])

    report = outbox.flush(db, hook.robot_id, hook.send_markdown)

    assert (report.sent, report.pending, report.failed, report.requests) == (1, 0, 0, 1)
    (message,) = wecom_robot.messages
    assert "acct-01" in message and "invalid AppSecret" in message
    assert _states(db) == [("sent", 1)]
    assert _requests(db) == [(True, 1, "sent")]


@pytest.mark.parametrize("down", [http_status(500), errcode(-1, "system busy")])
def test_robot_down_leaves_events_pending_and_the_next_flush_delivers_them(
    down: object, db: psycopg.Connection, hook: WeComRobotHook, wecom_robot: FakeWeComRobot
) -> None:
    wecom_robot.respond_with(then=down)  # type: ignore[arg-type]
    outbox.enqueue(db, hook.robot_id, [failed_task_event(1), failed_task_event(2)])

    report = outbox.flush(db, hook.robot_id, hook.send_markdown)

    assert (report.sent, report.pending, report.stopped) == (0, 2, "unavailable")
    assert _states(db) == [("pending", 1), ("pending", 1)]
    wecom_robot.heal()
    assert outbox.flush(db, hook.robot_id, hook.send_markdown).sent == 2
    assert _states(db) == [("sent", 2), ("sent", 2)]
    assert "acct-01" in wecom_robot.messages[0] and "acct-02" in wecom_robot.messages[0]


def test_rate_limited_answer_leaves_events_pending_without_spending_an_attempt(
    db: psycopg.Connection, hook: WeComRobotHook, wecom_robot: FakeWeComRobot
) -> None:
    wecom_robot.respond_with(RATE_LIMITED)
    outbox.enqueue(db, hook.robot_id, [failed_task_event(1)])

    report = outbox.flush(db, hook.robot_id, hook.send_markdown)

    assert (report.sent, report.pending, report.stopped) == (0, 1, "rate_limited")
    assert _states(db) == [("pending", 0)]
    assert _requests(db) == [(False, 1, "rate_limited")]  # it counts against the window all the same
    assert outbox.flush(db, hook.robot_id, hook.send_markdown).sent == 1


def test_five_unreachable_flushes_fail_the_event_with_a_scrubbed_error(
    db: psycopg.Connection, hook: WeComRobotHook, wecom_robot: FakeWeComRobot
) -> None:
    wecom_robot.respond_with(then=http_status(503))
    outbox.enqueue(db, hook.robot_id, [failed_task_event(1)])

    reports = [outbox.flush(db, hook.robot_id, hook.send_markdown) for _ in range(5)]

    assert [r.failed for r in reports] == [0, 0, 0, 0, 1]
    with db.transaction():
        state, attempts, error = db.execute("SELECT state, attempts, last_error FROM wechat_alerts.outbox").fetchone()
    assert (state, attempts) == ("failed", 5)
    assert "HTTP 503" in error and wecom_robot.key not in error
    assert len(_requests(db)) == 5


def test_rejected_message_fails_its_events_at_once(
    db: psycopg.Connection, hook: WeComRobotHook, wecom_robot: FakeWeComRobot
) -> None:
    wecom_robot.respond_with(errcode(40008, "invalid message type"))
    outbox.enqueue(db, hook.robot_id, [failed_task_event(1)])

    report = outbox.flush(db, hook.robot_id, hook.send_markdown)

    assert (report.failed, report.pending) == (1, 0)
    assert _states(db) == [("failed", 1)]
    assert _requests(db) == [(False, 1, "rejected")]


def test_flush_returns_at_once_when_another_process_sends_for_the_robot(
    db: psycopg.Connection, fresh_pg: tuple[str, str], hook: WeComRobotHook, wecom_robot: FakeWeComRobot
) -> None:
    outbox.enqueue(db, hook.robot_id, [failed_task_event(1)])
    with psycopg.connect(fresh_pg[1], autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"wechat_alerts.robot:{hook.robot_id}",))

        report = outbox.flush(db, hook.robot_id, hook.send_markdown)

        assert report.busy and (report.requests, report.pending) == (0, 1)
    assert outbox.flush(db, hook.robot_id, hook.send_markdown).sent == 1  # the lock died with its session


def test_flush_leaves_the_connection_as_it_found_it(db: psycopg.Connection, hook: WeComRobotHook) -> None:
    outbox.enqueue(db, hook.robot_id, [failed_task_event(1)])
    outbox.flush(db, hook.robot_id, hook.send_markdown)
    assert db.autocommit is False
    assert db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with db.transaction():
        held = db.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        assert held.fetchone()[0] == 0


def test_a_dead_database_connection_is_reported_not_raised(hook: WeComRobotHook, fresh_pg: tuple[str, str]) -> None:
    conn = psycopg.connect(fresh_pg[1])
    conn.close()

    report = outbox.flush(conn, hook.robot_id, hook.send_markdown)

    assert report.error and "OperationalError" in report.error and report.sent == 0


def test_window_with_one_slot_left_waits_for_the_oldest_request_then_sends_one_digest(
    db: psycopg.Connection, hook: WeComRobotHook, wecom_robot: FakeWeComRobot
) -> None:
    """Simulated clock over the real tables: 19 requests in the window, then 5 events arrive."""
    wecom_robot.limit = None
    now = [dt.datetime(2024, 6, 15, 2, 0, tzinfo=dt.UTC)]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += dt.timedelta(seconds=seconds)

    def flush() -> outbox.FlushReport:
        return outbox.flush(db, hook.robot_id, hook.send_markdown, clock=lambda: now[0], sleep=sleep)

    for i in range(19):  # one a second, each alone
        outbox.enqueue(db, hook.robot_id, [failed_task_event(i)])
        assert flush().requests == 1
        now[0] += dt.timedelta(seconds=1)
    outbox.enqueue(db, hook.robot_id, [failed_task_event(i) for i in range(19, 24)])

    report = flush()

    assert waits == [pytest.approx(41.05)]  # until the request of 02:00:00 left the window
    assert (report.sent, report.requests, report.pending) == (5, 1, 0)
    assert len(wecom_robot.messages) == 20
    assert wecom_robot.messages[-1].startswith('## <font color="warning">5 条告警 / 5 alerts</font>')
