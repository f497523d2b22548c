"""``python -m reliability``: run R1-R7 and write docs/reliability.md.

One Airflow cluster serves R1, R2, R3 and R5 (each with accounts of its own, see
:mod:`reliability.session`). R4 and R7 need no scheduler and run as subprocesses next to
the R1 soak (their output is kept for the R6 scan); R6 runs last, over everything.
A phase that crashes is reported as such and the others still run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import REPO, ForeignLoad, Lab, Report, log, machine, machine_table, markdown_table, secrets_for
from reliability import report as render
from reliability.crash import run_r3
from reliability.permanent import run_r5
from reliability.secrets_scan import plant_canaries, scan
from reliability.session import Session, open_session
from reliability.soak import run_r1, run_r2

DOC = REPO / "docs" / "reliability.md"
TITLES = {
    "R1": "R1 fault soak",
    "R2": "R2 idempotency",
    "R3": "R3 crash (kill -9 mid-write)",
    "R4": "R4 bad input",
    "R5": "R5 permanent errors",
    "R6": "R6 secrets",
    "R7": "R7 token concurrency",
}


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOC)
    args = parser.parse_args()
    facts = machine()
    outcomes: dict[str, tuple[bool | None, str]] = {}
    started = time.monotonic()

    def phase(key: str, fn: Callable[[], tuple[bool, str]]) -> None:
        log(f"{TITLES[key]}: start")
        t = time.monotonic()
        try:
            outcomes[key] = fn()
        except Exception:  # noqa: BLE001 - report the crash, run the other phases
            outcomes[key] = (None, f"The phase crashed:\n\n```\n{traceback.format_exc()[-4000:]}\n```")
        log(f"{TITLES[key]}: {outcomes[key][0]} in {time.monotonic() - t:.0f} s")

    with Lab() as lab, ForeignLoad() as load:
        s = open_session(lab)
        r4 = _subprocess(s, "bad_input")
        r7 = _subprocess(s, "token_concurrency")
        results: dict[str, Any] = {}

        def do_r1() -> tuple[bool, str]:
            results["r1"] = run_r1(s)
            return render.r1(results["r1"])

        phase("R1", do_r1)
        phase("R2", lambda: render.r2(run_r2(s, results["r1"])))
        phase("R3", lambda: render.r3(run_r3(s)))
        phase("R5", lambda: render.r5(run_r5(s)))
        phase("R4", lambda: render.r4(_finish(r4[0], r4[1], r4[3])))
        phase("R7", lambda: render.r7(_finish(r7[0], r7[1], r7[3])))

        def do_r6() -> tuple[bool, str]:
            secrets = list(s.secrets.values()) + s.all_issued_tokens()
            for _, _, tokens, _ in (r4, r7):
                if tokens.exists():
                    data = json.loads(tokens.read_text())
                    secrets += data["tokens"] + data["secrets"]
            canary = "canary-" + secrets_for(["r6"])["r6"]
            planted = plant_canaries(canary, s.run_dir, s.dsn_of("soak"))
            found = scan(
                homes=[s.cluster.home],
                extra_files=[r4[3], r7[3], planted],
                meta_dbs=[s.cluster.meta_db],
                data_dsns=list(s.dsns.values()),
                secrets=secrets,
                canary=canary,
            )
            return render.r6(found)

        phase("R6", do_r6)
        foreign = load.summary()
    total = time.monotonic() - started

    doc = Report(
        "Reliability: faults, crashes, bad input, secrets",
        f"""
Written by `make reliability` (`python -m reliability`) in {total / 60:.1f} minutes. Every
phase runs against real services: PostgreSQL, the WeChat simulator over HTTP, and (R1,
R2, R3, R5) a real Airflow cluster — api-server, scheduler, dag-processor, LocalExecutor,
parallelism 4, pool `wechat_api` of 4 — on the repository's own DAG files. The retry
delay of the DAGs' tasks is set to 2 s for this run (`WECHAT_DATACUBE_RETRY_DELAY_SECONDS`;
production default 2 minutes). R4 and R7 ran as subprocesses next to R1 (they need no
scheduler); other processes on the machine used {foreign} meanwhile.
""",
    )
    summary = []
    for key in ("R1", "R2", "R3", "R4", "R5", "R6", "R7"):
        met, _ = outcomes.get(key, (None, ""))
        summary.append([TITLES[key], {True: "met", False: "**MISSED**", None: "**crashed**"}[met]])
    doc.add("Summary", markdown_table(["phase", "expected result"], summary))
    doc.add("Machine", machine_table(facts))
    for key in ("R1", "R2", "R3", "R4", "R5", "R6", "R7"):
        doc.add(TITLES[key], outcomes.get(key, (None, "not run"))[1])
    doc.add("How to run, and what changed in the product", """
`make reliability` (or `.venv/bin/python -m reliability [--out docs/reliability.md]`; exit
status 0 only if every phase met its expectation). R4 and R7 also run alone:
`python -m reliability.bad_input --out r4.json --tokens t.json`,
`python -m reliability.token_concurrency --out r7.json --tokens t.json`. Needs PostgreSQL
as for `make test`; set `WDC_KEEP_SCRATCH=1` to keep the Airflow homes and logs.

Product change: `plugins/wechat_datacube/dag_factory.py` reads
`WECHAT_DATACUBE_RETRY_DELAY_SECONDS` (positive seconds) for the tasks' first retry delay,
default unchanged (2 minutes); an invalid value fails the DAG import with a message naming
the variable. The suite sets 2 s so that retried tasks (R1, R2, R3) finish in minutes.
""")
    doc.write(args.out)
    log(f"wrote {args.out}")
    return 0 if all(met for met, _ in outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
