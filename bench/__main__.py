"""``python -m bench``: run B1-B7 and write docs/benchmarks.md.

Order: the timing-sensitive in-process measurements first (B3 parse time, B5 write path),
then one Airflow cluster for B4/B1 (catchups, which also sample the peak RSS of every
task process for B5) and B2 (bulk backfills), then B6 (50 accounts on a Celery cluster,
then on a LocalExecutor one), and last B7 (the dashboard over 50 accounts x 3 years, whose
8 GB of writes leave the server busy flushing afterwards). Nothing runs concurrently with a measurement; other
processes on the machine are sampled and reported per section.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import time
from pathlib import Path
from typing import Any

from bench import celery_throughput, dashboard_volume, parse_time, scheduler, write_path
from bench.harness import (
    REPO,
    Report,
    log,
    machine,
    machine_table,
    markdown_table,
    read_report,
    section,
    table_rows,
    verdict,
)

DOC = REPO / "docs" / "benchmarks.md"


def report_b5(write: dict[str, Any], catchups: list[Any], foreign: str) -> tuple[bool, str]:
    met, body = write_path.report(write)
    rss = scheduler.report_rss(catchups)
    return met, f"""
### Write path

{body}

Other processes' CPU meanwhile: {foreign}.

### Peak RSS of one daily task

{rss}
"""


#: B2's goal in the Summary: the issue's Σ ceil(days/span), with week/month endpoints counted by periods.
B2_GOAL = "calls ÷ expected (Σ ceil(days/span); week/month: periods ended, packed per span) = 1.00 per endpoint; rerun 0"


def add_b2(sched: dict[str, Any], rows: dict[str, list[str]], sections: dict[str, str], foreign: str = "") -> None:
    """B2's section and summary row; ``foreign``: the other processes' CPU, when B2 ran alone
    (a full run reports it for all scheduler benchmarks under Contention)."""
    met, text = scheduler.report_b2(sched)
    sections["B2 API calls (bulk backfill)"] = text + (f"\nOther processes' CPU meanwhile: {foreign}.\n" if foreign else "")
    rows["B2 API calls"] = ["B2 API calls", B2_GOAL, verdict(met)]


def split_partial_notes(intro: str, selected: tuple[str, ...]) -> tuple[str, list[str]]:
    """(the intro without its partial-refresh notes, the notes of earlier refreshes to keep).

    A note is kept unless every part it names is re-run now: a refresh of B2 must not drop
    the note that B3's section came from a later run than the full one.
    """
    notes = re.findall(r"^_Partial refresh: .*_$", intro, flags=re.M)
    base = re.sub(r"\n*^_Partial refresh: .*_$", "", intro, flags=re.M).strip()
    kept = [n for n in notes if not set(re.split(r",\s*", n.split(": ", 1)[1].split(" re-run", 1)[0])) <= set(selected)]
    return base, kept


#: Parts of ``--only``: each one's measurement fills its summary rows and sections.
#: ``B2`` is the bulk backfills alone (a few minutes), without the catchups of B1/B4 (~half an hour).
PARTS = ("B3", "B5", "scheduler", "B2", "B6", "B7")
SECTION_ORDER = (
    "B1 token calls", "B2 API calls (bulk backfill)", "B3 parse time", "B4 scheduler throughput",
    "B5 write path and task memory", "B6 throughput on Celery (50 accounts)", "B7 dashboard at volume", "Contention",
)  # fmt: skip


def _parts(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return PARTS
    chosen = {p.strip() for p in raw.split(",") if p.strip()}
    if unknown := chosen - set(PARTS):
        raise SystemExit(f"unknown part(s) {', '.join(sorted(unknown))}; known: {', '.join(PARTS)}")
    return tuple(p for p in PARTS if p in chosen)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOC)
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(PARTS)} (scheduler = B1, B2, B4; "
                        "B2 = the bulk backfills alone); the other sections are kept from --out")
    parser.add_argument("--repeats", type=int, default=3, help="catchups of each kind (B4)")
    parser.add_argument("--parse-samples", type=int, default=5)
    parser.add_argument("--write-rows", type=int, default=1_000_000)
    parser.add_argument("--write-repeats", type=int, default=2)
    parser.add_argument("--dashboard-accounts", type=int, default=50, help="B7 accounts")
    parser.add_argument("--dashboard-years", type=int, default=3, help="B7 years of rows per account")
    parser.add_argument("--celery-repeats", type=int, default=1, help="B6 batches of each kind on Celery")
    args = parser.parse_args()
    selected = _parts(args.only)
    started = time.monotonic()
    facts = machine()
    rows: dict[str, list[str]] = {}
    sections: dict[str, str] = {}

    if "B3" in selected:
        with section("B3 parse time") as load:
            b3 = parse_time.run(args.parse_samples)
            b3_foreign = load.summary()
        _, sections["B3 parse time"] = parse_time.report(b3, b3_foreign)
        rows["B3 parse time"] = ["B3 parse time", parse_time.GOAL_TEXT, parse_time.summary(b3)]
    if "B5" in selected:
        with section("B5 write path") as load:
            b5 = write_path.measure(args.write_rows, args.write_repeats)
            b5_foreign = load.summary()
    if "scheduler" in selected or "B5" in selected:  # B5's task memory comes from the catchups
        sched = scheduler.run(repeats=args.repeats)
        b1_met, sections["B1 token calls"] = scheduler.report_b1(sched)
        add_b2(sched, rows, sections)
        sections["B4 scheduler throughput"] = scheduler.report_b4(sched)
        sections["Contention"] = f"Other processes' CPU during the scheduler benchmarks: {sched['foreign_load']}."
        rows["B1 token calls"] = ["B1 token calls", "1 per token lifetime", verdict(b1_met)]
        rows["B4 scheduler throughput"] = ["B4 scheduler throughput", "<= 1.25x no-op DAG",
                                           verdict(scheduler.b4_ratio(sched["catchups"]) <= 1.25)]
        if "B5" in selected:
            b5_met, sections["B5 write path and task memory"] = report_b5(b5, sched["catchups"], b5_foreign)
            rows["B5 write path"] = ["B5 write path", ">= 0.5x COPY", verdict(b5_met)]
    elif "B2" in selected:
        sched = scheduler.run(catchups=False)
        add_b2(sched, rows, sections, foreign=sched["foreign_load"])
    if "B6" in selected:
        b6 = celery_throughput.run(repeats=args.celery_repeats)
        _, sections["B6 throughput on Celery (50 accounts)"] = celery_throughput.report(b6)
        rows["B6 throughput on Celery (50 accounts)"] = [
            "B6 throughput on Celery (50 accounts)", celery_throughput.GOAL_TEXT, celery_throughput.summary(b6)]
    if "B7" in selected:
        # Last: its 8 GB of writes and the DROP of its database leave the server flushing for
        # a while, and nothing timed should run then.
        with section("B7 dashboard at volume") as load:
            b7 = dashboard_volume.measure(args.dashboard_accounts, args.dashboard_years)
            b7_foreign = load.summary()
        b7_met, b7_text = dashboard_volume.report(b7)
        sections["B7 dashboard at volume"] = f"{b7_text}\nOther processes' CPU meanwhile: {b7_foreign}.\n"
        rows["B7 dashboard at volume"] = [
            "B7 dashboard at volume", f"p95 <= {dashboard_volume.GOAL_MS:.0f} ms per endpoint (1 account, 1 year; "
            f"{b7['accounts']} accounts x {b7['years']} years)", verdict(b7_met)]
    total = time.monotonic() - started

    intro = f"""
Written by `make bench` (`python -m bench`) in {total / 60:.1f} minutes. Every comparison
below was measured side by side in this same run, on this machine, against real services
(PostgreSQL, the WeChat simulator over HTTP, a real Airflow cluster: api-server,
scheduler, dag-processor, LocalExecutor; B6 runs CeleryExecutor with a Redis broker and
two workers). Figures are medians of repeated runs (the number is given with each);
goals in brackets come from the issue.
"""
    old_intro, old = read_report(args.out) if selected != PARTS else ("", {})
    if selected != PARTS:
        base, earlier = split_partial_notes(old_intro, selected)
        intro = "\n\n".join([base or intro, *earlier])
        intro += (f"\n\n_Partial refresh: {', '.join(selected)} re-run on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M UTC}"
                  f" by `python -m bench --only {','.join(selected)}` in {total / 60:.1f} minutes on"
                  f" {facts['commit']}; the other sections are from the full run above._")
    old_rows = table_rows(old.get("Summary", ""))
    order = ["B1 token calls", "B2 API calls", "B3 parse time", "B4 scheduler throughput", "B5 write path",
             "B6 throughput on Celery (50 accounts)", "B7 dashboard at volume"]
    doc = Report("Benchmarks", intro)
    doc.add("Summary", markdown_table(["benchmark", "goal", "result"],
                                      [rows.get(name) or old_rows.get(name) or [name, "", "not run"] for name in order]))
    doc.add("Machine", machine_table(facts) if selected == PARTS or "Machine" not in old else old["Machine"])
    for heading in SECTION_ORDER:
        doc.add(heading, sections.get(heading) or old.get(heading, "not run"))
    doc.add("How to run, and what changed in the product", """
`make bench` (or `.venv/bin/python -m bench [--repeats 3] [--parse-samples 5]
[--write-rows 1000000] [--write-repeats 2] [--dashboard-accounts 50] [--dashboard-years 3]
[--celery-repeats 1] [--only B3,B5,scheduler,B2,B6,B7] [--out docs/benchmarks.md]`); `--only`
re-runs those parts and keeps the other sections of the existing report (`B2` alone: the bulk
backfills without the B1/B4 catchups). B7 needs ~8 GB of free disk for its database.
Single parts: `python bench/parse_time.py`, `python -m bench.write_path`,
`python -m bench.celery_throughput`, `python -m bench.dashboard_volume`. Needs PostgreSQL as for `make test`
(`WECHAT_DATACUBE_TEST_PG`) and, for B6, a Redis as for the Celery test (the local server,
`WECHAT_DATACUBE_REDIS_URL`, or the embedded one); everything else (simulator, Airflow
clusters, databases) is started and removed by the run. Not part of `make test`.

Product changes made while measuring (kept small; the test suite passes unchanged):

* `plugins/wechat_datacube/storage/window_sql.py`, `copy_rows` (B5): the registry's column list is
  computed once per window instead of once per row, and an empty `extra` is sent as the
  COPY text `{}` instead of being serialised to JSON for every row.
* `plugins/wechat_datacube/dag_factory.py`: `WECHAT_DATACUBE_RETRY_DELAY_SECONDS`
  overrides the tasks' first retry delay (default unchanged: 2 minutes); used by
  `make reliability` and by the scheduler benchmarks here (B1, B2, B4), so that a retried
  task does not hold a run for minutes.
""")
    doc.write(args.out)
    log(f"wrote {args.out} in {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
