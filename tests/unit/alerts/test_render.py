"""Alert messages: what one event's message says, what a digest says, and that packing fits 4096 bytes."""

from __future__ import annotations

import pytest

from tests.fixtures.wecom_robot import failed_task_event
from wechat_datacube.alerts.events import AlertEvent, AlertKind, custom_event
from wechat_datacube.alerts.render import (
    MAX_BYTES,
    clip,
    pack,
    render_digest,
    render_event,
    render_group,
    utf8_size,
)
from wechat_datacube.errors import describe_errcode


def test_event_message_names_account_endpoint_dates_errcode_meaning_and_log_link() -> None:
    event = failed_task_event(7, begin_date="2024-06-10", end_date="2024-06-14")

    text = render_event(event)

    assert text.startswith('## <font color="warning">任务失败 task failed</font>')
    assert "acct-07" in text
    assert "`getarticlesummary`" in text
    assert "2024-06-10..2024-06-14" in text
    assert describe_errcode(40125) in text  # "errcode 40125 (permanent): invalid AppSecret: ..."
    assert "invalid AppSecret" in text
    assert "**task**: wechat_daily_acct.load_getarticlesummary, try 3 of 3" in text
    assert f"[打开任务日志 / open task log]({event.link})" in text


@pytest.mark.parametrize(
    ("kind", "colour"),
    [(AlertKind.TASK_FAILED, "warning"), (AlertKind.DAY_KEPT, "comment"), (AlertKind.DAILY_REPORT, "info")],
)
def test_event_title_is_coloured_by_severity(kind: AlertKind, colour: str) -> None:
    text = render_event(AlertEvent(kind, headline="something happened", account="acct"))
    assert text.splitlines()[0].startswith(f'## <font color="{colour}">')


def test_event_time_is_shown_in_beijing_time() -> None:
    text = render_event(failed_task_event(occurred_at="2024-06-15T02:00:00+00:00"))
    assert "2024-06-15 10:00 北京时间 Beijing" in text


def test_event_without_errcode_or_link_has_no_such_lines() -> None:
    text = render_event(custom_event("Backfill of acct finished"))
    assert "错误码" not in text and "open task log" not in text
    assert "**Backfill of acct finished**" in text


def test_too_long_event_cuts_details_but_keeps_headline_ids_and_link() -> None:
    details = tuple(f"**row {i}**: 阅读 {i * 7} / 分享 {i}" for i in range(600))
    event = failed_task_event(3, details=details)

    text = render_event(event)

    assert utf8_size(text) <= MAX_BYTES
    assert "getarticlesummary failed for good" in text and "acct-03" in text
    assert describe_errcode(40125) in text
    assert event.link in text
    assert details[0] in text  # details are cut from the end
    assert details[-1] not in text
    kept = sum(1 for line in details if line in text.splitlines())
    assert f"… {len(details) - kept} more line(s) cut" in text


def test_event_with_a_huge_headline_still_fits_and_keeps_its_ids() -> None:
    event = failed_task_event(4, headline="数据" * 5000)

    text = render_event(event)

    assert utf8_size(text) <= MAX_BYTES
    assert "acct-04" in text and "errcode 40125" in text and event.link in text


def test_secrets_in_event_texts_never_reach_the_message() -> None:
    event = failed_task_event(
        1,
        headline="POST /datacube/getarticlesummary?access_token=TOKEN123456 failed",
        details=('**body**: {"appsecret": "SECRET987654"}',),
        link="http://airflow.local/log?component_access_token=TOKEN123456",
    )
    for text in (render_event(event), render_digest([event, failed_task_event(2)])):
        assert "TOKEN123456" not in text and "SECRET987654" not in text


def test_digest_lists_every_event_once_and_each_errcode_meaning_once() -> None:
    events = [failed_task_event(i, errcode=40125 if i % 2 else 40001) for i in range(6)]

    text = render_digest(events)

    assert text.splitlines()[0] == '## <font color="warning">6 条告警 / 6 alerts</font>'
    assert "coalesced" in text
    for i in range(6):
        (line,) = [line for line in text.splitlines() if f"acct-{i:02d}" in line]
        assert line.startswith(f"{i + 1}. **任务失败 task failed**")
        assert "getarticlesummary" in line and "2024-06-14" in line
    assert text.count(describe_errcode(40125)) == 1
    assert text.count(describe_errcode(40001)) == 1


def test_digest_takes_the_colour_of_its_loudest_event() -> None:
    quiet = AlertEvent(AlertKind.DAY_KEPT, headline="kept", account="a", endpoint="getusersummary")
    report = AlertEvent(AlertKind.DAILY_REPORT, headline="report", account="a")
    assert render_digest([quiet, report]).startswith('## <font color="info">')
    assert render_digest([quiet, failed_task_event()]).startswith('## <font color="warning">')


def test_digest_line_of_an_event_without_endpoint_or_errcode_shows_its_headline() -> None:
    late = AlertEvent(AlertKind.RUN_LATE, headline="daily run not finished by 12:00", account="acct", begin_date="d")
    line = render_digest([late, failed_task_event()]).splitlines()[2]
    assert "运行超时 run late" in line and "daily run not finished by 12:00" in line


def test_group_of_many_linked_events_drops_links_rather_than_split() -> None:
    long_link = "http://airflow.local/dags/wechat_daily/runs/" + "x" * 300
    events = [failed_task_event(i, link=long_link) for i in range(12)]

    text = render_group(events)

    assert utf8_size(render_digest(events)) > MAX_BYTES  # with the links it would not fit
    assert utf8_size(text) <= MAX_BYTES
    assert long_link not in text and "task logs: Airflow UI" in text
    assert all(f"acct-{i:02d}" in text for i in range(12))


def test_a_group_of_one_is_the_event_own_message() -> None:
    event = failed_task_event(5)
    assert render_group([event]) == render_event(event)


@pytest.mark.parametrize("limit_bytes", [MAX_BYTES, 1500, 700])
def test_pack_covers_every_event_once_in_order_and_every_message_fits(limit_bytes: int) -> None:
    events = [
        failed_task_event(i, headline="失败" * (i % 7) * 40, details=("明细 " * (i % 5) * 300,)) for i in range(80)
    ]

    groups = pack(events, limit_bytes)

    assert [i for group in groups for i in group] == list(range(80))
    for group in groups:
        assert utf8_size(render_group([events[i] for i in group], limit_bytes)) <= limit_bytes


def test_pack_folds_31_failures_into_one_digest_and_50_into_two() -> None:
    assert len(pack([failed_task_event(i) for i in range(31)])) == 1
    assert len(pack([failed_task_event(i) for i in range(50)])) == 2


def test_pack_of_nothing_is_no_group() -> None:
    assert pack([]) == []


def test_clip_cuts_at_a_character_boundary() -> None:
    assert clip("数据数据", 7) == "数…"  # "数据" + the 3-byte marker would be 9 bytes
    assert utf8_size(clip("数据数据", 7)) <= 7
    assert clip("short", 100) == "short"


def test_a_detail_line_repeating_the_errcode_meaning_is_not_shown_twice() -> None:
    event = failed_task_event(details=(f"**errcode**: {describe_errcode(40125)}", "**what to do**: fix the secret"))
    text = render_event(event)
    assert text.count("invalid AppSecret") == 1
    assert "**what to do**: fix the secret" in text
