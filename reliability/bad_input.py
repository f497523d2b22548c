"""R4: every bad payload the simulator can send, against a window that is already loaded.

Runs the pipeline's own operator (``WeChatDatacubeToPostgresOperator.execute``, as a
manual run with explicit dates) in this process, against its own simulator and database,
one payload kind at a time: load the day cleanly, take a checksum, make the simulator
answer every request with the bad payload, run again, and look at what happened — the
error (class and message), the typed rows (checksum), ``api_response`` (the raw body
must be kept) and ``load_log`` (a loaded day must stay loaded).

Run by ``python -m reliability`` in a subprocess whose output is kept for the R6 secrets
scan: ``python -m reliability.bad_input --out result.json --tokens tokens.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from wechat_datacube_dev.checksums import table_checksums
from wechat_datacube_dev.connections import connection_env_var

import bench.harness as harness  # noqa: F401  (sets AIRFLOW_HOME before Airflow is imported)
from bench.harness import Account, Lab, last_scheduled_day, secrets_for
from wechat_datacube.dates import BEIJING
from wechat_datacube.endpoints import get_endpoint

ACCOUNT = "badinput"
ENDPOINT = "getusershare"
PG_CONN = "badinput_pg"

#: (label, fault rule, what the pipeline should do)
CASES: tuple[tuple[str, dict[str, Any] | None, str], ...] = (
    ("truncated JSON", {"kind": "malformed_json"}, "error"),
    ("HTML page with HTTP 200", {"kind": "html"}, "error"),
    ("errcode 0 without a list", {"kind": "bad_rows", "variant": "no_list"}, "error"),
    ("row without a key field", {"kind": "bad_rows", "variant": "missing_key"}, "error"),
    ("wrong type (text in a count)", {"kind": "bad_rows", "variant": "wrong_type"}, "error"),
    ("unknown fields", {"kind": "extra_fields"}, "load: unknown fields kept in `extra`"),
    ("stray rows from another year", {"kind": "stray_rows"}, "load: stray rows dropped"),
    ("empty list before the readiness deadline", {"kind": "empty", "before_deadline": True}, "not ready: retried later"),
    ("empty list after the deadline, for a loaded day", {"kind": "empty"}, "kept: stored rows stay, day marked kept"),
    ("schema drift (metrics renamed)", {"kind": "bad_rows", "variant": "drift"}, "error"),
    # JSON parsers accept both; PostgreSQL's jsonb (api_response.payload) stores neither.
    ("NaN in the body (an undocumented key)", {"kind": "bad_rows", "variant": "nan"}, "error, not retried"),
    ("U+0000 in the body (an undocumented key)", {"kind": "bad_rows", "variant": "nul"}, "error, not retried"),
)


def _state(dsn: str, day: dt.date) -> dict[str, Any]:
    import psycopg

    spec = get_endpoint(ENDPOINT)
    with psycopg.connect(dsn) as conn:
        status = conn.execute(
            "SELECT status FROM wechat.load_log WHERE account = %s AND endpoint = %s AND ref_date = %s",
            (ACCOUNT, ENDPOINT, day),
        ).fetchone()
        last = conn.execute(
            "SELECT id, status, error, payload::text FROM wechat.api_response WHERE endpoint = %s ORDER BY id DESC LIMIT 1",
            (ENDPOINT,),
        ).fetchone()
        extra = conn.execute(
            f"SELECT count(*) FROM wechat.{spec.table} WHERE account = %s AND ref_date = %s AND extra <> '{{}}'::jsonb",
            (ACCOUNT, day),
        ).fetchone()[0]
    return {
        "checksum": table_checksums(dsn, [ENDPOINT], begin=day, end=day)[spec.table],
        "load_log": status[0] if status else None,
        "response": {"id": last[0], "status": last[1], "error": last[2], "payload": last[3]} if last else None,
        "rows_with_extra": extra,
    }


def _operator(day: dt.date, clock: Any = None) -> Any:
    from wechat_datacube.operators import WeChatDatacubeToPostgresOperator

    return WeChatDatacubeToPostgresOperator(
        task_id=f"r4_{ENDPOINT}",
        endpoint=ENDPOINT,
        account=ACCOUNT,
        wechat_conn_id=f"wechat_{ACCOUNT}",
        postgres_conn_id=PG_CONN,
        begin_date=day.isoformat(),
        end_date=day.isoformat(),
        clock=clock,
        hook_kwargs={"backoff_base": 0.05, "backoff_max": 0.2},
    )


def run_case(sim: Any, dsn: str, day: dt.date, label: str, rule: dict[str, Any] | None, expect: str) -> dict[str, Any]:
    from wechat_datacube.tokens import clear_token_memo

    rule = dict(rule) if rule else None
    sim.state.clear_faults()
    clear_token_memo()
    _operator(day).execute({})  # the day is loaded and correct before the bad answer arrives
    before = _state(dsn, day)
    calls_before = sim.state.counters()["paths"].get(f"/datacube/{ENDPOINT}", 0)
    before_deadline = bool(rule and rule.pop("before_deadline", False))
    sim.state.set_faults([rule] if rule else [])
    # "Before the deadline": the next morning, 09:00 in Beijing (the deadline is 12:00).
    clock = (lambda: dt.datetime.combine(day + dt.timedelta(days=1), dt.time(9), tzinfo=BEIJING)) \
        if before_deadline else None
    error: BaseException | None = None
    try:
        _operator(day, clock).execute({})
    except Exception as exc:  # noqa: BLE001 - the error is what is measured
        error = exc
    sim.state.clear_faults()
    after = _state(dsn, day)
    requests_made = sim.state.counters()["paths"].get(f"/datacube/{ENDPOINT}", 0) - calls_before
    message = str(error) if error else ""
    kept = after["response"] and before["response"] and after["response"]["id"] > before["response"]["id"]
    return {
        "case": label,
        "fault": rule,
        "expected": expect,
        "error_class": type(error).__name__ if error else None,
        "message": message,
        "message_names_context": all(
            part in message for part in (f"account={ACCOUNT}", f"endpoint={ENDPOINT}", f"dates={day}..{day}")
        ) if error else None,
        "requests": requests_made,
        "typed_rows_unchanged": after["checksum"] == before["checksum"],
        "rows_with_extra": after["rows_with_extra"],
        "raw_kept": bool(kept),
        "raw_status": after["response"]["status"] if kept else None,
        "raw_excerpt": (after["response"]["payload"] or "")[:120] if kept else None,
        # Where a NaN / U+0000 case keeps the offending value: the body's last key.
        "raw_tail": (after["response"]["payload"] or "")[-60:] if kept else None,
        "load_log_before": before["load_log"],
        "load_log_after": after["load_log"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tokens", type=Path, required=True, help="where to write every token the simulator issued")
    args = parser.parse_args()
    appid = "wx_rel_badinput"
    secret = secrets_for([appid])[appid]
    day = last_scheduled_day() - dt.timedelta(days=20)
    with Lab() as lab:
        sim = lab.simulator({appid: secret})
        dsn = lab.database("wdc_rel_badinput")
        account = Account(ACCOUNT, appid, secret, sim, PG_CONN, day)
        os.environ.update(account.env())
        os.environ[connection_env_var(PG_CONN)] = dsn
        try:
            results = [run_case(sim, dsn, day, *case) for case in CASES]
        finally:
            args.tokens.write_text(json.dumps({"tokens": sim.state.issued_tokens(), "secrets": [secret]}))
    args.out.write_text(json.dumps({"day": day.isoformat(), "results": results}, default=str, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
