"""Figures every catchup phase reports the same way (R8, R9): runs and tries, tables vs truth.

One place, so two phases cannot count "retries" or "equal to the truth" differently.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from typing import Any

from wechat_datacube_dev.simulator import SimulatorServer

from tests.fixtures.truth import stored_rows, truth_rows
from wechat_datacube.endpoints import LEGACY, get_endpoint


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
