"""R7: 16 worker processes in classic token mode over 3 simulated hours share one token.

Classic mode is the hard case: every new token kills the previous one five minutes later,
so processes that each fetched their own would knock each other out with 40001. The
workers and their driver are the integration test's (``tests.fixtures.token_workers``:
each a hook on the simulator's clock with the Postgres token cache, fetching a week of
``getusershare`` in a loop); here there are 16 of them and the simulated clock runs three
hours, in steps of one minute. A 40001 loop would show as failures or as data requests
beyond one per fetch (a token error costs a second request).

``python -m reliability.token_concurrency --out result.json --tokens tokens.json``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from wechat_datacube_dev.connections import connection_env_var, wechat_connection_env

import bench.harness as harness  # noqa: F401  (sets AIRFLOW_HOME before Airflow is imported)
from bench.harness import Lab
from tests.fixtures.simulator import TEST_APPID, TEST_SECRET
from tests.fixtures.token_workers import CONN_ID, run_workers
from tests.fixtures.wechat_conn import SIM_NOW

WORKERS = 16
HOURS = 3
PG_CONN = "r7_pg"


def run() -> tuple[dict[str, Any], list[str]]:
    with Lab() as lab:
        sim = lab.simulator({TEST_APPID: TEST_SECRET})
        dsn = lab.database("wdc_rel_tokens")
        os.environ[connection_env_var(PG_CONN)] = dsn
        os.environ.update([wechat_connection_env(CONN_ID, sim.base_url, TEST_APPID, TEST_SECRET, token_mode="classic")])
        sim.state.clock.set(SIM_NOW)
        started = time.monotonic()
        run = run_workers(sim.base_url, PG_CONN, workers=WORKERS, seconds=HOURS * 3600, pause=0.05, timeout=300)
        paths = sim.state.counters()["paths"]
        result = {
            "workers": WORKERS,
            "simulated_hours": HOURS,
            "wall_seconds": time.monotonic() - started,
            "fetches": run.fetches,
            "data_requests": paths.get("/datacube/getusershare", 0),
            "token_calls": paths.get("/cgi-bin/token", 0),
            "token_calls_by_workers": run.token_calls,
            "failures": run.failures[:20],
            "failure_count": len(run.failures),
        }
        return result, sim.state.issued_tokens()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tokens", type=Path, required=True)
    args = parser.parse_args()
    result, tokens = run()
    args.tokens.write_text(json.dumps({"tokens": tokens, "secrets": [TEST_SECRET]}))
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
