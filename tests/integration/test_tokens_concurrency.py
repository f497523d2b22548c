"""Eight worker processes share one classic token through Postgres across two simulated hours.

Classic mode is the hard case: every new token kills the previous one five minutes later,
so workers that each fetched their own would knock each other out with 40001.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.token_workers import CONN_ID, run_workers
from tests.fixtures.wechat_conn import SIM_NOW, register_wechat_conn

WORKERS = 8
TWO_HOURS = 7200


def test_eight_processes_share_one_classic_token_across_two_hours(
    simulator: Any, fresh_pg: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    simulator.state.clock.set(SIM_NOW)
    register_wechat_conn(monkeypatch, simulator.base_url, CONN_ID, token_mode="classic")

    run = run_workers(simulator.base_url, fresh_pg[0], workers=WORKERS, seconds=TWO_HOURS)

    assert run.failures == []
    assert run.fetches >= 2 * WORKERS
    counters = simulator.state.counters()["paths"]
    # One token at the start, one refresh as its expiry neared: never one per worker.
    assert counters.get("/cgi-bin/token", 0) == 2
    assert run.token_calls == 2
