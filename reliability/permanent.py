"""R5: permanent errors fail fast — one request, one try, a message that says what to fix.

Three codes come from real misconfiguration (each account has its own schema, so no
cached token hides the token call): 40125 (the connection's AppSecret is wrong), 40013
(an AppID WeChat does not know), 40164 (a simulator whose API IP whitelist lacks
127.0.0.1). Three are injected on the path WeChat sends them from: 61023 on the token
call (the platform's refresh token was revoked), 48001 and 61007 on the data call. Each
is one manual run of a one-task DAG under the scheduler (the task would have 8 retries).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from bench.harness import log
from reliability.session import Session
from wechat_datacube.errors import advice
from wechat_datacube.tokens import TOKEN_SCHEMA

ENDPOINT = "getusershare"
TOKEN_PATH = "/cgi-bin/stable_token"
DATA_PATH = f"/datacube/{ENDPOINT}"

#: (errcode, account, path the error comes from, injected?)
CASES: tuple[tuple[int, str, str, bool], ...] = (
    (40125, "permsecret", TOKEN_PATH, False),
    (40013, "permappid", TOKEN_PATH, False),
    (40164, "permip", TOKEN_PATH, False),
    (61023, "perm", TOKEN_PATH, True),
    (48001, "perm", DATA_PATH, True),
    (61007, "perm", DATA_PATH, True),
)


def _api_response_error(dsn: str, schema: str) -> str | None:
    with psycopg.connect(dsn) as conn:
        try:
            row = conn.execute(f"SELECT error FROM {schema}.api_response ORDER BY id DESC LIMIT 1").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return row[0] if row else None


def log_line(text: str, needle: str) -> str:
    """The first line of a task log holding ``needle`` ("" if none)."""
    for line in text.splitlines():
        if needle in line:
            return line
    return ""


def run_case(s: Session, code: int, account_name: str, path: str, injected: bool) -> dict[str, Any]:
    account = s.accounts[account_name]
    sim = account.sim
    if injected:
        sim.state.set_faults([{"kind": "errcode", "errcode": code, "path": path}])
        if path == TOKEN_PATH:  # the first data case cached a token: forget it, as a new deployment would
            with psycopg.connect(s.dsns[account.pg_conn_id]) as conn:
                try:
                    conn.execute(f"DELETE FROM {TOKEN_SCHEMA}.access_token_cache")
                except psycopg.errors.UndefinedTable:
                    pass  # no token was ever cached
    before = sim.state.counters()["paths"].get(path, 0)
    day = s.last - dt.timedelta(days=3)
    run = s.cluster.trigger(account.dag_id, {"begin_date": day.isoformat(), "end_date": day.isoformat()})
    run = s.cluster.wait_run(account.dag_id, run["dag_run_id"], timeout=300)
    sim.state.clear_faults()
    requests_made = sim.state.counters()["paths"].get(path, 0) - before
    ti = next(t for t in s.cluster.task_instances(account.dag_id, run["dag_run_id"]) if t["task_id"] == ENDPOINT)
    text = s.cluster.task_log(account.dag_id, run["dag_run_id"], ENDPOINT, ti["try_number"])
    fix = advice(code)
    line = log_line(text, f"errcode={code}") or log_line(text, fix)
    seconds = (
        dt.datetime.fromisoformat(ti["end_date"]) - dt.datetime.fromisoformat(ti["start_date"])
    ).total_seconds() if ti.get("end_date") and ti.get("start_date") else float("nan")
    result = {
        "errcode": code,
        "account": account_name,
        "source": ("injected" if injected else "real misconfiguration") + f" on {path}",
        "run_state": run["state"],
        "ti_state": ti["state"],
        "tries": ti["try_number"],
        "max_tries": ti.get("max_tries"),
        "requests": requests_made,
        "task_seconds": seconds,
        "advice_in_log": fix in text,
        "message": log_message(line, str(code), "WeChat"),
        "stored_error": _api_response_error(s.dsns[account.pg_conn_id], account.options["schema"]),
    }
    log(f"R5 {code}: {ti['state']} after {ti['try_number']} try, {requests_made} request(s)")
    return result


def log_message(line: str, *needles: str) -> str:
    """The error message (holding one of ``needles``) out of a structured log line (the line as found otherwise)."""
    import json

    try:
        event = json.loads(line)
    except ValueError:
        return line.strip()[:400]
    for key in ("error_detail", "event", "reason"):
        value = event.get(key)
        if isinstance(value, list) and value:
            value = value[0].get("exc_value") or value
        if isinstance(value, str) and any(needle in value for needle in needles):
            return value[:400]
    return json.dumps(event, ensure_ascii=False)[:400]


def run_r5(s: Session) -> list[dict[str, Any]]:
    return [run_case(s, *case) for case in CASES]
