"""The simulator pinned to the WeChat reference, one rule per test, over real HTTP."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
import requests
from wechat_datacube_dev.simulator import SimulatorServer

from tests.fixtures.simulator import TEST_APPID, TEST_AUTHORIZER_APPID, TEST_AUTHORIZER_REFRESH_TOKEN
from tests.fixtures.token_requests import authorizer_token, classic_token, component_token, stable_token
from wechat_datacube.endpoints import ENDPOINTS

BJ = dt.timezone(dt.timedelta(hours=8))
#: A fixed "now" for data tests: 10:00 Beijing, after the default ready hour.
NOW = dt.datetime(2024, 6, 20, 10, 0, tzinfo=BJ)
YESTERDAY = dt.date(2024, 6, 19)
NOW_REPLACEMENT = dt.datetime(2025, 12, 20, 10, 0, tzinfo=BJ)


# --- helpers -------------------------------------------------------------------------


def call(sim: SimulatorServer, endpoint: str, begin: dt.date | str, end: dt.date | str | None = None,
         token: str | None = None) -> dict[str, Any]:
    end = begin if end is None else end
    body = {"begin_date": str(begin), "end_date": str(end)}
    params = {"access_token": token} if token is not None else {}
    return requests.post(f"{sim.base_url}/datacube/{endpoint}", params=params, json=body, timeout=5).json()


@pytest.fixture
def token(simulator: SimulatorServer) -> str:
    simulator.state.clock.set(NOW)
    return classic_token(simulator)["access_token"]


def day_with_articles(sim: SimulatorServer, latest: dt.date) -> dt.date:
    """The newest send date <= latest on which the test account sent articles."""
    for back in range(60):
        day = latest - dt.timedelta(days=back)
        if sim.state.truth(TEST_APPID, "getarticletotal", day, day):
            return day
    raise AssertionError("no articles in 60 days")


# --- classic and stable tokens ---------------------------------------------------------


def test_classic_token_returns_token_valid_7200_seconds(simulator: SimulatorServer) -> None:
    answer = classic_token(simulator)
    assert answer["expires_in"] == 7200
    assert len(answer["access_token"]) > 30


def test_classic_token_with_unknown_appid_gives_40013(simulator: SimulatorServer) -> None:
    assert classic_token(simulator, appid="wx_nobody")["errcode"] == 40013


def test_classic_token_with_wrong_secret_gives_40125(simulator: SimulatorServer) -> None:
    assert classic_token(simulator, secret="wrong")["errcode"] == 40125


def test_superseded_classic_token_works_300_seconds_more_then_gives_40001(simulator: SimulatorServer) -> None:
    simulator.state.clock.set(NOW)
    old = classic_token(simulator)["access_token"]
    new = classic_token(simulator)["access_token"]
    assert new != old
    simulator.state.clock.advance(299)
    assert "list" in call(simulator, "getusershare", YESTERDAY, token=old)
    simulator.state.clock.advance(2)
    assert call(simulator, "getusershare", YESTERDAY, token=old)["errcode"] == 40001
    assert "list" in call(simulator, "getusershare", YESTERDAY, token=new)


def test_token_expires_after_7200_seconds_with_42001(simulator: SimulatorServer) -> None:
    simulator.state.clock.set(NOW)
    tok = classic_token(simulator)["access_token"]
    simulator.state.clock.advance(7199)
    assert "list" in call(simulator, "getusershare", YESTERDAY - dt.timedelta(days=1), token=tok)
    simulator.state.clock.advance(1)
    assert call(simulator, "getusershare", YESTERDAY - dt.timedelta(days=1), token=tok)["errcode"] == 42001


def test_classic_token_daily_limit_gives_45009_until_beijing_midnight(simulator_factory) -> None:
    sim = simulator_factory(classic_daily_limit=3)
    sim.state.clock.set(dt.datetime(2024, 6, 20, 23, 0, tzinfo=BJ))
    assert all("access_token" in classic_token(sim) for _ in range(3))
    assert classic_token(sim)["errcode"] == 45009
    sim.state.clock.advance(3600)  # 00:00 Beijing: a new quota day
    assert "access_token" in classic_token(sim)


def test_stable_token_twice_returns_the_same_token(simulator: SimulatorServer) -> None:
    first, second = stable_token(simulator), stable_token(simulator)
    assert first["access_token"] == second["access_token"]


def test_stable_token_is_isolated_from_classic_tokens(simulator: SimulatorServer) -> None:
    simulator.state.clock.set(NOW)
    stable = stable_token(simulator)["access_token"]
    classic_token(simulator)
    classic_token(simulator)
    simulator.state.clock.advance(600)
    assert "list" in call(simulator, "getusershare", YESTERDAY, token=stable)


def test_stable_token_force_refresh_invalidates_the_old_token(simulator: SimulatorServer) -> None:
    simulator.state.clock.set(NOW)
    old = stable_token(simulator)["access_token"]
    new = stable_token(simulator, force_refresh=True)["access_token"]
    assert new != old
    assert call(simulator, "getusershare", YESTERDAY, token=old)["errcode"] == 40001
    assert "list" in call(simulator, "getusershare", YESTERDAY, token=new)


def test_stable_token_force_refresh_is_limited_per_day(simulator_factory) -> None:
    sim = simulator_factory(stable_force_refresh_daily_limit=2)
    assert all("access_token" in stable_token(sim, force_refresh=True) for _ in range(2))
    assert stable_token(sim, force_refresh=True)["errcode"] == 45009


def test_stable_token_near_expiry_is_replaced_by_a_new_one(simulator: SimulatorServer) -> None:
    simulator.state.clock.set(NOW)
    old = stable_token(simulator)
    simulator.state.clock.advance(7200 - 301)
    assert stable_token(simulator)["access_token"] == old["access_token"]
    simulator.state.clock.advance(2)
    renewed = stable_token(simulator)
    assert renewed["access_token"] != old["access_token"]
    assert renewed["expires_in"] == 7200
    assert "list" in call(simulator, "getusershare", YESTERDAY, token=old["access_token"])


def test_datacube_without_token_gives_41001(simulator: SimulatorServer) -> None:
    simulator.state.clock.set(NOW)
    assert call(simulator, "getusershare", YESTERDAY)["errcode"] == 41001


def test_datacube_with_unknown_token_gives_40014(simulator: SimulatorServer) -> None:
    simulator.state.clock.set(NOW)
    assert call(simulator, "getusershare", YESTERDAY, token="not-a-token")["errcode"] == 40014


# --- third-party platform tokens ---------------------------------------------------------


def test_authorizer_token_from_component_token_opens_datacube(simulator: SimulatorServer) -> None:
    simulator.state.clock.set(NOW)
    component = component_token(simulator)
    assert component["expires_in"] == 7200
    answer = authorizer_token(simulator, component["component_access_token"], TEST_AUTHORIZER_REFRESH_TOKEN)
    assert answer["expires_in"] == 7200
    rows = call(simulator, "getusershare", YESTERDAY, token=answer["authorizer_access_token"])["list"]
    assert rows == simulator.state.truth(TEST_AUTHORIZER_APPID, "getusershare", YESTERDAY, YESTERDAY)


def test_authorizer_refresh_token_rotates_and_the_old_one_gives_61023(simulator: SimulatorServer) -> None:
    component = component_token(simulator)["component_access_token"]
    first = authorizer_token(simulator, component, TEST_AUTHORIZER_REFRESH_TOKEN)
    assert first["authorizer_refresh_token"] != TEST_AUTHORIZER_REFRESH_TOKEN
    assert authorizer_token(simulator, component, TEST_AUTHORIZER_REFRESH_TOKEN)["errcode"] == 61023
    second = authorizer_token(simulator, component, first["authorizer_refresh_token"])
    assert "authorizer_access_token" in second


def test_component_token_with_wrong_verify_ticket_gives_61006(simulator: SimulatorServer) -> None:
    assert component_token(simulator, ticket="stale-ticket")["errcode"] == 61006


def test_component_token_does_not_open_datacube(simulator: SimulatorServer) -> None:
    simulator.state.clock.set(NOW)
    component = component_token(simulator)["component_access_token"]
    assert call(simulator, "getusershare", YESTERDAY, token=component)["errcode"] == 40014


# --- IP whitelist ------------------------------------------------------------------------


def test_caller_outside_ip_whitelist_gets_40164_on_every_call(simulator_factory) -> None:
    sim = simulator_factory(ip_whitelist=["10.20.30.40"])
    answer = classic_token(sim)
    assert answer["errcode"] == 40164
    assert "127.0.0.1" in answer["errmsg"]
    assert call(sim, "getusershare", YESTERDAY, token="whatever")["errcode"] == 40164


def test_caller_on_ip_whitelist_is_served(simulator_factory) -> None:
    sim = simulator_factory(ip_whitelist=["10.20.30.40", "127.0.0.1"])
    assert "access_token" in classic_token(sim)


# --- date rules ----------------------------------------------------------------------------


def test_getusershare_seven_day_span_returns_rows_per_share_scene(simulator, token) -> None:
    rows = call(simulator, "getusershare", YESTERDAY - dt.timedelta(days=6), YESTERDAY, token=token)["list"]
    assert len({r["ref_date"] for r in rows}) == 7
    assert {r["share_scene"] for r in rows} == {1, 2, 255}
    assert all(set(r) == {"ref_date", "share_scene", "share_user", "share_count"} for r in rows)


def test_span_wider_than_max_span_gives_61501(simulator, token) -> None:
    answer = call(simulator, "getusershare", YESTERDAY - dt.timedelta(days=7), YESTERDAY, token=token)
    assert answer["errcode"] == 61501


def test_begin_after_end_gives_61501(simulator, token) -> None:
    assert call(simulator, "getuserread", YESTERDAY, YESTERDAY - dt.timedelta(days=1), token=token)["errcode"] == 61501


def test_end_date_today_in_beijing_gives_61501(simulator, token) -> None:
    today = NOW.date()
    assert call(simulator, "getusershare", today, token=token)["errcode"] == 61501


def test_end_date_is_judged_in_beijing_time_not_utc(simulator, token) -> None:
    simulator.state.clock.set(dt.datetime(2024, 6, 20, 1, 0, tzinfo=BJ))  # still 2024-06-19 in UTC
    fresh = classic_token(simulator)["access_token"]
    assert call(simulator, "getusershare", "2024-06-20", token=fresh)["errcode"] == 61501
    assert "list" in call(simulator, "getusershare", "2024-06-19", token=fresh)


def test_bad_date_format_gives_61500(simulator, token) -> None:
    assert call(simulator, "getusershare", "2024/06/10", token=token)["errcode"] == 61500


def test_dates_before_2014_12_01_give_an_empty_list(simulator, token) -> None:
    assert call(simulator, "getusershare", "2014-11-24", "2014-11-30", token=token) == {"list": []}


def test_unknown_datacube_endpoint_gives_48001(simulator, token) -> None:
    assert call(simulator, "getnothing", YESTERDAY, token=token)["errcode"] == 48001


# --- data shape ----------------------------------------------------------------------------


def test_getarticletotal_ten_days_back_has_seven_cumulative_stat_dates(simulator, token) -> None:
    send_date = day_with_articles(simulator, YESTERDAY - dt.timedelta(days=9))
    rows = call(simulator, "getarticletotal", send_date, token=token)["list"]
    assert rows
    for row in rows:
        assert re.fullmatch(r"\d+_\d", row["msgid"])
        details = row["details"]
        assert [d["stat_date"] for d in details] == [str(send_date + dt.timedelta(days=k)) for k in range(7)]
        for metric in ("int_page_read_user", "share_user", "int_page_from_session_read_user", "target_user"):
            values = [d[metric] for d in details]
            assert values == sorted(values), metric
        assert set(details[0]) == set(ENDPOINTS["getarticletotal"].column_names) - {"ref_date", "msgid", "title"}


def test_getarticletotal_for_yesterday_has_one_stat_date(simulator, token) -> None:
    send_date = day_with_articles(simulator, YESTERDAY)
    simulator.state.clock.set(dt.datetime.combine(send_date + dt.timedelta(days=1), dt.time(10), tzinfo=BJ))
    fresh = classic_token(simulator)["access_token"]
    rows = call(simulator, "getarticletotal", send_date, token=fresh)["list"]
    assert rows and all(len(r["details"]) == 1 for r in rows)


def test_getarticlesummary_lists_articles_of_the_last_seven_days(simulator, token) -> None:
    rows = call(simulator, "getarticlesummary", YESTERDAY, token=token)["list"]
    sent = {r["msgid"] for k in range(7)
            for r in simulator.state.truth(TEST_APPID, "getarticletotal", YESTERDAY - dt.timedelta(days=k),
                                           YESTERDAY - dt.timedelta(days=k))}
    assert rows and {r["msgid"] for r in rows} <= sent
    assert all(r["int_page_read_count"] + r["share_count"] + r["add_to_fav_count"] >= 3 for r in rows)


def test_getuserread_all_row_is_not_the_sum_of_the_channel_rows(simulator, token) -> None:
    rows = call(simulator, "getuserread", YESTERDAY, token=token)["list"]
    assert sorted(r["user_source"] for r in rows) == [0, 1, 2, 4, 5, 6, 7, 99999999]
    total = next(r for r in rows if r["user_source"] == 99999999)
    channels = [r for r in rows if r["user_source"] != 99999999]
    assert sum(r["int_page_read_user"] for r in channels) != total["int_page_read_user"]
    assert "ori_page_read_user" in total and "add_to_fav_user" in total
    assert all("ori_page_read_user" not in r and "add_to_fav_count" not in r for r in channels)


def test_getuserread_before_2020_02_28_has_only_the_all_row(simulator, token) -> None:
    rows = call(simulator, "getuserread", "2020-02-25", "2020-02-27", token=token)["list"]
    assert len(rows) == 3 and {r["user_source"] for r in rows} == {99999999}


def test_getuserreadhour_has_24_hours_per_user_source(simulator, token) -> None:
    rows = call(simulator, "getuserreadhour", YESTERDAY, token=token)["list"]
    for source in (99999999, 0, 1, 2, 4, 5, 6, 7):
        hours = [r["ref_hour"] for r in rows if r["user_source"] == source]
        assert hours == list(range(0, 2400, 100))


def test_getusersharehour_has_24_hours_per_share_scene(simulator, token) -> None:
    rows = call(simulator, "getusersharehour", YESTERDAY, token=token)["list"]
    assert len(rows) == 72
    for scene in (1, 2, 255):
        assert [r["ref_hour"] for r in rows if r["share_scene"] == scene] == list(range(0, 2400, 100))


def test_legacy_endpoints_never_send_is_delay(simulator, token) -> None:
    for name in ("getarticlesummary", "getarticletotal", "getuserread", "getusershare"):
        assert "is_delay" not in call(simulator, name, YESTERDAY, token=token)


def test_replacement_endpoints_carry_registry_fields_in_detail_and_is_delay_false(simulator: SimulatorServer) -> None:
    simulator.state.clock.set(NOW_REPLACEMENT)
    tok = classic_token(simulator)["access_token"]
    day = NOW_REPLACEMENT.date() - dt.timedelta(days=1)
    read = call(simulator, "getarticleread", day, token=tok)
    assert read["is_delay"] is False and read["list"]
    assert all({"scene_desc", "user_count"} == set(s) for r in read["list"] for s in r["detail"]["read_user_source"])
    assert all({"ref_date", "msgid", "detail"} == set(r) and "share_user" in r["detail"]
               for r in call(simulator, "getarticleshare", day, token=tok)["list"])
    biz = call(simulator, "getbizsummary", day, token=tok)["list"]
    assert len(biz) == 1 and set(biz[0]) == {"ref_date", "detail"}
    assert set(ENDPOINTS["getbizsummary"].column_names) - {"ref_date"} <= set(biz[0]["detail"])


def test_getarticletotaldetail_is_cumulative_for_up_to_30_days(simulator: SimulatorServer) -> None:
    simulator.state.clock.set(NOW_REPLACEMENT)
    tok = classic_token(simulator)["access_token"]
    send_date = day_with_articles(simulator, NOW_REPLACEMENT.date() - dt.timedelta(days=35))
    rows = call(simulator, "getarticletotaldetail", send_date, token=tok)["list"]
    assert rows
    for row in rows:
        assert len(row["detail_list"]) == 30
        reads = [d["read_user"] for d in row["detail_list"]]
        assert reads == sorted(reads)


#: The official shapes (reference section 3), written out here so that neither the
#: simulator's facts nor the registry can vouch for themselves: top-level keys of a list
#: item, and the documented numbers in its ``detail`` (or each ``detail_list`` element).
OFFICIAL_SHAPES: dict[str, tuple[set[str], str, set[str]]] = {
    "getarticleread": ({"ref_date", "msgid"}, "detail", {"read_user", "read_user_source"}),
    "getarticleshare": ({"ref_date", "msgid"}, "detail", {"share_user"}),
    "getbizsummary": ({"ref_date"}, "detail", {
        "read_user", "read_user_source", "share_user", "zaikan_user", "like_user", "comment_count",
        "collection_user", "redirect_ori_page_user", "send_page_count"}),
    "getarticletotaldetail": ({"ref_date", "msgid", "publish_type"}, "detail_list", {
        "stat_date", "read_user", "read_user_source", "share_user", "read_subscribe_user", "read_delivery_rate",
        "read_finish_rate", "read_avg_activetime", "zaikan_user", "like_user", "praise_money", "comment_count",
        "collection_user", "read_jump_position"}),
}


def replacement_answer(sim: SimulatorServer, endpoint: str) -> dict[str, Any]:
    """A published, fault-free answer of ``endpoint`` (getarticletotaldetail: a send date with a full series)."""
    sim.state.clock.set(NOW_REPLACEMENT)
    tok = classic_token(sim)["access_token"]
    day = NOW_REPLACEMENT.date() - dt.timedelta(days=1)
    if endpoint == "getarticletotaldetail":
        day = day_with_articles(sim, day - dt.timedelta(days=30))
    return call(sim, endpoint, day, token=tok)


@pytest.mark.parametrize("endpoint", sorted(OFFICIAL_SHAPES))
def test_replacement_endpoint_answers_the_official_nested_shape(simulator: SimulatorServer, endpoint: str) -> None:
    top, holder, documented = OFFICIAL_SHAPES[endpoint]
    body = replacement_answer(simulator, endpoint)
    assert set(body) == {"list", "is_delay"} and body["is_delay"] is False and body["list"]
    for item in body["list"]:
        assert set(item) == top | {holder}  # no title, no flat metrics beside the keys
        numbers = item[holder] if isinstance(item[holder], list) else [item[holder]]
        assert numbers
        for detail in numbers:
            assert documented <= set(detail)
            assert len(set(detail) - documented) == 1  # a field WeChat added without notice
            if "read_user_source" in detail:
                first, *scenes = detail["read_user_source"]
                assert first == {"scene_desc": "全部", "user_count": detail["read_user"]}
                assert scenes and all(set(s) == {"scene_desc", "user_count"} for s in scenes)


def test_read_scenes_overlap_so_they_sum_past_the_all_entry(simulator: SimulatorServer) -> None:
    (item,) = replacement_answer(simulator, "getbizsummary")["list"]
    first, *scenes = item["detail"]["read_user_source"]
    assert sum(s["user_count"] for s in scenes) > first["user_count"] == item["detail"]["read_user"]


def test_getarticletotaldetail_values_have_the_documented_units(simulator: SimulatorServer) -> None:
    for item in replacement_answer(simulator, "getarticletotaldetail")["list"]:
        assert item["publish_type"] in (0, 1)
        for detail in item["detail_list"]:
            assert 0.1 <= detail["read_avg_activetime"] <= 3.0  # minutes
            assert isinstance(detail["praise_money"], int)  # fen
            assert 0 <= detail["read_delivery_rate"] <= 1 and 0 <= detail["read_finish_rate"] <= 1
            positions = detail["read_jump_position"]
            assert [p["position"] for p in positions] == list(range(1, len(positions) + 1))
            assert all(0 <= p["rate"] <= 1 for p in positions)


def test_quiet_day_is_an_empty_list_with_is_delay_false(simulator_factory) -> None:
    sim = simulator_factory(quiet_day_rate=1.0)  # every day without a mass send is quiet
    sim.state.clock.set(NOW_REPLACEMENT)
    tok = classic_token(sim)["access_token"]
    day = next(d for d in (NOW_REPLACEMENT.date() - dt.timedelta(days=k) for k in range(1, 30))
               if not sim.state.truth(TEST_APPID, "getarticletotal", d, d))
    for endpoint in ("getarticleread", "getarticleshare", "getbizsummary", "getarticletotaldetail"):
        assert call(sim, endpoint, day, token=tok) == {"list": [], "is_delay": False}, endpoint
    assert call(sim, "getuserread", day, token=tok)["list"]  # the legacy endpoints still answer
    busy = day_with_articles(sim, NOW_REPLACEMENT.date() - dt.timedelta(days=1))
    assert call(sim, "getbizsummary", busy, token=tok)["list"]


def test_default_span_of_getbizsummary_is_30_days(simulator: SimulatorServer) -> None:
    simulator.state.clock.set(NOW_REPLACEMENT)
    tok = classic_token(simulator)["access_token"]
    end = NOW_REPLACEMENT.date() - dt.timedelta(days=1)
    assert "list" in call(simulator, "getbizsummary", end - dt.timedelta(days=29), end, token=tok)
    assert call(simulator, "getbizsummary", end - dt.timedelta(days=30), end, token=tok)["errcode"] == 61501


def test_max_spans_override_makes_a_wider_window_answer_61501(simulator_factory) -> None:
    sim = simulator_factory(max_spans={"getbizsummary": 1})
    sim.state.clock.set(NOW_REPLACEMENT)
    tok = classic_token(sim)["access_token"]
    end = NOW_REPLACEMENT.date() - dt.timedelta(days=1)
    assert call(sim, "getbizsummary", end - dt.timedelta(days=1), end, token=tok)["errcode"] == 61501
    assert len(call(sim, "getbizsummary", end, token=tok)["list"]) == 1
    assert "list" in call(sim, "getusershare", end - dt.timedelta(days=6), end, token=tok)  # others unchanged


def test_retired_endpoint_answers_47009(simulator_factory) -> None:
    sim = simulator_factory(retired_endpoints=["getarticlesummary", "getarticletotal"])
    sim.state.clock.set(NOW_REPLACEMENT)
    tok = classic_token(sim)["access_token"]
    day = NOW_REPLACEMENT.date() - dt.timedelta(days=1)
    for endpoint in ("getarticlesummary", "getarticletotal"):
        answer = call(sim, endpoint, day, token=tok)
        assert set(answer) == {"errcode", "errmsg"} and answer["errcode"] == 47009
        assert answer["errmsg"].startswith("api offline, please use the new api")
    assert call(sim, "getarticlesummary", "2024-01-01", "2024-01-09", token=tok)["errcode"] == 47009  # before dates
    assert "list" in call(sim, "getarticleread", day, token=tok)
    params = {"appid": TEST_APPID, "endpoint": "getarticletotal", "begin_date": str(day), "end_date": str(day)}
    assert requests.get(f"{sim.base_url}/_sim/truth", params=params, timeout=5).json()["errcode"] == 47009


def test_replacement_endpoints_give_nothing_before_2025_11_01(simulator: SimulatorServer) -> None:
    simulator.state.clock.set(NOW_REPLACEMENT)
    tok = classic_token(simulator)["access_token"]
    assert call(simulator, "getbizsummary", "2025-10-31", token=tok) == {"list": [], "is_delay": False}


# --- readiness -----------------------------------------------------------------------------


def test_yesterday_is_not_published_before_the_ready_hour(simulator: SimulatorServer) -> None:
    simulator.state.clock.set(dt.datetime(2024, 6, 20, 7, 59, tzinfo=BJ))
    tok = classic_token(simulator)["access_token"]
    assert call(simulator, "getusershare", YESTERDAY, token=tok) == {"list": []}
    simulator.state.clock.advance(60)
    assert len(call(simulator, "getusershare", YESTERDAY, token=tok)["list"]) == 3


def test_replacement_endpoint_says_is_delay_until_the_ready_hour(simulator: SimulatorServer) -> None:
    simulator.state.clock.set(dt.datetime(2025, 12, 20, 7, 59, tzinfo=BJ))
    tok = classic_token(simulator)["access_token"]
    assert call(simulator, "getbizsummary", "2025-12-19", token=tok) == {"list": [], "is_delay": True}
    simulator.state.clock.advance(60)
    later = call(simulator, "getbizsummary", "2025-12-19", token=tok)
    assert later["is_delay"] is False and len(later["list"]) == 1


def test_ready_hour_is_configurable(simulator_factory) -> None:
    sim = simulator_factory(ready_hour=11)
    sim.state.clock.set(dt.datetime(2024, 6, 20, 10, 30, tzinfo=BJ))
    assert sim.state.truth(TEST_APPID, "getusershare", YESTERDAY, YESTERDAY) == []
    sim.state.clock.advance(1800)
    assert len(sim.state.truth(TEST_APPID, "getusershare", YESTERDAY, YESTERDAY)) == 3


# --- determinism and truth -----------------------------------------------------------------


def test_truth_equals_a_live_call(simulator, token) -> None:
    for name in ("getarticlesummary", "getarticletotal", "getuserread", "getuserreadhour", "getusersharehour"):
        assert call(simulator, name, YESTERDAY, token=token)["list"] == simulator.state.truth(
            TEST_APPID, name, YESTERDAY, YESTERDAY)


def test_truth_over_http_equals_a_live_call(simulator, token) -> None:
    params = {"appid": TEST_APPID, "endpoint": "getuserread", "begin_date": "2024-06-17", "end_date": "2024-06-19"}
    truth = requests.get(f"{simulator.base_url}/_sim/truth", params=params, timeout=5).json()
    assert truth["list"] == call(simulator, "getuserread", "2024-06-17", "2024-06-19", token=token)["list"]


def test_same_seed_gives_the_same_data_on_another_server(simulator, simulator_factory) -> None:
    other = simulator_factory()
    for sim in (simulator, other):
        sim.state.clock.set(NOW)
    assert other.state.truth(TEST_APPID, "getusershare", "2024-06-01", "2024-06-07") == simulator.state.truth(
        TEST_APPID, "getusershare", "2024-06-01", "2024-06-07")


def test_another_appid_or_seed_gives_other_data(simulator, simulator_factory) -> None:
    simulator.state.clock.set(NOW)
    mine = simulator.state.truth(TEST_APPID, "getuserread", "2024-06-01", "2024-06-03")
    assert simulator.state.truth("wx_other", "getuserread", "2024-06-01", "2024-06-03") != mine
    reseeded = simulator_factory(seed=7)
    reseeded.state.clock.set(NOW)
    assert reseeded.state.truth(TEST_APPID, "getuserread", "2024-06-01", "2024-06-03") != mine


# --- counters ------------------------------------------------------------------------------


def test_counters_count_token_and_data_calls_per_path_and_appid(simulator, token) -> None:
    call(simulator, "getusershare", YESTERDAY, token=token)
    call(simulator, "getusershare", YESTERDAY, token=token)
    call(simulator, "getuserread", YESTERDAY, token="bogus")
    counts = simulator.state.counters()
    assert counts["paths"] == {"/cgi-bin/token": 1, "/datacube/getusershare": 2, "/datacube/getuserread": 1}
    assert counts["appids"] == {TEST_APPID: {"/cgi-bin/token": 1, "/datacube/getusershare": 2}}


def test_counters_reset_over_http(simulator, token) -> None:
    assert requests.post(f"{simulator.base_url}/_sim/counters/reset", timeout=5).json() == {"paths": {}, "appids": {}}
    call(simulator, "getusershare", YESTERDAY, token=token)
    assert requests.get(f"{simulator.base_url}/_sim/counters", timeout=5).json()["paths"] == {
        "/datacube/getusershare": 1}


def test_counters_are_exact_under_concurrency(simulator, token) -> None:
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: call(simulator, "getusershare", YESTERDAY, token=token), range(40)))
    assert simulator.state.counters()["appids"][TEST_APPID]["/datacube/getusershare"] == 40


# --- faults --------------------------------------------------------------------------------


def test_errcode_fault_answers_the_given_errcode_count_times(simulator, token) -> None:
    simulator.state.set_faults([{"kind": "errcode", "errcode": -1, "count": 2, "path": "/datacube/"}])
    assert [call(simulator, "getusershare", YESTERDAY, token=token).get("errcode") for _ in range(3)] == [-1, -1, None]


def test_http_status_fault_answers_5xx(simulator, token) -> None:
    simulator.state.set_faults([{"kind": "http_status", "status": 503, "count": 1}])
    body = {"begin_date": str(YESTERDAY), "end_date": str(YESTERDAY)}
    response = requests.post(f"{simulator.base_url}/datacube/getusershare", params={"access_token": token},
                             json=body, timeout=5)
    assert response.status_code == 503


def test_slow_fault_delays_the_answer(simulator, token) -> None:
    simulator.state.set_faults([{"kind": "slow", "delay": 0.3, "count": 1}])
    start = time.monotonic()
    assert "list" in call(simulator, "getusershare", YESTERDAY, token=token)
    assert time.monotonic() - start >= 0.3


def test_slow_fault_beyond_the_client_timeout_times_out(simulator, token) -> None:
    simulator.state.set_faults([{"kind": "slow", "delay": 0.5, "count": 1}])
    with pytest.raises(requests.Timeout):
        requests.post(f"{simulator.base_url}/datacube/getusershare", params={"access_token": token},
                      json={"begin_date": str(YESTERDAY), "end_date": str(YESTERDAY)}, timeout=0.1)


def test_drop_fault_closes_the_connection_without_answer(simulator, token) -> None:
    simulator.state.set_faults([{"kind": "drop", "count": 1}])
    with pytest.raises(requests.ConnectionError):
        call(simulator, "getusershare", YESTERDAY, token=token)
    assert "list" in call(simulator, "getusershare", YESTERDAY, token=token)


def test_malformed_json_fault_sends_a_truncated_body(simulator, token) -> None:
    simulator.state.set_faults([{"kind": "malformed_json", "count": 1}])
    with pytest.raises(requests.JSONDecodeError):
        call(simulator, "getusershare", YESTERDAY, token=token)


def test_html_fault_sends_an_html_page_with_status_200(simulator, token) -> None:
    simulator.state.set_faults([{"kind": "html", "count": 1}])
    response = requests.post(f"{simulator.base_url}/datacube/getusershare", params={"access_token": token},
                             json={"begin_date": str(YESTERDAY), "end_date": str(YESTERDAY)}, timeout=5)
    assert response.status_code == 200 and response.text.startswith("<html>")


def test_stray_rows_fault_adds_rows_outside_the_requested_range(simulator, token) -> None:
    simulator.state.set_faults([{"kind": "stray_rows", "count": 1}])
    rows = call(simulator, "getusershare", YESTERDAY, token=token)["list"]
    inside = [r for r in rows if r["ref_date"] == str(YESTERDAY)]
    assert inside == simulator.state.truth(TEST_APPID, "getusershare", YESTERDAY, YESTERDAY)
    assert len(rows) > len(inside)


def test_extra_fields_fault_adds_unknown_fields_to_rows(simulator, token) -> None:
    simulator.state.set_faults([{"kind": "extra_fields", "count": 1}])
    rows = call(simulator, "getusershare", YESTERDAY, token=token)["list"]
    assert rows and all(set(r) - set(ENDPOINTS["getusershare"].column_names) for r in rows)


def test_empty_fault_returns_an_empty_list_and_is_delay_for_replacements(simulator: SimulatorServer) -> None:
    simulator.state.clock.set(NOW_REPLACEMENT)
    tok = classic_token(simulator)["access_token"]
    simulator.state.set_faults([{"kind": "empty", "count": 2}])
    assert call(simulator, "getusershare", "2025-12-19", token=tok) == {"list": []}
    assert call(simulator, "getbizsummary", "2025-12-19", token=tok) == {"list": [], "is_delay": True}


def test_after_skips_the_first_matching_requests(simulator, token) -> None:
    simulator.state.set_faults([{"kind": "errcode", "errcode": 45011, "after": 2, "count": 1}])
    codes = [call(simulator, "getusershare", YESTERDAY, token=token).get("errcode") for _ in range(4)]
    assert codes == [None, None, 45011, None]


def test_fault_filters_by_path_and_appid(simulator, token) -> None:
    simulator.state.set_faults([
        {"kind": "errcode", "errcode": -1, "path": "/datacube/getuserread"},
        {"kind": "errcode", "errcode": 50002, "appid": "wx_someone_else"},
    ])
    assert call(simulator, "getuserread", YESTERDAY, token=token)["errcode"] == -1
    assert "list" in call(simulator, "getusershare", YESTERDAY, token=token)


def test_rate_fault_is_seeded_and_repeatable(simulator, token) -> None:
    def run() -> list[Any]:
        simulator.state.set_faults([{"kind": "errcode", "errcode": -1, "rate": 0.5}])
        return [call(simulator, "getusershare", YESTERDAY, token=token).get("errcode") for _ in range(12)]

    first = run()
    assert first == run()
    assert -1 in first and None in first


def test_count_fault_is_consumed_exactly_once_under_concurrency(simulator, token) -> None:
    simulator.state.set_faults([{"kind": "errcode", "errcode": -1, "count": 5}])
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: call(simulator, "getusershare", YESTERDAY, token=token), range(30)))
    assert sum(a.get("errcode") == -1 for a in answers) == 5


def test_faults_can_hit_token_endpoints(simulator: SimulatorServer) -> None:
    simulator.state.set_faults([{"kind": "errcode", "errcode": -1, "path": "/cgi-bin/", "count": 1}])
    assert classic_token(simulator)["errcode"] == -1
    assert "access_token" in classic_token(simulator)


def test_faults_set_and_cleared_over_http(simulator, token) -> None:
    url = f"{simulator.base_url}/_sim/faults"
    assert requests.post(url, json={"rules": [{"kind": "errcode", "errcode": 45011}]}, timeout=5).ok
    assert call(simulator, "getusershare", YESTERDAY, token=token)["errcode"] == 45011
    assert requests.delete(url, timeout=5).ok
    assert "list" in call(simulator, "getusershare", YESTERDAY, token=token)


def test_unknown_fault_kind_is_refused_over_http(simulator) -> None:
    response = requests.post(f"{simulator.base_url}/_sim/faults", json={"rules": [{"kind": "gremlins"}]}, timeout=5)
    assert response.status_code == 400


def test_faults_configured_at_start_apply_and_come_back_after_reset(simulator_factory) -> None:
    from tests.fixtures.simulator import make_simulator_config

    sim = simulator_factory(make_simulator_config(faults=[{"kind": "errcode", "errcode": -1, "count": 1}]))
    assert classic_token(sim)["errcode"] == -1
    assert "access_token" in classic_token(sim)
    sim.state.reset()
    assert classic_token(sim)["errcode"] == -1


# --- control API, reset, CLI ---------------------------------------------------------------


def test_clock_set_and_advanced_over_http(simulator) -> None:
    url = f"{simulator.base_url}/_sim/clock"
    answer = requests.post(url, json={"now": "2024-06-20T10:00:00+08:00"}, timeout=5).json()
    assert answer["frozen"] is True and answer["now"] == "2024-06-20T02:00:00+00:00"
    answer = requests.post(url, json={"advance_seconds": 90}, timeout=5).json()
    assert answer["now"] == "2024-06-20T02:01:30+00:00"
    assert requests.post(url, json={"unfreeze": True}, timeout=5).json()["frozen"] is False


def test_issued_tokens_lists_every_token_handed_out(simulator) -> None:
    tokens = [classic_token(simulator)["access_token"], stable_token(simulator)["access_token"]]
    assert simulator.state.issued_tokens() == tokens
    assert requests.get(f"{simulator.base_url}/_sim/tokens", timeout=5).json()["tokens"] == tokens


def test_reset_forgets_tokens_counters_faults_and_clock(simulator, token) -> None:
    simulator.state.set_faults([{"kind": "drop"}])
    assert requests.post(f"{simulator.base_url}/_sim/reset", timeout=5).json() == {"ok": True}
    state = simulator.state
    assert state.issued_tokens() == [] and state.counters()["paths"] == {} and state.faults() == []
    assert abs((state.clock.now() - dt.datetime.now(dt.UTC)).total_seconds()) < 5
    assert call(simulator, "getusershare", YESTERDAY, token=token)["errcode"] == 40014


def test_cli_serves_with_demo_credentials_and_start_faults(tmp_path) -> None:
    port = _free_port()
    faults = '[{"kind": "errcode", "errcode": -1, "count": 1}]'
    proc = subprocess.Popen(
        [sys.executable, "-m", "wechat_datacube_dev.simulator", "--port", str(port), "--faults", faults],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ},
    )
    try:
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first
        assert "wx_demo_account" in proc.stdout.readline()
        params = {"grant_type": "client_credential", "appid": "wx_demo_account", "secret": "demo-app-secret-change-me"}
        url = f"http://127.0.0.1:{port}/cgi-bin/token"
        assert requests.get(url, params=params, timeout=5).json()["errcode"] == -1
        assert "access_token" in requests.get(url, params=params, timeout=5).json()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_keep_alive_session_answers_a_hundred_calls_quickly(simulator, token) -> None:
    """Guards against per-call stalls (e.g. Nagle + delayed ACK: ~40 ms each): backfills make ~2000 calls."""
    session = requests.Session()
    body = {"begin_date": str(YESTERDAY), "end_date": str(YESTERDAY)}
    start = time.monotonic()
    for _ in range(100):
        response = session.post(f"{simulator.base_url}/datacube/getuserreadhour", params={"access_token": token},
                                json=body, timeout=5)
        assert "list" in response.json()
    assert time.monotonic() - start < 3
