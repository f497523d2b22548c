"""Figures every catchup phase reports the same way (R1, R8, R9): runs and tries, tables vs truth, load_log.

One place, so two phases cannot count "retries" or "equal to the truth" differently.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from wechat_datacube_dev.simulator import SimulatorServer

from tests.fixtures.truth import stored_rows, truth_rows
from wechat_datacube.endpoints import LEGACY, get_endpoint


def wait_for(predicate: Callable[[], Any], what: str, *, timeout: float, poll: float) -> Any:
    """``predicate()``'s first truthy value, polled every ``poll`` s; RuntimeError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def run_figures(runs: Sequence[dict[str, Any]], tis: Sequence[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """Runs and their states, task instances, Airflow retries (tries beyond the first) and how many retried."""
    tries = [t.get("try_number") or 1 for t in tis]
    return {
        "runs": len(runs),
        "run_states": Counter(r["state"] for r in runs),
        "seconds": seconds,
        "task_instances": len(tis),
        "ti_states": Counter(t["state"] for t in tis),
        "airflow_retries": sum(n - 1 for n in tries),
        "tis_retried": sum(n > 1 for n in tries),
    }


def tables_vs_truth(
    dsn: str, sim: SimulatorServer, appid: str, begin: dt.date, end: dt.date, *, account: str
) -> dict[str, Any]:
    """Per legacy table: rows stored and rows the simulator says are true, and whether they are equal."""
    tables = []
    for endpoint in LEGACY:
        stored = stored_rows(dsn, endpoint, begin, end, account=account)
        truth = truth_rows(sim, appid, endpoint, begin, end, account=account)
        tables.append({"table": get_endpoint(endpoint).table, "stored": len(stored), "truth": len(truth),
                       "equal": stored == truth})
    return {"tables": tables, "truth_equal": all(t["equal"] for t in tables)}


def read_load_log(dsn: str, account: str, begin: dt.date, end: dt.date) -> dict[tuple[str, dt.date], tuple[str, int]]:
    """``load_log`` of ``account`` for ref_date in [begin, end]: (endpoint, day) -> (status, row count)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT endpoint, ref_date, status, row_count FROM wechat.load_log "
            "WHERE account = %s AND ref_date BETWEEN %s AND %s",
            (account, begin, end),
        ).fetchall()
    return {(e, d): (st, n) for e, d, st, n in rows}
