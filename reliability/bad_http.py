"""R9: HTML 502 pages and truncated JSON bodies during a catchup under the scheduler.

The ``badhttp`` account's daily DAG catches up :data:`~reliability.session.R9_DAYS` days
(6 legacy endpoints) while its simulator answers, on every API path (token endpoint
included), ~10% of requests with HTTP 502 and nginx's HTML error page and ~8% with a
truncated JSON body (HTTP 200, ``application/json``, cut off mid-row). Most of these are
absorbed by the hook's own retries (4 attempts); two bursts of twelve in a row — 502s
on ``getuserreadhour``, truncated bodies on ``getusershare`` — outlast the hook, so those
task tries fail, the window loader keeps the response in ``api_response`` and Airflow
retries the task.

R4 (:mod:`reliability.bad_input`) sends a truncated body and an HTML page (with HTTP 200)
once each to a single in-process operator call; R9 is the end-to-end version under the
scheduler, and adds the HTML page with its real status, 502.

Expected: both kinds are treated as transient (retried); every run ends ``success``; the
failed tries' raw bodies are kept in ``api_response`` for diagnosis, with no token or
AppSecret in anything kept; the tables equal the simulator's truth.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import psycopg

from bench.harness import log
from reliability.catchup import run_figures, tables_vs_truth
from reliability.session import R9_DAYS, Session
from reliability.soak import fault_free_calls
from wechat_datacube.endpoints import LEGACY

ACCOUNT = "badhttp"
#: Bursts first: of several terminal rules only the first that fires is used.
RULES: list[dict[str, Any]] = [
    {"kind": "http_status", "status": 502, "path": "/datacube/getuserreadhour", "after": 4, "count": 12},
    {"kind": "malformed_json", "path": "/datacube/getusershare", "after": 2, "count": 12},
    {"kind": "http_status", "status": 502, "rate": 0.10},
    {"kind": "malformed_json", "rate": 0.08},
]
#: kind -> (label, what the kept error message starts with, what the kept raw body must contain)
KINDS: dict[str, tuple[str, str, str]] = {
    "http_status": ("HTML 502 page (HTTP 502, text/html)", "HTTP 502 from", "<html>"),
    "malformed_json": ("truncated JSON body (HTTP 200)", "non-JSON body", "2024-01-0"),
}
_UNREDACTED = re.compile(r"access_token=(?!\*\*\*)")


def _rule_label(rule: dict[str, Any]) -> str:
    label = KINDS[rule["kind"]][0].split(" (")[0]
    if rule.get("path"):
        label += f" on {rule['path']}, {rule['count']} in a row"
    return label


def run_r9(s: Session) -> dict[str, Any]:
    account, sim, dsn = s.phase_account(ACCOUNT)
    begin = account.start_date
    end = s.last
    sim.state.set_faults(RULES)
    started = time.monotonic()
    s.cluster.set_paused(account.dag_id, False)
    try:
        runs = s.cluster.wait_for_runs(account.dag_id, count=R9_DAYS, run_type="scheduled", timeout=900, poll=1.0)
    finally:
        fired = sim.state.faults()
        sim.state.clear_faults()
    seconds = time.monotonic() - started
    tis = s.cluster.all_task_instances(account.dag_id, "~")

    with psycopg.connect(dsn) as conn:
        responses = conn.execute(
            "SELECT id, endpoint, begin_date, status, coalesce(error, ''), coalesce(payload::text, '') "
            "FROM wechat.api_response WHERE account = %s ORDER BY id",
            (ACCOUNT,),
        ).fetchall()
        load_log = conn.execute(
            "SELECT endpoint, ref_date, status, row_count, coalesce(message, '') FROM wechat.load_log "
            "WHERE account = %s AND ref_date BETWEEN %s AND %s",
            (ACCOUNT, begin, end),
        ).fetchall()
    failed = [r for r in responses if r[3] == "failed"]
    kinds: dict[str, dict[str, Any]] = {}
    for kind, (label, prefix, marker) in KINDS.items():
        rows = [r for r in failed if r[4].startswith(prefix)]
        kept = [r for r in rows if marker in r[5]]
        kinds[kind] = {
            "label": label,
            "injected": sum(r["fired"] for r in fired if r["kind"] == kind),
            "failed_tries": len(rows),
            "endpoints": dict(Counter(r[1] for r in rows)),
            "raw_kept": len(kept),
            "error_example": rows[0][4][:200] if rows else "",
            "payload_example": rows[0][5][:100] if rows else "",
        }
    other_failed = [r for r in failed if not any(r[4].startswith(p) for _, p, _ in KINDS.values())]

    needles = [t for t in sim.state.issued_tokens() if t] + [account.secret]
    kept_text = [r[4] + "\n" + r[5] for r in responses] + [row[4] for row in load_log]
    token_hits = sum(text.count(n) for text in kept_text for n in needles)
    unredacted = sum(len(_UNREDACTED.findall(text)) for text in kept_text)
    token_mentions = sum(text.count("access_token") for text in kept_text)

    result = {
        "begin": begin,
        "end": end,
        **run_figures(runs, tis, seconds),
        "faults": [(_rule_label(r), r.get("rate"), r["seen"], r["fired"]) for r in fired],
        "data_calls": sum(account.data_calls().values()),
        "fault_free_calls": fault_free_calls(begin, end),
        "token_calls": account.token_calls(),
        "kinds": kinds,
        "other_failed": [(r[1], r[4][:150]) for r in other_failed],
        "responses": dict(Counter(r[3] for r in responses)),
        "needles": len(needles),
        "token_hits": token_hits,
        "unredacted_urls": unredacted,
        "token_mentions": token_mentions,
        **tables_vs_truth(dsn, sim, account.appid, begin, end, account=ACCOUNT),
        "load_log_statuses": Counter(row[2] for row in load_log),
        "load_log_complete": len(load_log) == R9_DAYS * len(LEGACY),
    }
    log(f"R9: {dict(result['run_states'])} in {seconds:.0f} s, {result['airflow_retries']} Airflow retries, "
        f"failed tries kept {[(k, v['failed_tries'], v['raw_kept']) for k, v in kinds.items()]}")
    return result
