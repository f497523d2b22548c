"""The user, message and interface families over real HTTP: the official field names, one call each."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests
from wechat_datacube_dev.simulator import SimulatorServer

from tests.fixtures.simulator import TEST_APPID
from tests.fixtures.token_requests import classic_token

BJ = dt.timezone(dt.timedelta(hours=8))
#: Monday 10:00 Beijing: Sunday 2024-06-09 is the newest published day, so the week of
#: Monday 2024-06-03 and the month of May are over.
NOW = dt.datetime(2024, 6, 10, 10, 0, tzinfo=BJ)

#: endpoint -> (begin, end, every item's fields as the official pages name them).
CALLS: dict[str, tuple[str, str, set[str]]] = {
    # a two-day window: asked alone, the newest day answers [] (the getusersummary quirk)
    "getusersummary": ("2024-06-08", "2024-06-09", {"ref_date", "user_source", "new_user", "cancel_user"}),
    "getusercumulate": ("2024-06-09", "2024-06-09", {"ref_date", "user_source", "cumulate_user"}),
    "getupstreammsg": ("2024-06-09", "2024-06-09", {"ref_date", "msg_type", "msg_user", "msg_count"}),
    "getupstreammsghour": ("2024-06-09", "2024-06-09", {"ref_date", "ref_hour", "msg_type", "msg_user", "msg_count"}),
    "getupstreammsgweek": ("2024-06-03", "2024-06-03", {"ref_date", "msg_type", "msg_user", "msg_count"}),
    "getupstreammsgmonth": ("2024-05-01", "2024-05-01", {"ref_date", "msg_type", "msg_user", "msg_count"}),
    "getupstreammsgdist": ("2024-06-09", "2024-06-09", {"ref_date", "count_interval", "msg_user"}),
    "getupstreammsgdistweek": ("2024-06-03", "2024-06-03", {"ref_date", "count_interval", "msg_user"}),
    "getupstreammsgdistmonth": ("2024-05-01", "2024-05-01", {"ref_date", "count_interval", "msg_user"}),
    "getinterfacesummary": ("2024-06-09", "2024-06-09",
                            {"ref_date", "callback_count", "fail_count", "total_time_cost", "max_time_cost"}),
    "getinterfacesummaryhour": ("2024-06-09", "2024-06-09", {"ref_date", "ref_hour", "callback_count", "fail_count",
                                                             "total_time_cost", "max_time_cost"}),
}


def _post(sim: SimulatorServer, endpoint: str, begin: str, end: str, token: str) -> dict[str, Any]:
    response = requests.post(f"{sim.base_url}/datacube/{endpoint}", params={"access_token": token},
                             json={"begin_date": begin, "end_date": end}, timeout=5)
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def token(simulator: SimulatorServer) -> str:
    simulator.state.clock.set(NOW)
    return classic_token(simulator)["access_token"]


@pytest.mark.parametrize("endpoint", sorted(CALLS))
def test_each_new_endpoint_answers_flat_rows_with_the_official_fields(
    simulator: SimulatorServer, token: str, endpoint: str
) -> None:
    begin, end, fields = CALLS[endpoint]
    body = _post(simulator, endpoint, begin, end, token)
    assert set(body) == {"list"}  # no errcode, no is_delay
    assert body["list"] and all(set(row) == fields for row in body["list"])
    assert {row["ref_date"] for row in body["list"]} <= {begin, end}
    assert all(isinstance(v, int) for row in body["list"] for k, v in row.items() if k != "ref_date")
    assert body["list"] == simulator.state.truth(TEST_APPID, endpoint, begin, end)


def test_getusersummary_for_the_newest_day_alone_is_empty_and_a_week_window_over_a_day_span_is_61501(
    simulator: SimulatorServer, token: str
) -> None:
    assert _post(simulator, "getusersummary", "2024-06-09", "2024-06-09", token) == {"list": []}
    assert _post(simulator, "getusersummary", "2024-06-08", "2024-06-08", token)["list"]
    assert _post(simulator, "getupstreammsgweek", "2024-06-03", "2024-06-04", token)["errcode"] == 61501
