"""The simulator's user, message and interface families: the rules of docs/datacube-families-research.md.

Week/month labels and the not-before-the-period-ends rule, hour rows that add up to the
day's, dist buckets that match the day's senders, follower totals that reconcile with
follows minus unfollows, getusersummary's one-day quirk, spans and determinism.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

import pytest
from wechat_datacube_dev.simulator.config import SimulatorConfig
from wechat_datacube_dev.simulator.datacube import answer, parse_range
from wechat_datacube_dev.simulator.facts import FACTS, HISTORY_START
from wechat_datacube_dev.simulator.inbound import fit_buckets
from wechat_datacube_dev.simulator.rows import rows_for_day
from wechat_datacube_dev.simulator.state import SimulatorState
from wechat_datacube_dev.simulator.wire import ApiError

BJ = dt.timezone(dt.timedelta(hours=8))
SEED, APPID = 11, "wx_audience"
#: Far after every day used below: everything is published.
LATE = dt.date(2026, 1, 1)
MONDAY, SUNDAY = dt.date(2024, 6, 3), dt.date(2024, 6, 9)
NEW = ("getusersummary", "getusercumulate", "getupstreammsg", "getupstreammsghour", "getupstreammsgweek",
       "getupstreammsgmonth", "getupstreammsgdist", "getupstreammsgdistweek", "getupstreammsgdistmonth",
       "getinterfacesummary", "getinterfacesummaryhour")


def _days(first: dt.date, count: int) -> list[dt.date]:
    return [first + dt.timedelta(days=k) for k in range(count)]


def _rows(name: str, day: dt.date, last_ready: dt.date = LATE, appid: str = APPID) -> list[dict[str, Any]]:
    return rows_for_day(name, SEED, appid, day, last_ready)


def _at(day: dt.date, hour: int = 10) -> dt.datetime:
    """A Beijing moment on ``day``; at 10:00 the day before it is the newest published one."""
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=BJ)


def _answer(name: str, begin: dt.date, end: dt.date, now: dt.datetime, **config: Any) -> list[dict[str, Any]]:
    return answer(FACTS[name], SimulatorConfig(seed=SEED, **config), APPID, begin, end, now)["list"]


def _by_type(rows: list[dict[str, Any]]) -> dict[int, tuple[int, int]]:
    return {r["msg_type"]: (r["msg_user"], r["msg_count"]) for r in rows}


# --- facts -----------------------------------------------------------------------------------


def test_new_families_facts_are_the_official_pages_values() -> None:
    """Written out from the research notes' page quotes, not read from any table."""
    assert {n: (FACTS[n].family, FACTS[n].max_span, FACTS[n].period) for n in NEW} == {
        "getusersummary": ("user", 7, "day"), "getusercumulate": ("user", 7, "day"),
        "getupstreammsg": ("message", 7, "day"), "getupstreammsghour": ("message", 1, "day"),
        "getupstreammsgweek": ("message", 1, "week"), "getupstreammsgmonth": ("message", 1, "month"),
        "getupstreammsgdist": ("message", 15, "day"), "getupstreammsgdistweek": ("message", 15, "week"),
        "getupstreammsgdistmonth": ("message", 15, "month"),
        "getinterfacesummary": ("interface", 30, "day"), "getinterfacesummaryhour": ("interface", 1, "day"),
    }
    assert {(FACTS[n].first_date, FACTS[n].shape, FACTS[n].is_delay) for n in NEW} == {(HISTORY_START, "flat", False)}
    assert [n for n in NEW if FACTS[n].newest_alone_empty] == ["getusersummary"]


# --- week and month labels ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["getupstreammsgweek", "getupstreammsgdistweek"])
def test_a_week_is_labelled_by_its_monday_and_served_once_its_sunday_is_published(name: str) -> None:
    assert _rows(name, MONDAY, last_ready=SUNDAY)
    assert {r["ref_date"] for r in _rows(name, MONDAY, last_ready=SUNDAY)} == {"2024-06-03"}
    assert _rows(name, MONDAY, last_ready=SUNDAY - dt.timedelta(days=1)) == []
    assert all(_rows(name, day) == [] for day in _days(MONDAY + dt.timedelta(days=1), 6))


@pytest.mark.parametrize("name", ["getupstreammsgmonth", "getupstreammsgdistmonth"])
def test_a_month_is_labelled_by_its_first_and_served_once_its_last_day_is_published(name: str) -> None:
    first, last = dt.date(2024, 2, 1), dt.date(2024, 2, 29)
    assert {r["ref_date"] for r in _rows(name, first, last_ready=last)} == {"2024-02-01"}
    assert _rows(name, first, last_ready=last - dt.timedelta(days=1)) == []
    assert all(_rows(name, day) == [] for day in _days(dt.date(2024, 2, 2), 28))


def test_a_window_answers_only_its_finished_mondays_and_an_unfinished_week_is_an_empty_list() -> None:
    now = _at(dt.date(2024, 6, 20))  # newest published day: Wed 2024-06-19
    rows = _answer("getupstreammsgweek", dt.date(2024, 5, 29), dt.date(2024, 6, 19), now)
    assert sorted({r["ref_date"] for r in rows}) == ["2024-06-03", "2024-06-10"]
    assert _answer("getupstreammsgweek", dt.date(2024, 6, 17), dt.date(2024, 6, 17), now) == []
    assert _answer("getupstreammsgdistweek", dt.date(2024, 6, 11), dt.date(2024, 6, 16), now) == []


def test_a_month_is_served_from_the_ready_hour_of_the_first_of_the_next_month() -> None:
    first = dt.date(2024, 2, 1)
    assert _answer("getupstreammsgmonth", first, first, _at(dt.date(2024, 3, 1), hour=7)) == []
    assert _answer("getupstreammsgmonth", first, first, _at(dt.date(2024, 3, 1), hour=8))
    assert _answer("getupstreammsgdistmonth", first, first, _at(dt.date(2024, 2, 29))) == []


#: (endpoint, label, days in its period): weeks, and months of 28 to 31 days.
PERIODS = [
    *(("getupstreammsgweek", MONDAY + dt.timedelta(weeks=k), 7) for k in range(6)),
    ("getupstreammsgmonth", dt.date(2023, 2, 1), 28), ("getupstreammsgmonth", dt.date(2024, 2, 1), 29),
    ("getupstreammsgmonth", dt.date(2024, 4, 1), 30), ("getupstreammsgmonth", dt.date(2024, 12, 1), 31),
]


def test_week_and_month_counts_are_the_sums_of_their_days_and_senders_lie_between_peak_and_sum() -> None:
    for name, label, days in PERIODS:
        daily = [_by_type(_rows("getupstreammsg", day)) for day in _days(label, days)]
        period = _by_type(_rows(name, label))
        assert set(period) == {t for d in daily for t in d}, name
        for msg_type, (users, count) in period.items():
            assert count == sum(d[msg_type][1] for d in daily if msg_type in d), name
            per_day = [d[msg_type][0] for d in daily if msg_type in d]
            assert max(per_day) <= users <= min(sum(per_day), count), name


@pytest.mark.parametrize(("by_type", "label", "days"), PERIODS)
def test_period_buckets_admit_the_periods_messages_and_senders(by_type: str, label: dt.date, days: int) -> None:
    buckets = {r["count_interval"]: r["msg_user"] for r in _rows(by_type.replace("msg", "msgdist"), label)}
    types = _by_type(_rows(by_type, label))
    _assert_buckets_admit(buckets, sum(c for _, c in types.values()))
    assert max(u for u, _ in types.values()) <= sum(buckets.values()) <= sum(u for u, _ in types.values())
    busiest = max(sum(r["msg_user"] for r in _rows("getupstreammsgdist", day)) for day in _days(label, days))
    assert sum(buckets.values()) >= busiest


# --- hours, dist and types -------------------------------------------------------------------


def _assert_buckets_admit(buckets: dict[int, int], messages: int) -> None:
    """Senders in 1 (1-5), 2 (6-10), 3 (>10) could have sent exactly ``messages``; no bucket 0."""
    assert set(buckets) <= {1, 2, 3} and all(u > 0 for u in buckets.values())
    b1, b2, b3 = (buckets.get(k, 0) for k in (1, 2, 3))
    assert b1 + 6 * b2 + 11 * b3 <= messages
    assert b3 or messages <= 5 * b1 + 10 * b2


@pytest.mark.parametrize("appid", [APPID, "wx_other_account"])
def test_message_hours_add_up_to_the_day_and_dist_matches_the_days_senders(appid: str) -> None:
    for day in _days(dt.date(2023, 5, 20), 30):
        daily = _by_type(_rows("getupstreammsg", day, appid=appid))
        hours = _rows("getupstreammsghour", day, appid=appid)
        assert {r["ref_hour"] for r in hours} <= set(range(0, 2400, 100))
        summed: Counter[int] = Counter()
        for row in hours:
            users, count = daily[row["msg_type"]]
            assert 1 <= row["msg_user"] <= min(row["msg_count"], users)
            summed[row["msg_type"]] += row["msg_count"]
        assert summed == Counter({t: count for t, (_, count) in daily.items()})
        assert set(daily) <= {1, 2, 3, 4, 6} and all(u <= c for u, c in daily.values())
        buckets = {r["count_interval"]: r["msg_user"] for r in _rows("getupstreammsgdist", day, appid=appid)}
        _assert_buckets_admit(buckets, sum(c for _, c in daily.values()))
        assert max(u for u, _ in daily.values()) <= sum(buckets.values()) <= sum(u for u, _ in daily.values())


def test_fit_buckets_always_admits_the_messages() -> None:
    for senders in (1, 2, 3, 7, 40, 500):
        for messages in sorted({senders, senders + 1, 2 * senders, 5 * senders, 6 * senders, 12 * senders, 50}):
            if messages < senders:
                continue
            for heavy, mid in ((0.0, 0.0), (0.01, 0.05), (0.5, 0.5)):
                buckets = dict(fit_buckets(senders, messages, heavy, mid))
                assert sum(buckets.values()) == senders
                _assert_buckets_admit(buckets, messages)


def test_interface_hours_add_up_to_the_day_row() -> None:
    seen_failures = False
    for day in _days(dt.date(2024, 1, 1), 60):
        (row,) = _rows("getinterfacesummary", day)
        hours = _rows("getinterfacesummaryhour", day)
        assert hours and all(h["callback_count"] > 0 for h in hours)
        for name in ("callback_count", "fail_count", "total_time_cost"):
            assert row[name] == sum(h[name] for h in hours), (day, name)
        assert row["max_time_cost"] == max(h["max_time_cost"] for h in hours)
        assert 0 <= row["fail_count"] < row["callback_count"]
        assert 200 <= row["total_time_cost"] / row["callback_count"] <= 800
        assert row["total_time_cost"] / row["callback_count"] <= row["max_time_cost"] <= 5050
        seen_failures = seen_failures or row["fail_count"] > 0
    assert seen_failures


def test_callbacks_follow_the_messages_and_messages_are_a_tiny_share_of_followers() -> None:
    for day in _days(dt.date(2022, 3, 1), 20):
        messages = sum(c for _, c in _by_type(_rows("getupstreammsg", day)).values())
        follows = sum(r["new_user"] for r in _rows("getusersummary", day))
        callbacks = _rows("getinterfacesummary", day)[0]["callback_count"]
        followers = _rows("getusercumulate", day)[0]["cumulate_user"]
        assert messages + follows <= callbacks <= 1.5 * messages + follows
        assert 0 < messages < 0.02 * followers


# --- followers ------------------------------------------------------------------------------


@pytest.mark.parametrize("first", [HISTORY_START, dt.date(2023, 5, 1)])
def test_cumulate_changes_by_exactly_the_days_follows_minus_unfollows(first: dt.date) -> None:
    before = None
    for day in _days(first, 60):
        (total,) = _rows("getusercumulate", day)
        assert set(total) == {"ref_date", "user_source", "cumulate_user"} and total["user_source"] == 0
        net = sum(r["new_user"] - r["cancel_user"] for r in _rows("getusersummary", day))
        if before is not None:
            assert total["cumulate_user"] - before == net, day
        before = total["cumulate_user"]


def test_every_day_has_a_user_source_0_row_and_the_sources_vary() -> None:
    days = [*_days(HISTORY_START, 100), *_days(dt.date(2020, 3, 1), 250), *_days(dt.date(2023, 4, 1), 120)]
    sources = {day: [r["user_source"] for r in _rows("getusersummary", day)] for day in days}
    assert all(found[0] == 0 and found.count(0) == 1 for found in sources.values())
    assert len({tuple(found) for found in sources.values()}) > 20
    seen: dict[int, list[dt.date]] = defaultdict(list)
    for day, found in sources.items():
        for source in found:
            seen[source].append(day)
    assert set(seen) == {0, 1, 17, 30, 51, 57, 100, 149, 161, 200, 201}
    assert max(seen[51]) < dt.date(2023, 6, 1)
    firsts = {source: min(seen[source]) for source in (161, 100, 200, 201)}
    assert firsts == {161: dt.date(2020, 4, 1), 100: dt.date(2020, 6, 1), 200: dt.date(2020, 10, 1),
                      201: dt.date(2020, 10, 1)}
    for day in days:
        rows = _rows("getusersummary", day)
        assert all(r["new_user"] >= 0 and r["cancel_user"] >= 0 for r in rows)
        assert all(r["new_user"] or r["cancel_user"] for r in rows if r["user_source"])


def test_getusersummary_answers_the_newest_day_alone_with_an_empty_list_but_a_wider_window_has_it() -> None:
    now = _at(dt.date(2024, 6, 20))
    newest, before = dt.date(2024, 6, 19), dt.date(2024, 6, 18)
    assert _answer("getusersummary", newest, newest, now) == []
    both = _answer("getusersummary", before, newest, now)
    assert {r["ref_date"] for r in both} == {str(before), str(newest)}
    assert [r for r in both if r["ref_date"] == str(newest)] == _rows("getusersummary", newest)
    assert _answer("getusersummary", before, before, now) == _rows("getusersummary", before)
    assert _answer("getusersummary", newest, newest, now, newest_alone_empty=False) == _rows("getusersummary", newest)
    assert _answer("getusercumulate", newest, newest, now) == _rows("getusercumulate", newest)


# --- requests and determinism ---------------------------------------------------------------


@pytest.mark.parametrize("name", NEW)
def test_a_window_one_day_wider_than_the_span_or_ending_today_gets_61501(name: str) -> None:
    now = _at(dt.date(2024, 6, 20))
    span = FACTS[name].max_span
    begin = dt.date(2024, 5, 1)
    assert parse_range(FACTS[name], {"begin_date": str(begin), "end_date": str(begin + dt.timedelta(days=span - 1))},
                       now)
    for end in (begin + dt.timedelta(days=span), dt.date(2024, 6, 20)):
        with pytest.raises(ApiError) as info:
            parse_range(FACTS[name], {"begin_date": str(begin), "end_date": str(end)}, now)
        assert info.value.errcode == 61501


def test_max_spans_override_lets_a_week_endpoint_take_a_month_long_window() -> None:
    state = SimulatorState(SimulatorConfig(seed=SEED, max_spans={"getupstreammsgweek": 30}))
    state.clock.set(_at(dt.date(2024, 6, 20)))
    rows = state.truth(APPID, "getupstreammsgweek", "2024-05-21", "2024-06-19")
    assert sorted({r["ref_date"] for r in rows}) == ["2024-05-27", "2024-06-03", "2024-06-10"]
    with pytest.raises(ApiError):
        SimulatorState(SimulatorConfig(seed=SEED)).truth(APPID, "getupstreammsgweek", "2024-06-03", "2024-06-04")


@pytest.mark.parametrize("name", NEW)
def test_rows_are_deterministic_per_seed_and_appid(name: str) -> None:
    label = dt.date(2024, 4, 1)  # a Monday and a 1st
    rows = rows_for_day(name, SEED, APPID, label, LATE)
    assert rows and rows == rows_for_day(name, SEED, APPID, label, LATE)
    assert rows != rows_for_day(name, SEED + 1, APPID, label, LATE)
    assert rows != rows_for_day(name, SEED, "wx_another", label, LATE)
    assert all(isinstance(v, int) for r in rows for k, v in r.items() if k != "ref_date")
