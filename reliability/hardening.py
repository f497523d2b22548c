"""R10: the hardening of tracker issue 13, each fix measured where it acts.

Cluster cases — the suite's Airflow cluster, runs triggered through its REST API as R5
does, accounts of their own (:mod:`reliability.session`):

* **(a) an authorizer refresh interrupted after WeChat rotated the refresh token** — the
  ``hardauth`` account runs in third-party platform mode against a simulator that rotates
  the refresh token at every exchange (the old one then answers 61023). A first run
  stores a token. The cached access token is then made due for refresh and the suite
  holds a row lock on it: the next run's task exchanges its refresh token at WeChat, gets
  a rotated one, and blocks writing the access token. There the task process (``airflow
  worker -- <ti>``) gets SIGKILL, and its server backend is terminated too (PostgreSQL only
  notices a dead client when it next talks to it, so once the lock went it would still
  finish the autocommit INSERT for the dead task). Airflow retries the task; its refresh
  must work with what was committed before the kill. Refused exchanges (61023) =
  exchanges − rotations at the simulator, and the "61023" mentions in the task logs.
* **(d) run conf** — manual runs of the two-endpoint ``hardconf`` DAG: a list with an
  unknown name, ``endpoints`` as a string, a 32-day window.
* **(e) one AppID, two schemas** — four accounts with one AppID and one database, data in
  four schemas, two per token mode, all four runs at once.

In-process cases — ``python -m reliability.hardening --out r10.json --tokens t.json``, a
subprocess next to the cluster cases (as R4 and R7 run), with a simulator and a database
of its own:

* **(b) Fernet key changed between two runs** — three runs of the operator, each in a
  fresh process as after a restart: key K1, then K2 alone (the K1 row is unreadable), then
  ``K3,K2`` (Airflow's documented rotation: the K2 row stays readable);
* **(c) bad ``expires_in``** — WeChat's token answers carry ``-1``, ``0``, ``1e300``,
  ``NaN`` or text while the tokens themselves stay valid. The simulator has no setting
  for that (``token_ttl`` is the advertised *and* the real lifetime), so a small proxy
  in front of it rewrites the field of the token answers (:class:`ExpiresInProxy`); data
  calls pass through unchanged. Four "tasks" (token memo cleared, the Postgres cache
  shared) of ten data calls each, per mode;
* **(f) ``.local/`` permissions** — :class:`~wechat_datacube_dev.localrun.state.StateDir` and
  :class:`~wechat_datacube_dev.localrun.processes.ManagedProcess` do what ``make run`` does
  before Airflow starts (claim the directory, write the accounts file, secrets, the
  api-server's password file and log, the connection file), without starting the stack;
* **(g) dashboard** — the dashboard's FastAPI app in-process (``TestClient``, the unit
  test's ``serve``) on a broken accounts file, the login replaced by a given user and
  authorization by Airflow's ``SimpleAuthManager`` (admin, viewer) or a stand-in that
  grants one DAG (a FAB role with one DAG's read permission): not through an api-server.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from wechat_datacube_dev.connections import connection_env_var, wechat_connection_env

import bench.harness as harness  # noqa: F401  (sets AIRFLOW_HOME before Airflow is imported)
from bench.harness import REPO, Account, Lab, last_scheduled_day, log, secrets_for

# --- shared ------------------------------------------------------------------------------

ENDPOINT = "getusershare"
TOKEN_PATHS = {"stable": "/cgi-bin/stable_token", "classic": "/cgi-bin/token"}
AUTHORIZER_PATH = "/cgi-bin/component/api_authorizer_token"
#: (a): seconds WeChat's answer to the interrupted exchange is held back (the suite takes its lock meanwhile).
EXCHANGE_DELAY = 3.0
DECRYPT_WARNING = "cannot be decrypted with the current Fernet key"


def _calls(sim: Any, appid: str, path: str) -> int:
    return sim.state.counters()["appids"].get(appid, {}).get(path, 0)


# --- cluster cases -----------------------------------------------------------------------


def _ti_states(s: Any, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
    return {t["task_id"]: t for t in s.cluster.task_instances(dag_id, run_id)}


def _day_conf(day: dt.date, **more: Any) -> dict[str, Any]:
    return {"begin_date": day.isoformat(), "end_date": day.isoformat(), **more}


def _stored_refresh_token(dsn: str, appid: str) -> str | None:
    import psycopg

    from wechat_datacube.tokens import TOKEN_SCHEMA, decrypt

    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            f"SELECT refresh_token, encrypted FROM {TOKEN_SCHEMA}.authorizer_refresh_token WHERE authorizer_appid = %s",
            (appid,),
        ).fetchone()
    return decrypt(row[0], row[1]) if row else None


def _blocked_token_write(admin: Any, dbname: str) -> tuple[int, int, str] | None:
    """(backend pid, client port, query) of a backend waiting on a lock to write an access token."""
    row = admin.execute(
        "SELECT pid, client_port, query FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' "
        "AND state = 'active' AND query LIKE %s",
        (dbname, "INSERT INTO %access_token_cache%"),
    ).fetchone()
    return (row[0], row[1], row[2]) if row else None


def _authorizer_figures(sim: Any, appid: str) -> dict[str, int]:
    exchanges = _calls(sim, appid, AUTHORIZER_PATH)
    rotations = len(sim.state.issued_tokens("refresh"))
    return {"exchanges": exchanges, "rotations": rotations, "refused": exchanges - rotations}


def _interrupted_refresh(s: Any, seed_run: dict[str, Any], day: dt.date) -> dict[str, Any]:
    """(a): see the module docstring. ``seed_run`` stored the first token."""
    import psycopg

    from reliability.crash import _title, _wait_for, _worker_pid_for_port
    from tests.fixtures.postgres import ADMIN_DSN
    from wechat_datacube.tokens import TOKEN_SCHEMA

    account = s.accounts["hardauth"]
    sim, appid, dag_id = account.sim, account.appid, account.dag_id
    dsn, dbname = s.dsn_of("hardauth"), s.dbname_of("hardauth")
    seeded = _authorizer_figures(sim, appid)
    with psycopg.connect(dsn, autocommit=True) as conn:
        due = conn.execute(
            f"UPDATE {TOKEN_SCHEMA}.access_token_cache SET refresh_at = now() - interval '1 hour' "
            "WHERE appid = %s AND mode = 'authorizer'",
            (appid,),
        ).rowcount
    locker = psycopg.connect(dsn)
    killed: dict[str, Any] = {}
    # WeChat's answer to the exchange is held back a few seconds: the row lock is taken while
    # the task waits for it, i.e. after the task's own DDL on the token tables (which the
    # lock would block) and before its write of the access token.
    sim.state.set_faults([{"kind": "slow", "delay": EXCHANGE_DELAY, "path": AUTHORIZER_PATH, "count": 1}])
    try:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            run = s.cluster.trigger(dag_id, _day_conf(day))
            _wait_for(lambda: any(r["fired"] for r in sim.state.faults()), "the refresh-token exchange")
            locker.execute(
                f"SELECT 1 FROM {TOKEN_SCHEMA}.access_token_cache WHERE appid = %s AND mode = 'authorizer' FOR UPDATE",
                (appid,),
            )
            rotations_at_lock = _authorizer_figures(sim, appid)["rotations"] - seeded["rotations"]
            backend, port, query = _wait_for(lambda: _blocked_token_write(admin, dbname),
                                             "the task to block writing the access token")
            pid = _wait_for(lambda: _worker_pid_for_port(port), "the blocked backend's client process")
            live = sim.state.issued_tokens("refresh")[-1]
            killed = {
                "blocked_at": " ".join(query.split())[:70],
                "process": _title(pid).split(" -- ")[0],
                "is_task_process": _title(pid).startswith("airflow worker -- "),
                "rotations_at_lock": rotations_at_lock,
                "rotations_at_kill": _authorizer_figures(sim, appid)["rotations"] - seeded["rotations"],
                "rotated_token_committed_at_kill": _stored_refresh_token(dsn, appid) == live,
            }
            os.kill(pid, signal.SIGKILL)
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        time.sleep(0.5)
        locker.rollback()
        final = s.cluster.wait_run(dag_id, run["dag_run_id"], timeout=300)
    finally:
        locker.close()
        sim.state.clear_faults()
    ti = _ti_states(s, dag_id, final["dag_run_id"])[ENDPOINT]
    logs = [s.cluster.task_log(dag_id, r["dag_run_id"], ENDPOINT, n)
            for r, tries in ((seed_run, 1), (final, ti["try_number"])) for n in range(1, tries + 1)]
    figures = _authorizer_figures(sim, appid)
    return {
        "seed_state": seed_run["state"],
        "made_due": due,
        **killed,
        "run_state": final["state"],
        "tries": ti["try_number"],
        "after_kill_exchanges": figures["exchanges"] - seeded["exchanges"],
        **figures,
        "mentions_61023": sum(text.count("61023") for text in logs),
        "stored_is_live": _stored_refresh_token(dsn, appid) == sim.state.issued_tokens("refresh")[-1],
    }


#: (label, conf beyond the dates, expected run state, what the message must say)
CONF_CASES: tuple[tuple[str, dict[str, Any], str, str | None], ...] = (
    ("a list with an unknown name: [\"getusershare\", \"getuserraed\"]",
     {"endpoints": ["getusershare", "getuserraed"]}, "failed", "unknown endpoint name"),
    ("`endpoints` as a string: \"getusershare\"", {"endpoints": "getusershare"}, "success", None),
    ("a 32-day window", {"days": 32}, "failed", "backfill DAG"),
)


def _conf_for(day: dt.date, extra: dict[str, Any]) -> dict[str, Any]:
    extra = dict(extra)
    days = extra.pop("days", 1)
    return {"begin_date": (day - dt.timedelta(days=days - 1)).isoformat(), "end_date": day.isoformat(), **extra}


def _conf_result(s: Any, run: dict[str, Any], label: str, conf: dict[str, Any], expect: str,
                 needle: str | None) -> dict[str, Any]:
    from reliability.permanent import log_line, log_message

    dag_id = s.accounts["hardconf"].dag_id
    tis = _ti_states(s, dag_id, run["dag_run_id"])
    message = ""
    for task_id, ti in sorted(tis.items()):
        if ti["state"] in ("failed", "skipped") and not message:
            text = s.cluster.task_log(dag_id, run["dag_run_id"], task_id, max(1, ti["try_number"]))
            want = needle or "not among the endpoints"
            message = log_message(log_line(text, want), want)
    return {
        "case": label,
        "conf": conf,
        "expected": expect,
        "run_state": run["state"],
        "tasks": {t: f"{ti['state']} (try {ti['try_number']})" for t, ti in sorted(tis.items())},
        "max_try": max((ti["try_number"] for ti in tis.values()), default=0),
        "message": message,
        "message_ok": needle is None or needle in message,
    }


def _shared_appid(s: Any, day: dt.date, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    import psycopg

    from reliability.session import R10_SHARED
    from tests.fixtures.truth import stored_rows, truth_rows
    from wechat_datacube.tokens import TOKEN_SCHEMA

    first = s.accounts[next(iter(R10_SHARED))]
    sim, appid, dsn = first.sim, first.appid, s.dsn_of(first.name)
    accounts = []
    for name, (mode, schema) in R10_SHARED.items():
        stored = stored_rows(dsn, ENDPOINT, day, day, account=name, schema=schema)
        accounts.append({
            "account": name, "mode": mode, "schema": schema, "run_state": runs[name]["state"],
            "rows": len(stored),
            "equal_truth": stored == truth_rows(sim, appid, ENDPOINT, day, day, account=name),
        })
    with psycopg.connect(dsn) as conn:
        cached = dict(conn.execute(
            f"SELECT mode, count(*) FROM {TOKEN_SCHEMA}.access_token_cache WHERE appid = %s GROUP BY mode", (appid,)
        ).fetchall())
        elsewhere = [r[0] for r in conn.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = 'access_token_cache' "
            "AND table_schema <> %s ORDER BY 1", (TOKEN_SCHEMA,)
        ).fetchall()]
    return {
        "appid": appid,
        "accounts": accounts,
        "token_calls": {mode: _calls(sim, appid, path) for mode, path in TOKEN_PATHS.items()},
        "cache_rows": cached,
        "token_tables_elsewhere": elsewhere,
    }


def run_r10(s: Any) -> dict[str, Any]:
    """The cluster cases (a), (d), (e); the in-process ones come from the subprocess."""
    from reliability.session import R10_SHARED

    started = time.monotonic()
    day = s.last - dt.timedelta(days=2)
    conf_dag = s.accounts["hardconf"].dag_id
    # Everything that needs no choreography at once: the (a) seed, the (d) confs, the (e) pairs.
    seed = s.cluster.trigger(s.accounts["hardauth"].dag_id, _day_conf(day - dt.timedelta(days=1)))
    conf_runs = [(case, s.cluster.trigger(conf_dag, _conf_for(day, case[1]))) for case in CONF_CASES]
    share_runs = {name: s.cluster.trigger(s.accounts[name].dag_id, _day_conf(day)) for name in R10_SHARED}
    seed = s.cluster.wait_run(s.accounts["hardauth"].dag_id, seed["dag_run_id"], timeout=300)
    conf = []
    for (label, extra, expect, needle), run in conf_runs:
        run = s.cluster.wait_run(conf_dag, run["dag_run_id"], timeout=300)
        conf.append(_conf_result(s, run, label, _conf_for(day, extra), expect, needle))
    conf_requests = s.accounts["hardconf"].data_calls()
    shares = {name: s.cluster.wait_run(s.accounts[name].dag_id, r["dag_run_id"], timeout=300)
              for name, r in share_runs.items()}
    shared = _shared_appid(s, day, shares)
    log(f"R10 cluster: conf {[c['run_state'] for c in conf]}, shared AppID token calls {shared['token_calls']}")
    interrupted = _interrupted_refresh(s, seed, day)
    log(f"R10 interrupted refresh: {interrupted['run_state']} after {interrupted['tries']} tries, "
        f"refused {interrupted['refused']}")
    return {
        "day": day.isoformat(),
        "interrupted": interrupted,
        "conf": conf,
        "conf_requests": conf_requests,
        "shared": shared,
        "seconds": time.monotonic() - started,
    }


# --- in-process cases: the subprocess ------------------------------------------------------

APPID = "wx_rel_hardlocal"
ACCOUNT = "hardlocal"
PG_CONN = "hardlocal_pg"
#: (label, what the token answers carry as expires_in: JSON text)
EXPIRES_IN: tuple[tuple[str, str], ...] = (
    ("-1", "-1"), ("0", "0"), ("1e300", "1e300"), ("NaN", "NaN"), ("text \"7200 seconds\"", '"7200 seconds"'),
)
TASKS, CALLS_PER_TASK = 4, 10
_PLACEHOLDER = "__r10_expires_in__"


class ExpiresInProxy:
    """Forwards every request to the simulator; token answers get ``expires_in`` = :attr:`raw` (JSON text).

    Everything else passes through as it came: status, content type, body. The tokens
    stay the simulator's (valid for its ``token_ttl``); only what WeChat *says* changes.
    """

    def __init__(self, upstream: str) -> None:
        import requests

        self.upstream = upstream
        self.raw: str | None = None
        self.rewritten = 0
        proxy = self
        session = requests.Session()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = session.request(self.command, proxy.upstream + self.path, data=body or None, timeout=60,
                                         headers={"Content-Type": self.headers.get("Content-Type", "")})
                payload = answer.content
                if proxy.raw is not None and self.path.startswith("/cgi-bin/"):
                    with contextlib.suppress(ValueError):
                        parsed = answer.json()
                        if isinstance(parsed, dict) and "expires_in" in parsed and not parsed.get("errcode"):
                            parsed["expires_in"] = _PLACEHOLDER
                            payload = json.dumps(parsed).replace(f'"{_PLACEHOLDER}"', proxy.raw).encode()
                            proxy.rewritten += 1
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="expires-in-proxy", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> ExpiresInProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _operator_run(day: str) -> int:
    """The child of (b): one operator run in this fresh process; prints a JSON result line."""
    from wechat_datacube.operators import WeChatDatacubeToPostgresOperator

    try:
        summary = WeChatDatacubeToPostgresOperator(
            task_id=f"r10_{ENDPOINT}", endpoint=ENDPOINT, account=ACCOUNT, wechat_conn_id=f"wechat_{ACCOUNT}",
            postgres_conn_id=PG_CONN, begin_date=day, end_date=day,
        ).execute({})
        result = {"ok": True, "rows": summary["rows"], "error": None}
    except Exception as exc:  # noqa: BLE001 - the outcome is what is measured
        result = {"ok": False, "rows": 0, "error": f"{type(exc).__name__}: {exc}"[:300]}
    print("R10-RESULT " + json.dumps(result), flush=True)
    return 0


def fernet_case(sim: Any, day: dt.date) -> list[dict[str, Any]]:
    """(b): three runs, each a fresh process: K1; K2 (K1 forgotten); ``K3,K2`` (K3 new, K2 kept to read)."""
    from cryptography.fernet import Fernet

    k1, k2, k3 = (Fernet.generate_key().decode() for _ in range(3))
    steps = (("key K1 (first run, empty cache)", k1), ("key replaced: K2 only", k2),
             ("key rotated as Airflow documents: K3,K2", f"{k3},{k2}"))
    out = []
    for label, key in steps:
        before = _calls(sim, APPID, TOKEN_PATHS["stable"])
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "reliability.hardening", "--operator-run", day.isoformat()],
            cwd=REPO, env={**os.environ, "AIRFLOW__CORE__FERNET_KEY": key}, capture_output=True, text=True,
            timeout=300,
        )
        text = proc.stdout + proc.stderr
        sys.stderr.write(text[-20000:])  # into this subprocess's log: R6 scans it
        line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("R10-RESULT ")), None)
        result = json.loads(line.removeprefix("R10-RESULT ")) if line else {"ok": False, "rows": 0,
                                                                             "error": f"exit {proc.returncode}"}
        out.append({
            "run": label, **result,
            "token_fetches": _calls(sim, APPID, TOKEN_PATHS["stable"]) - before,
            "warned": DECRYPT_WARNING in text,
            "seconds": time.monotonic() - started,
        })
        log(f"R10 fernet {label}: ok={result['ok']} fetches={out[-1]['token_fetches']} warned={out[-1]['warned']}")
    return out


def expires_in_cases(sim: Any, proxy: ExpiresInProxy, dsn: str, day: dt.date) -> list[dict[str, Any]]:
    """(c): per mode and expires_in value, 4 tasks x 10 data calls; token calls counted at the simulator."""
    import psycopg

    from wechat_datacube.hook import WeChatDatacubeHook
    from wechat_datacube.tokens import EXPIRES_IN_MIN, TOKEN_SCHEMA, clear_token_memo

    out = []
    for mode, path in TOKEN_PATHS.items():
        for label, raw in EXPIRES_IN:
            proxy.raw = raw
            with psycopg.connect(dsn, autocommit=True) as conn, contextlib.suppress(psycopg.errors.UndefinedTable):
                conn.execute(f"DELETE FROM {TOKEN_SCHEMA}.access_token_cache WHERE appid = %s", (APPID,))
            tokens_before, data_before = _calls(sim, APPID, path), _calls(sim, APPID, f"/datacube/{ENDPOINT}")
            errors: list[str] = []
            started = time.monotonic()
            for _ in range(TASKS):
                clear_token_memo()  # a new task process: no memo, the Postgres cache shared
                hook = WeChatDatacubeHook(f"wechat_r10_{mode}", token_store_conn_id=PG_CONN, account=ACCOUNT)
                try:
                    for _ in range(CALLS_PER_TASK):
                        hook.call(ENDPOINT, day, day)
                except Exception as exc:  # noqa: BLE001 - measured
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                finally:
                    hook.close()
            seconds = time.monotonic() - started
            with psycopg.connect(dsn) as conn:
                row = conn.execute(
                    f"SELECT extract(epoch FROM expires_at - updated_at) FROM {TOKEN_SCHEMA}.access_token_cache "
                    "WHERE appid = %s AND mode = %s", (APPID, mode),
                ).fetchone()
            out.append({
                "mode": mode, "expires_in": label,
                "data_calls": _calls(sim, APPID, f"/datacube/{ENDPOINT}") - data_before,
                "token_calls": _calls(sim, APPID, path) - tokens_before,
                # a clamped lifetime of 60 s is refreshed half-way: one more token per 30 s at most
                "bound": 1 + int(seconds // (EXPIRES_IN_MIN / 2)),
                "lifetime": round(float(row[0])) if row and row[0] is not None else None,
                "errors": errors,
                "seconds": seconds,
            })
    proxy.raw = None
    return out


def _modes(root: Path) -> dict[str, str]:
    """relative path -> octal mode of ``root`` and everything under it (dirs end in /)."""
    found = {"./": oct(stat.S_IMODE(root.stat().st_mode))}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root)) + ("/" if path.is_dir() else "")
        found[key] = oct(stat.S_IMODE(path.stat().st_mode))
    return found


#: What the api-server does at its first start: write the generated password into AIRFLOW_HOME, print it.
_WRITES_A_PASSWORD = "import json, sys; json.dump({'admin': 'pw'}, open(sys.argv[1], 'w')); print('password pw')"


def state_dir_cases(scratch: Path) -> list[dict[str, Any]]:
    """(f): the state ``make run`` writes before Airflow starts, under three conditions."""
    from wechat_datacube_dev.localrun.processes import PRIVATE_UMASK, ManagedProcess
    from wechat_datacube_dev.localrun.state import StateDir

    cases = (
        ("fresh, umask 077 (what `python -m wechat_datacube_dev.localrun` sets first)", PRIVATE_UMASK, False),
        ("fresh, umask 022 (the same calls without the launcher's umask)", 0o022, False),
        ("an existing .local/ of an older version (0755, files 0644), umask 077", PRIVATE_UMASK, True),
    )
    out = []
    for index, (label, umask, older) in enumerate(cases):
        root = scratch / f"case{index}" / ".local"
        previous = os.umask(0o022)
        try:
            if older:
                root.mkdir(parents=True, mode=0o755)
                for name in ("accounts.yaml", "secrets.json"):
                    (root / name).write_text("{}\n" if name.endswith("json") else "accounts: []\n")
                    (root / name).chmod(0o644)
                (root / "secrets.json").write_text(json.dumps({"fernet_key": "old", "jwt_secret": "old"}))
            os.umask(umask)
            state = StateDir(root)
            state.acquire()
            state.ensure_accounts_file(name="demo", wechat_conn_id="wechat_demo", postgres_conn_id="wechat_demo_pg",
                                       start=dt.date(2026, 1, 1))
            state.secrets()
            child = ManagedProcess.start("api-server", [sys.executable, "-c", _WRITES_A_PASSWORD,
                                                        str(state.password_file)],
                                         env=os.environ, log_path=state.airflow_home / "api-server.log")
            child.popen.wait(timeout=60)
            state.record_groups({"api-server": child.pid})
            state.write_connection({"dbname": "wechat_datacube"})
            modes = _modes(root)
            state.release()
        finally:
            os.umask(previous)
        files = {k: v for k, v in modes.items() if not k.endswith("/")}
        dirs = {k: v for k, v in modes.items() if k.endswith("/")}
        out.append({"case": label, "umask": oct(umask), "older": older, "root": modes["./"], "dirs": dirs,
                    "files": files})
    return out


def dashboard_cases(dsn: str, scratch: Path) -> list[dict[str, Any]]:
    """(g): what /api/accounts and the page show of a broken accounts file, per user and kind of breakage."""
    import pytest
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    from tests.unit.dashboard.test_guard import ACCOUNTS, BROKEN_ENTRY, OneDagAuthManager, serve
    from wechat_datacube.dag_settings import DAILY_DAG_PREFIX
    from wechat_datacube.dashboard import guard

    broken = scratch / "dashboard" / "accounts.yaml"
    broken.parent.mkdir(parents=True)
    broken.write_text(ACCOUNTS + BROKEN_ENTRY)  # the broken entry is account gamma (connections w_gamma, pg_gamma)
    missing = scratch / "dashboard" / "private-dir" / "accounts.yaml"
    files = (
        ("an invalid entry (account gamma)", broken, ("gamma", "w_gamma", "pg_gamma")),
        ("the file missing (its path)", missing, ("private-dir",)),
    )
    users = (
        ("admin (SimpleAuthManager, role admin)", SimpleAuthManager(),
         SimpleAuthManagerUser(username="r10admin", role="admin"), True),
        ("viewer (SimpleAuthManager, role viewer: may read every DAG)", SimpleAuthManager(),
         SimpleAuthManagerUser(username="r10viewer", role="viewer"), True),
        ("granted one DAG only (stand-in for a FAB role with one DAG's read permission)",
         OneDagAuthManager(f"{DAILY_DAG_PREFIX}alpha"), SimpleAuthManagerUser(username="r10one", role=None), False),
    )
    out = []
    for kind, accounts, revealing in files:
        for label, manager, user, expect_shown in users:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("AIRFLOW_CONN_PG", dsn)  # the valid accounts' connection: a database with no rows
                client = serve(accounts, mp, manager)
                client.app.dependency_overrides[guard.authenticate] = lambda user=user: user
                listing = client.get("/api/accounts")
                page = client.get("/")
            body = listing.json() if listing.status_code == 200 else {}
            seen = sorted({w for w in revealing for text in (listing.text, page.text) if w in text})
            out.append({
                "file": kind, "user": label, "expect_shown": expect_shown,
                "status": f"{listing.status_code} / {page.status_code}",
                "accounts_listed": [a["name"] for a in body.get("accounts", [])],
                "errors": body.get("errors", []),
                "notice_on_page": guard.HIDDEN_ERRORS_NOTICE in page.text,
                "revealing_words_seen": seen,
                "shown": bool(seen),
            })
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--tokens", type=Path, help="where to write every token the simulator issued")
    parser.add_argument("--operator-run", metavar="DAY", help=argparse.SUPPRESS)  # (b)'s child
    args = parser.parse_args()
    if args.operator_run:
        return _operator_run(args.operator_run)
    if not (args.out and args.tokens):
        parser.error("--out and --tokens are required")
    secret = secrets_for([APPID])[APPID]
    day = last_scheduled_day() - dt.timedelta(days=3)
    results: dict[str, Any] = {"day": day.isoformat()}
    with Lab() as lab, tempfile.TemporaryDirectory(prefix="r10-") as scratch:
        sim = lab.simulator({APPID: secret})
        dsn = lab.database("wdc_rel_hardlocal")
        proxy = ExpiresInProxy(sim.base_url).start()
        lab.stack.callback(proxy.stop)
        os.environ.update(Account(ACCOUNT, APPID, secret, sim, PG_CONN, day).env())
        os.environ[connection_env_var(PG_CONN)] = dsn
        for mode in TOKEN_PATHS:
            os.environ.update([wechat_connection_env(f"wechat_r10_{mode}", proxy.base_url, APPID, secret, token_mode=mode)])
        try:
            for key, case in (
                ("fernet", lambda: fernet_case(sim, day)),
                ("expires_in", lambda: expires_in_cases(sim, proxy, dsn, day)),
                ("state_dir", lambda: state_dir_cases(Path(scratch))),
                ("dashboard", lambda: dashboard_cases(dsn, Path(scratch))),
            ):
                started = time.monotonic()
                results[key] = case()
                results[f"{key}_seconds"] = time.monotonic() - started
        finally:
            args.tokens.write_text(json.dumps({"tokens": sim.state.issued_tokens(), "secrets": [secret]}))
    args.out.write_text(json.dumps(results, default=str, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
