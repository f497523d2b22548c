"""R1 fault soak and R2 idempotent reruns.

R1: the ``soak`` account's daily DAG catches up 60 days (360 task runs) under the
scheduler while the faulty simulator answers ~20% of all requests (token endpoint
included) with a transient fault — errcode -1, HTTP 503/502, a delay beyond the client's
read timeout, a dropped connection, errcode 45011 — and hands out tokens that live only
four minutes; six token errors (42001 / 40001) and one outage of an endpoint (eight
failures in a row: more than the hook's four attempts) are injected on top. The fault-free
reference is the same AppID and seed on the clean simulator, loaded by the bulk backfill
DAG into another database. Expected: every run succeeds and both databases hold the same
rows (checksums over the registry's columns), equal to the simulator's truth.

R2: rerun everything — the bulk backfill with ``reprocess=all`` over the whole range
(every window fetched and rewritten, faults still on), then the last seven daily runs
cleared and run again — and compare checksums again.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from typing import Any

from wechat_datacube_dev.checksums import table_checksums

from bench.harness import log
from reliability.catchup import read_load_log
from reliability.session import BACKFILL_DAG, Session
from tests.fixtures.truth import stored_rows, truth_rows
from wechat_datacube.dates import DateRange, iter_days
from wechat_datacube.endpoints import LEGACY, get_endpoint
from wechat_datacube.windows import plan_windows

#: Transient faults on every API path; a request meets at most one terminal fault.
TRANSIENT_RULES: list[dict[str, Any]] = [
    {"kind": "errcode", "errcode": -1, "rate": 0.06},
    {"kind": "http_status", "status": 503, "rate": 0.04},
    {"kind": "http_status", "status": 502, "rate": 0.02},
    {"kind": "drop", "rate": 0.04},
    {"kind": "errcode", "errcode": 45011, "rate": 0.01},
    {"kind": "slow", "delay": 2.5, "rate": 0.04},  # > the 1.5 s read timeout: a client timeout
]
#: Token errors, spread over the run: the stored token is refused as expired / not the latest.
TOKEN_RULES: list[dict[str, Any]] = [
    {"kind": "errcode", "errcode": code, "path": "/datacube/", "count": 1, "after": after}
    for code, after in ((42001, 40), (40001, 90), (42001, 150), (40001, 210), (42001, 270), (40001, 330))
]
#: An outage of one endpoint: eight requests in a row fail, more than the hook's four
#: attempts, so at least one task fails its try and Airflow retries it.
BURST_RULES: list[dict[str, Any]] = [
    {"kind": "errcode", "errcode": -1, "path": "/datacube/getuserread", "after": 20, "count": 8},
]
RECENT_RUNS = 7


def fault_label(rule: dict[str, Any]) -> str:
    if rule["kind"] == "errcode":
        label = f"errcode {rule['errcode']}"
    elif rule["kind"] == "http_status":
        label = f"HTTP {rule['status']}"
    elif rule["kind"] == "slow":
        label = f"timeout (answer after {rule['delay']} s)"
    else:
        label = {"drop": "dropped connection"}.get(rule["kind"], rule["kind"])
    if rule.get("path"):
        label += f" on {rule['path']}"
    if rule.get("count") and rule["count"] > 1:
        label += f", {rule['count']} in a row"
    return label


def fault_free_calls(start: dt.date, last: dt.date) -> int:
    """Data calls the daily runs of [start, last] make without faults (matured re-fetches included)."""
    return sum(
        len(plan_windows(get_endpoint(e), DateRange(day, day), refetch_matured=True))
        for day in iter_days(start, last)
        for e in LEGACY
    )


def _retries(s: Session, dag_id: str) -> tuple[int, int, Counter[str]]:
    """(task instances, Airflow retries = Σ(try_number - 1), states) over every run of ``dag_id``."""
    tis = s.cluster.all_task_instances(dag_id, "~")
    return len(tis), sum(max(0, (t.get("try_number") or 1) - 1) for t in tis), Counter(t["state"] for t in tis)


def _backfill(s: Session, account: str, begin: dt.date, end: dt.date, reprocess: str) -> dict[str, Any]:
    conf = {"accounts": [account], "begin_date": begin.isoformat(), "end_date": end.isoformat(), "reprocess": reprocess}
    run = s.cluster.trigger(BACKFILL_DAG, conf)
    run = s.cluster.wait_run(BACKFILL_DAG, run["dag_run_id"], timeout=900)
    tis = s.cluster.all_task_instances(BACKFILL_DAG, run["dag_run_id"])
    return {"state": run["state"], "tasks": len(tis), "retries": sum(max(0, t["try_number"] - 1) for t in tis)}


def _compare(s: Session, begin: dt.date, end: dt.date) -> dict[str, Any]:
    soak = table_checksums(s.dsn_of("soak"), begin=begin, end=end, with_account=False)
    ref = table_checksums(s.dsn_of("ref"), begin=begin, end=end, with_account=False)
    return {"soak": soak, "ref": ref, "equal": soak == ref and all(n > 0 for n, _ in soak.values()),
            "dates": f"ref_date {begin}..{end}"}


def run_r1(s: Session) -> dict[str, Any]:
    faulty = s.sims["faulty"]
    soak = s.accounts["soak"]
    faulty.state.set_faults([*TRANSIENT_RULES, *TOKEN_RULES, *BURST_RULES])
    started = time.monotonic()
    s.cluster.set_paused(soak.dag_id, False)
    runs = s.cluster.wait_for_runs(soak.dag_id, count=len(list(iter_days(s.start, s.last))), run_type="scheduled",
                                   timeout=1500, poll=1.0)
    seconds = time.monotonic() - started
    days = sorted(
        dt.datetime.fromisoformat(r["data_interval_start"]).astimezone(dt.timezone(dt.timedelta(hours=8))).date()
        for r in runs
    )
    begin, end = days[0], days[-1]
    tis, retries, states = _retries(s, soak.dag_id)
    fired = faulty.state.faults()
    data_calls = sum(soak.data_calls().values())
    token_calls = soak.token_calls()
    log(f"R1: {len(runs)} runs in {seconds:.0f} s, {retries} Airflow retries, {data_calls} data requests")

    # The fault-free reference: the same data through the bulk backfill on the clean simulator,
    # reaching back far enough for getarticletotal's matured re-fetches of the first runs.
    matured = get_endpoint("getarticletotal").maturity_days - 1
    reference = _backfill(s, "ref", begin - dt.timedelta(days=matured), end, "missing")
    compare = _compare(s, begin, end)
    truth_equal = all(
        stored_rows(s.dsn_of("soak"), e, begin, end, account="soak")
        == truth_rows(s.sims["clean"], soak.appid, e, begin, end, account="soak")
        for e in LEGACY
    )
    soak_log = read_load_log(s.dsn_of("soak"), "soak", begin, end)
    ref_log = read_load_log(s.dsn_of("ref"), "ref", begin, end)
    return {
        "runs": len(runs),
        "run_states": Counter(r["state"] for r in runs),
        "begin": begin,
        "end": end,
        "seconds": seconds,
        "task_instances": tis,
        "ti_states": states,
        "airflow_retries": retries,
        "data_calls": data_calls,
        "fault_free_calls": fault_free_calls(begin, end),
        "token_calls": token_calls,
        "tokens_issued": len(faulty.state.issued_tokens()),
        "faults": [(fault_label(r), r.get("rate"), r["seen"], r["fired"]) for r in fired],
        "requests_seen": max((r["seen"] for r in fired if r.get("rate") is not None), default=0),
        "reference": reference,
        "compare": compare,
        "truth_equal": truth_equal,
        "load_log_equal": {k: v for k, v in soak_log.items()} == {k: v for k, v in ref_log.items()},
        "load_log_statuses": Counter(st for st, _ in soak_log.values()),
    }


def run_r2(s: Session, r1: dict[str, Any]) -> dict[str, Any]:
    soak = s.accounts["soak"]
    begin, end = r1["begin"], r1["end"]
    window = (begin, end)
    before = table_checksums(s.dsn_of("soak"), begin=window[0], end=window[1], with_account=False)
    calls_before = sum(soak.data_calls().values())
    backfill = _backfill(s, "soak", begin, end, "all")
    backfill["data_calls"] = sum(soak.data_calls().values()) - calls_before
    after_backfill = table_checksums(s.dsn_of("soak"), begin=window[0], end=window[1], with_account=False)
    log(f"R2: backfill reprocess=all {backfill['state']}, {backfill['data_calls']} data requests")

    runs = sorted(s.cluster.dag_runs(soak.dag_id), key=lambda r: r["logical_date"])[-RECENT_RUNS:]
    s.cluster.api("POST", f"/dags/{soak.dag_id}/clearTaskInstances", json={
        "dry_run": False,
        "start_date": runs[0]["logical_date"],
        "end_date": runs[-1]["logical_date"],
        "only_failed": False,
        "reset_dag_runs": True,
    })
    time.sleep(3)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        current = {r["dag_run_id"]: r for r in s.cluster.dag_runs(soak.dag_id)}
        again = [current[r["dag_run_id"]] for r in runs]
        if all(r["state"] in ("success", "failed") for r in again) and all(
            (r.get("end_date") or "") > (old.get("end_date") or "") for r, old in zip(again, runs, strict=True)
        ):
            break
        time.sleep(2)
    rerun_states = Counter(r["state"] for r in again)
    after_rerun = table_checksums(s.dsn_of("soak"), begin=window[0], end=window[1], with_account=False)
    log(f"R2: cleared {len(runs)} daily runs: {dict(rerun_states)}")
    return {
        "backfill": backfill,
        "cleared_runs": len(runs),
        "rerun_states": rerun_states,
        "equal_after_backfill": after_backfill == before,
        "equal_after_rerun": after_rerun == before,
        "equal_to_reference": after_rerun == r1["compare"]["ref"],
    }
