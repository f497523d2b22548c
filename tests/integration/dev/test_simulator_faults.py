"""The simulator's data faults that shrink or break a successful answer: fewer_rows, bad_rows.

Also in the replacement family's nested shapes, where a key lives at the top of a list item
and a metric inside its ``detail`` object (or ``detail_list`` element).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests
from wechat_datacube_dev.simulator import SimulatorServer

from tests.fixtures.simulator import TEST_APPID, TEST_SECRET
from wechat_datacube.dates import BEIJING

DAY = dt.date(2026, 6, 12)  # three articles were sent that day


@pytest.fixture
def sim(simulator: SimulatorServer) -> SimulatorServer:
    simulator.state.clock.set(dt.datetime(2026, 6, 20, 13, tzinfo=BEIJING))
    return simulator


def call(sim: SimulatorServer, endpoint: str, begin: dt.date, end: dt.date) -> dict[str, Any]:
    token = requests.get(
        f"{sim.base_url}/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": TEST_APPID, "secret": TEST_SECRET},
        timeout=5,
    ).json()["access_token"]
    response = requests.post(
        f"{sim.base_url}/datacube/{endpoint}",
        params={"access_token": token},
        json={"begin_date": begin.isoformat(), "end_date": end.isoformat()},
        timeout=5,
    )
    return response.json()


def test_fewer_rows_keeps_only_the_first_rows(sim: SimulatorServer) -> None:
    sim.state.set_faults([{"kind": "fewer_rows", "keep": 2, "count": 1}])
    truth = sim.state.truth(TEST_APPID, "getuserread", DAY, DAY)
    assert call(sim, "getuserread", DAY, DAY)["list"] == truth[:2]
    assert call(sim, "getuserread", DAY, DAY)["list"] == truth  # count 1: the next answer is whole again


def test_bad_rows_no_list_answers_errcode_0_without_a_list(sim: SimulatorServer) -> None:
    sim.state.set_faults([{"kind": "bad_rows", "variant": "no_list"}])
    assert call(sim, "getusershare", DAY, DAY) == {"errcode": 0, "errmsg": "ok"}


def test_bad_rows_missing_key_drops_a_key_field_other_than_ref_date(sim: SimulatorServer) -> None:
    sim.state.set_faults([{"kind": "bad_rows", "variant": "missing_key"}])
    rows = call(sim, "getusershare", DAY, DAY)["list"]
    assert "share_scene" not in rows[0] and rows[0]["ref_date"] == DAY.isoformat()
    assert all("share_scene" in r for r in rows[1:])
    nested = call(sim, "getarticletotal", DAY, DAY)["list"]
    assert "stat_date" not in nested[0]["details"][0] and "msgid" in nested[0]


def test_bad_rows_wrong_type_turns_a_metric_into_text(sim: SimulatorServer) -> None:
    sim.state.set_faults([{"kind": "bad_rows", "variant": "wrong_type"}])
    rows = call(sim, "getusershare", DAY, DAY)["list"]
    assert rows[0]["share_user"] == "n/a" and rows[0]["share_scene"] == 1


def test_bad_rows_wrong_type_breaks_the_metric_inside_detail(sim: SimulatorServer) -> None:
    sim.state.set_faults([{"kind": "bad_rows", "variant": "wrong_type"}])
    truth = sim.state.truth(TEST_APPID, "getarticleread", DAY, DAY)
    rows = call(sim, "getarticleread", DAY, DAY)["list"]
    assert rows[0]["detail"]["read_user"] == "n/a" and "read_user" not in rows[0]
    assert {k: v for k, v in rows[0].items() if k != "detail"} == {k: v for k, v in truth[0].items() if k != "detail"}
    assert rows[1:] == truth[1:]
    biz = call(sim, "getbizsummary", DAY, DAY)["list"]
    assert biz[0]["detail"]["read_user"] == "n/a" and biz[0]["ref_date"] == DAY.isoformat()


def test_bad_rows_missing_key_drops_a_top_level_key_of_a_detail_item(sim: SimulatorServer) -> None:
    sim.state.set_faults([{"kind": "bad_rows", "variant": "missing_key"}])
    truth = sim.state.truth(TEST_APPID, "getarticleshare", DAY, DAY)
    rows = call(sim, "getarticleshare", DAY, DAY)["list"]
    assert "msgid" not in rows[0] and rows[0]["detail"] == truth[0]["detail"]
    assert rows[1:] == truth[1:]
    assert "ref_date" not in call(sim, "getbizsummary", DAY, DAY)["list"][0]  # its only key


def test_bad_rows_in_detail_list_touch_its_first_element(sim: SimulatorServer) -> None:
    sim.state.set_faults([{"kind": "bad_rows", "variant": "missing_key", "count": 1},
                          {"kind": "bad_rows", "variant": "wrong_type", "after": 1}])
    missing = call(sim, "getarticletotaldetail", DAY, DAY)["list"]
    assert "stat_date" not in missing[0]["detail_list"][0] and "msgid" in missing[0]
    wrong = call(sim, "getarticletotaldetail", DAY, DAY)["list"]
    assert wrong[0]["detail_list"][0]["read_user"] == "n/a" and "stat_date" in wrong[0]["detail_list"][0]


def test_extra_fields_reach_inside_detail(sim: SimulatorServer) -> None:
    sim.state.set_faults([{"kind": "extra_fields"}])
    for endpoint, holder in (("getarticleread", "detail"), ("getarticletotaldetail", "detail_list")):
        rows = call(sim, endpoint, DAY, DAY)["list"]
        assert rows and all("sim_unknown_metric" in r for r in rows)
        inner = [r[holder] for r in rows] if holder == "detail" else [d for r in rows for d in r[holder]]
        assert inner and all(d.get("sim_unknown_metric") == 3 for d in inner)


def test_fewer_and_stray_rows_in_the_replacement_family(sim: SimulatorServer) -> None:
    truth = sim.state.truth(TEST_APPID, "getarticleread", DAY, DAY)
    sim.state.set_faults([{"kind": "fewer_rows", "keep": 1, "count": 1}, {"kind": "stray_rows", "after": 1}])
    assert call(sim, "getarticleread", DAY, DAY)["list"] == truth[:1]
    answer = call(sim, "getarticleread", DAY, DAY)
    strays = [r for r in answer["list"] if r["ref_date"] != DAY.isoformat()]
    assert strays and all("detail" in r for r in strays) and answer["is_delay"] is False
    assert [r for r in answer["list"] if r["ref_date"] == DAY.isoformat()] == truth


def test_bad_rows_needs_a_known_variant(sim: SimulatorServer) -> None:
    with pytest.raises(ValueError, match="variant"):
        sim.state.set_faults([{"kind": "bad_rows"}])
