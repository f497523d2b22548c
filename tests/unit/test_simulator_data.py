"""The simulator's pure parts: synthetic data, date rules, fault bookkeeping, clock."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest

from wechat_datacube.endpoints import ENDPOINTS, HISTORY_START
from wechat_datacube.simulator.clock import SimClock
from wechat_datacube.simulator.data import articles_sent, rows_for_day
from wechat_datacube.simulator.datacube import answer, last_ready_day, parse_range
from wechat_datacube.simulator.faults import TERMINAL_KINDS, FaultBook, FaultRule
from wechat_datacube.simulator.wire import ApiError

BJ = dt.timezone(dt.timedelta(hours=8))
SEED, APPID = 11, "wx_unit"
DAY = dt.date(2025, 12, 1)
LATE = DAY + dt.timedelta(days=40)


def _day_with_articles() -> dt.date:
    day = DAY
    while not articles_sent(SEED, APPID, day):
        day -= dt.timedelta(days=1)
    return day


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_rows_carry_every_registry_field(name: str) -> None:
    spec = ENDPOINTS[name]
    rows = rows_for_day(spec, SEED, APPID, _day_with_articles(), LATE)
    assert rows
    seen: set[str] = set()
    for row in rows:
        seen |= set(row)
        for child in row.get(spec.nested, []) if spec.nested else []:
            seen |= set(child)
    expected = set(spec.column_names) | ({spec.nested} if spec.nested else set())
    assert seen == expected


def test_articles_are_sent_on_about_60_percent_of_days_with_1_to_3_each() -> None:
    days = [HISTORY_START + dt.timedelta(days=k) for k in range(1000)]
    counts = [len(articles_sent(SEED, APPID, d)) for d in days]
    assert 0.52 < sum(c > 0 for c in counts) / len(counts) < 0.68
    assert set(counts) == {0, 1, 2, 3}


def test_msgids_are_msg_data_id_underscore_index_and_unique() -> None:
    msgids = [a.msgid for k in range(365) for a in articles_sent(SEED, APPID, DAY - dt.timedelta(days=k))]
    assert all(re.fullmatch(r"\d+_[123]", m) for m in msgids)
    assert len(msgids) == len(set(msgids))


def test_titles_include_chinese_text() -> None:
    titles = [a.title for k in range(30) for a in articles_sent(SEED, APPID, DAY - dt.timedelta(days=k))]
    assert any(re.search(r"[\u4e00-\u9fff]", t) for t in titles)


def test_article_total_details_stop_at_the_newest_published_day() -> None:
    day = _day_with_articles()
    rows = rows_for_day(ENDPOINTS["getarticletotal"], SEED, APPID, day, day + dt.timedelta(days=2))
    assert all([d["stat_date"] for d in r["details"]] == [str(day + dt.timedelta(days=k)) for k in range(3)]
               for r in rows)


def test_cumulative_values_never_decrease() -> None:
    day = _day_with_articles()
    for name, nested in (("getarticletotal", "details"), ("getarticletotaldetail", "detail_list")):
        for row in rows_for_day(ENDPOINTS[name], SEED, APPID, day, LATE):
            for field in row[nested][0]:
                values = [d[field] for d in row[nested]]
                assert values == sorted(values), (name, field)


def test_data_is_deterministic_per_seed_and_appid() -> None:
    spec = ENDPOINTS["getuserreadhour"]
    assert rows_for_day(spec, SEED, APPID, DAY, LATE) == rows_for_day(spec, SEED, APPID, DAY, LATE)
    assert rows_for_day(spec, SEED, APPID, DAY, LATE) != rows_for_day(spec, SEED + 1, APPID, DAY, LATE)
    assert rows_for_day(spec, SEED, APPID, DAY, LATE) != rows_for_day(spec, SEED, "wx_other", DAY, LATE)


def test_a_year_of_every_endpoint_generates_in_a_few_ms_per_call() -> None:
    start = time.perf_counter()
    for k in range(365):
        day = dt.date(2023, 1, 1) + dt.timedelta(days=k)
        for spec in ENDPOINTS.values():
            rows_for_day(spec, 99, "wx_speed", day, day + dt.timedelta(days=40))
    assert time.perf_counter() - start < 10  # ~3650 calls; a few ms each at most


def test_last_ready_day_switches_at_the_ready_hour_in_beijing() -> None:
    assert last_ready_day(dt.datetime(2024, 6, 20, 7, 59, tzinfo=BJ), 8) == dt.date(2024, 6, 18)
    assert last_ready_day(dt.datetime(2024, 6, 20, 8, 0, tzinfo=BJ), 8) == dt.date(2024, 6, 19)
    assert last_ready_day(dt.datetime(2024, 6, 20, 0, 30, tzinfo=dt.UTC), 8) == dt.date(2024, 6, 19)


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"begin_date": "2024-6-1", "end_date": "2024-06-01"}, 61500),
        ({"begin_date": "2024-02-30", "end_date": "2024-02-30"}, 61500),
        ({"end_date": "2024-06-01"}, 61500),
        ({"begin_date": "2024-06-02", "end_date": "2024-06-01"}, 61501),
        ({"begin_date": "2024-06-01", "end_date": "2024-06-04"}, 61501),
        ({"begin_date": "2024-06-20", "end_date": "2024-06-20"}, 61501),
    ],
)
def test_parse_range_refuses_like_wechat(body: dict[str, str], errcode: int) -> None:
    with pytest.raises(ApiError) as info:
        parse_range(ENDPOINTS["getuserread"], body, dt.datetime(2024, 6, 20, 10, tzinfo=BJ))
    assert info.value.errcode == errcode


def test_answer_skips_unpublished_days_and_flags_is_delay() -> None:
    now = dt.datetime(2025, 12, 20, 7, tzinfo=BJ)
    spec = ENDPOINTS["getbizsummary"]
    assert answer(spec, SEED, APPID, dt.date(2025, 12, 19), dt.date(2025, 12, 19), now, 8) == {
        "list": [], "is_delay": True}
    assert answer(spec, SEED, APPID, dt.date(2025, 12, 18), dt.date(2025, 12, 18), now, 8)["is_delay"] is False


def test_fault_rule_with_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultRule.from_dict({"kind": "gremlins"})


def test_queued_terminal_faults_play_out_one_request_at_a_time() -> None:
    book = FaultBook(seed=1)
    book.set([{"kind": "errcode", "errcode": -1, "count": 1}, {"kind": "drop", "count": 1}])
    kinds = [[r.kind for r in book.draw("/datacube/x", None, TERMINAL_KINDS)] for _ in range(3)]
    assert kinds == [["errcode"], ["drop"], []]


def test_clock_set_needs_an_aware_datetime() -> None:
    with pytest.raises(ValueError):
        SimClock().set(dt.datetime(2024, 6, 20, 10))


def test_unfrozen_clock_runs_on_from_where_it_stood() -> None:
    clock = SimClock()
    clock.set(dt.datetime(2024, 6, 20, 10, tzinfo=BJ))
    clock.advance(60)
    clock.unfreeze()
    moved = clock.now() - dt.datetime(2024, 6, 20, 10, 1, tzinfo=BJ)
    assert dt.timedelta(0) <= moved < dt.timedelta(seconds=5)
    assert not clock.frozen
