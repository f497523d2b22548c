"""The reliability suite's deployment: simulators, data databases, accounts, one Airflow cluster.

Every phase gets accounts of its own, so faults and kills never leak from one phase into
another's figures:

* ``soak`` — R1/R2: a 60-day catchup on the *faulty* simulator (transient faults at ~20%
  of requests, short-lived tokens, injected token errors), read timeout 1.5 s;
* ``ref`` — the fault-free reference: the same AppID and seed on a clean simulator, loaded
  through the bulk backfill DAG into its own database;
* ``crash`` — R3: one endpoint (``getuserreadhour``, 216 rows a day), its own simulator and
  database, manual runs only;
* ``perm``, ``permsecret``, ``permappid``, ``permip`` — R5: one endpoint each, own schemas;
  the last three are *really* misconfigured (wrong AppSecret, unknown AppID, a simulator
  whose IP whitelist does not hold 127.0.0.1); ``perm`` gets the other codes injected;
* ``pgrestart`` — R8: a 12-day catchup into a database on the suite's *own* PostgreSQL
  server (:mod:`reliability.private_pg`), which R8 stops and starts; the Airflow metadata
  DB stays on the shared server;
* ``badhttp`` — R9: a 10-day catchup against a simulator that answers with HTML 502
  pages and truncated JSON bodies;
* ``hardauth`` — R10: third-party platform mode (``token_mode=authorizer``) on a simulator
  that rotates the authorizer refresh token at every call, own database; the component
  token is an Airflow Variable (env), fetched from that simulator at start;
* ``hardconf`` — R10: two endpoints, for run confs that must fail (or select one endpoint);
* ``sharestable1/2``, ``shareclassic1/2`` — R10: one AppID, one database, four data
  schemas: two accounts per token mode that must share one cached token.

R11 (a Celery worker killed) needs CeleryExecutor, so it starts a cluster of its own in
the same lab, with its own accounts ``wkill1/2``, simulator and database
(:mod:`reliability.worker_kill`); it adds them to the session (``more_clusters``,
``accounts``, ``sims``, ``dsns``, ``secrets``) so R6 scans them too.

Start dates: ``soak`` and ``ref`` 60 days back, ``pgrestart`` and ``badhttp`` 12 and 10
days back (paused until their phase); the others (R3, R5, R10) today, so they have no scheduled run
at all and only do what a phase triggers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict
from wechat_datacube_dev.simulator import SimulatorServer

from bench.harness import (
    SHORT_RETRY_DELAY_SECONDS,
    Account,
    Cluster,
    Lab,
    accounts_env,
    last_scheduled_day,
    log,
    scratch_dag_folder,
    scratch_dir,
    secrets_for,
    write_accounts_file,
)
from reliability.private_pg import PrivatePostgres
from tests.fixtures.simulator import TEST_AUTHORIZER_APPID, TEST_AUTHORIZER_REFRESH_TOKEN, TEST_COMPONENT_APPID
from tests.fixtures.token_requests import component_token
from wechat_datacube.dag_settings import RETRY_DELAY_ENV
from wechat_datacube.dates import beijing_today

SOAK_DAYS = 60
BACKFILL_DAG = "wechat_datacube_backfill"
#: The faulty simulator's tokens: short-lived, so they expire and are replaced during the soak.
SOAK_TOKEN_TTL = 240
SOAK_STABLE_MIN_REMAINING = 60
#: A client read timeout below the "slow" fault's delay turns that fault into a timeout.
SOAK_READ_TIMEOUT = 1.5
R5_ACCOUNTS = ("perm", "permsecret", "permappid", "permip")
#: Days the R8 (PostgreSQL restart) and R9 (HTML 502 / truncated bodies) catchups cover.
R8_DAYS = 12
R9_DAYS = 10
#: R10's accounts that share one AppID: name -> (token mode, data schema).
R10_SHARED = {
    "sharestable1": ("stable", "share_stable_one"),
    "sharestable2": ("stable", "share_stable_two"),
    "shareclassic1": ("classic", "share_classic_one"),
    "shareclassic2": ("classic", "share_classic_two"),
}
R10_ACCOUNTS = ("hardauth", "hardconf", *R10_SHARED)
#: The Airflow Variable holding the R10 platform's component_access_token.
R10_COMPONENT_VARIABLE = "wechat_rel_component_token"
#: R10's endpoints: ``hardconf`` loads both, the others the first.
R10_ENDPOINTS = ("getusershare", "getuserread")


@dataclass
class Session:
    lab: Lab
    cluster: Cluster
    run_dir: Path
    accounts: dict[str, Account]
    sims: dict[str, SimulatorServer]
    dsns: dict[str, str]
    secrets: dict[str, str]
    start: dt.date
    last: dt.date
    #: R8's own PostgreSQL server (holds the ``pgrestart`` account's data database).
    private_pg: PrivatePostgres
    #: Clusters a phase started of its own (R11's Celery cluster): R6 scans their homes and metadata DBs too.
    more_clusters: list[Cluster] = field(default_factory=list)
    #: Phase results, filled as phases run (the report reads them).
    results: dict[str, Any] = field(default_factory=dict)

    def dsn_of(self, account: str) -> str:
        return self.dsns[self.accounts[account].pg_conn_id]

    def phase_account(self, account: str) -> tuple[Account, SimulatorServer, str]:
        """A phase's account, the simulator it talks to and its data database's DSN."""
        return self.accounts[account], self.sims[account], self.dsn_of(account)

    def dbname_of(self, account: str) -> str:
        return conninfo_to_dict(self.dsn_of(account))["dbname"]

    def all_issued_tokens(self) -> list[str]:
        return [t for sim in self.sims.values() for t in sim.state.issued_tokens()]


def open_session(lab: Lab) -> Session:
    """Start everything; DAGs of the R3/R5 accounts are unpaused (they have no scheduled runs)."""
    last = last_scheduled_day()
    start = last - dt.timedelta(days=SOAK_DAYS - 1)
    today = beijing_today()
    appids = {"soak": "wx_rel_soak", "crash": "wx_rel_crash", "perm": "wx_rel_perm", "permip": "wx_rel_permip",
              "pgrestart": "wx_rel_pgrestart", "badhttp": "wx_rel_badhttp", "hardconf": "wx_rel_hardconf",
              "hardshare": "wx_rel_hardshare", "hardauth": TEST_AUTHORIZER_APPID}
    secrets = secrets_for(appids.values())
    sims = {
        "faulty": lab.simulator(
            {appids["soak"]: secrets[appids["soak"]]},
            token_ttl=SOAK_TOKEN_TTL,
            stable_min_remaining=SOAK_STABLE_MIN_REMAINING,
        ),
        "clean": lab.simulator({appids["soak"]: secrets[appids["soak"]]}),
        "crash": lab.simulator({appids["crash"]: secrets[appids["crash"]]}),
        "perm": lab.simulator({appids["perm"]: secrets[appids["perm"]]}),
        "ip": lab.simulator({appids["permip"]: secrets[appids["permip"]]}, ip_whitelist=["10.9.9.9"]),
        "pgrestart": lab.simulator({appids["pgrestart"]: secrets[appids["pgrestart"]]}),
        "badhttp": lab.simulator({appids["badhttp"]: secrets[appids["badhttp"]]}),
        # Every lab simulator knows the test component and its authorizer (rotating refresh tokens).
        "hardauth": lab.simulator({}),
        "hardconf": lab.simulator({appids["hardconf"]: secrets[appids["hardconf"]]}),
        "hardshare": lab.simulator({appids["hardshare"]: secrets[appids["hardshare"]]}),
    }
    dsns = {conn: lab.database(f"wdc_rel_{conn.removesuffix('_pg')}")
            for conn in ("soak_pg", "ref_pg", "crash_pg", "perm_pg", "badhttp_pg", "hardauth_pg", "hard_pg")}
    private_pg = PrivatePostgres()
    lab.stack.callback(private_pg.close)
    private_pg.start()
    dsns["pgrestart_pg"] = private_pg.create_database("wdc_rel_pgrestart")
    daily = {"ready_deadline_hour": 0}
    one = ("getusershare",)
    accounts = [
        Account("soak", appids["soak"], secrets[appids["soak"]], sims["faulty"], "soak_pg", start, options=daily,
                conn_extra={"read_timeout": SOAK_READ_TIMEOUT, "connect_timeout": SOAK_READ_TIMEOUT}),
        Account("ref", appids["soak"], secrets[appids["soak"]], sims["clean"], "ref_pg", start, options=daily),
        Account("crash", appids["crash"], secrets[appids["crash"]], sims["crash"], "crash_pg", today,
                endpoints=("getuserreadhour",), options=daily, conn_extra={"read_timeout": 120}),
        Account("perm", appids["perm"], secrets[appids["perm"]], sims["perm"], "perm_pg", today, endpoints=one,
                options={**daily, "schema": "perm"}),
        Account("permsecret", appids["perm"], "wrong-" + secrets[appids["perm"]][6:], sims["perm"], "perm_pg", today,
                endpoints=one, options={**daily, "schema": "permsecret"}),
        Account("permappid", "wx_rel_unknown", secrets[appids["perm"]], sims["perm"], "perm_pg", today,
                endpoints=one, options={**daily, "schema": "permappid"}),
        Account("permip", appids["permip"], secrets[appids["permip"]], sims["ip"], "perm_pg", today, endpoints=one,
                options={**daily, "schema": "permip"}),
        Account("pgrestart", appids["pgrestart"], secrets[appids["pgrestart"]], sims["pgrestart"], "pgrestart_pg",
                last - dt.timedelta(days=R8_DAYS - 1), options=daily),
        Account("badhttp", appids["badhttp"], secrets[appids["badhttp"]], sims["badhttp"], "badhttp_pg",
                last - dt.timedelta(days=R9_DAYS - 1), options=daily),
        Account("hardauth", appids["hardauth"], secrets[appids["hardauth"]], sims["hardauth"], "hardauth_pg", today,
                endpoints=R10_ENDPOINTS[:1], options=daily,
                conn_extra={"token_mode": "authorizer", "component_appid": TEST_COMPONENT_APPID,
                            "component_token_variable": R10_COMPONENT_VARIABLE,
                            "authorizer_appid": appids["hardauth"],
                            "authorizer_refresh_token": TEST_AUTHORIZER_REFRESH_TOKEN}),
        Account("hardconf", appids["hardconf"], secrets[appids["hardconf"]], sims["hardconf"], "hard_pg", today,
                endpoints=R10_ENDPOINTS, options=daily),
        *(Account(name, appids["hardshare"], secrets[appids["hardshare"]], sims["hardshare"], "hard_pg", today,
                  endpoints=R10_ENDPOINTS[:1], options={**daily, "schema": schema}, conn_extra={"token_mode": mode})
          for name, (mode, schema) in R10_SHARED.items()),
    ]
    by_name = {a.name: a for a in accounts}
    run_dir = scratch_dir("reliability")
    accounts_file = write_accounts_file(run_dir / "accounts.yaml", accounts)
    env = accounts_env(accounts, accounts_file, dsns)
    env[RETRY_DELAY_ENV] = SHORT_RETRY_DELAY_SECONDS
    env[f"AIRFLOW_VAR_{R10_COMPONENT_VARIABLE.upper()}"] = component_token(sims["hardauth"])["component_access_token"]
    cluster = lab.cluster(env, dag_folder=scratch_dag_folder())
    for account in accounts:
        cluster.wait_for_dag(account.dag_id)
    cluster.wait_for_dag(BACKFILL_DAG)
    for name in ("crash", *R5_ACCOUNTS, *R10_ACCOUNTS):
        cluster.set_paused(by_name[name].dag_id, False)
    cluster.set_paused(BACKFILL_DAG, False)
    log(f"reliability cluster up: {cluster.base_url}, soak {start}..{last}")
    all_secrets = {a.name: a.secret for a in accounts}
    all_secrets["hardauth (initial refresh token)"] = TEST_AUTHORIZER_REFRESH_TOKEN
    return Session(lab, cluster, run_dir, by_name, sims, dsns, all_secrets, start, last, private_pg)
