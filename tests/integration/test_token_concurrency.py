"""Eight worker processes share one classic token through Postgres across two simulated hours.

Classic mode is the hard case: every new token kills the previous one five minutes later,
so workers that each fetched their own would knock each other out with 40001.
"""

from __future__ import annotations

import datetime as dt
import functools
import multiprocessing as mp
import time
from typing import Any

import pytest
import requests

from tests.fixtures.wechat_conn import SIM_NOW, register_wechat_conn

WORKERS = 8
CONN_ID = "wechat_concurrency_test"
WEEK = ("2024-06-01", "2024-06-07")
TWO_HOURS = 7200
STEP = 60


def sim_now(base_url: str) -> dt.datetime:
    """The simulator's clock, read over HTTP (workers live in other processes)."""
    return dt.datetime.fromisoformat(requests.get(f"{base_url}/_sim/clock", timeout=5).json()["now"])


def worker(index: int, base_url: str, pg_conn_id: str, stop: Any, progress: Any, results: Any) -> None:
    """Fetch until told to stop; report (index, calls, failures, token calls)."""
    from wechat_datacube.hook import WeChatDatacubeHook

    hook = WeChatDatacubeHook(
        CONN_ID,
        token_store_conn_id=pg_conn_id,
        clock=functools.partial(sim_now, base_url),
        backoff_base=0.01,
        max_attempts=3,
    )
    failures: list[str] = []
    calls = 0
    while not stop.is_set():
        try:
            hook.fetch("getusershare", *WEEK)
        except Exception as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
        calls += 1
        progress[index] = calls
    results.put((index, calls, failures, hook.token_calls))


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_eight_processes_share_one_classic_token_across_two_hours(
    simulator: Any, fresh_pg: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = simulator.base_url
    simulator.state.clock.set(SIM_NOW)
    register_wechat_conn(monkeypatch, base, CONN_ID, token_mode="classic")
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    progress = ctx.Array("i", WORKERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=worker, args=(i, base, fresh_pg[0], stop, progress, results)) for i in range(WORKERS)
    ]
    for proc in procs:
        proc.start()
    try:
        wait_for(lambda: all(progress[:]), 180, "every worker's first fetch")
        for _ in range(TWO_HOURS // STEP):
            requests.post(f"{base}/_sim/clock", json={"advance_seconds": STEP}, timeout=5).raise_for_status()
            time.sleep(0.02)
        seen = progress[:]
        # Each worker finishes at least one whole fetch started after the last advance.
        wait_for(lambda: all(now >= before + 2 for now, before in zip(progress[:], seen, strict=True)), 120,
                 "a fetch after the last advance")
    finally:
        stop.set()
        outcomes = [results.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(timeout=30)

    failures = [f for _, _, fs, _ in outcomes for f in fs]
    assert failures == []
    assert sum(calls for _, calls, _, _ in outcomes) >= 2 * WORKERS
    counters = simulator.state.counters()["paths"]
    # One token at the start, one refresh as its expiry neared: never one per worker.
    assert counters.get("/cgi-bin/token", 0) == 2
    assert sum(tc for *_, tc in outcomes) == 2
