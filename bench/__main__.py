"""``python -m bench``: run B1-B5 and write docs/benchmarks.md.

Order: the timing-sensitive in-process measurements first (B3 parse time, B5 write path),
then one Airflow cluster for B4/B1 (catchups, which also sample the peak RSS of every
task process for B5) and B2 (bulk backfills). Nothing runs concurrently with a
measurement; other processes on the machine are sampled and reported per section.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from bench import parse_time, scheduler, write_path
from bench.harness import REPO, Report, log, machine, machine_table, markdown_table, section, verdict

DOC = REPO / "docs" / "benchmarks.md"


def report_b3(b3: dict[str, Any], samples: int, foreign: str) -> tuple[bool, str]:
    results = b3["sizes"]
    rows = [
        [r["accounts"], r["dags"], r["tasks"], f"{r['ours_s'] * 1000:.1f}", f"{r['baseline_s'] * 1000:.1f}",
         f"{r['ratio']:.2f}x", verdict(r["ratio"] <= parse_time.GOAL)]
        for r in results
    ]
    per_file = [
        [r["accounts"], name, f"{ours * 1000:.1f}", f"{base * 1000:.1f}", f"{ours / base:.2f}x"]
        for r in results
        for name, (ours, base) in r["per_file"].items()
    ]
    met = all(r["ratio"] <= parse_time.GOAL for r in results)
    small, large = results[0], results[-1]
    accounts = large["accounts"] - small["accounts"]
    daily = "wechat_datacube_daily.py"
    per_account_ours = (large["per_file"][daily][0] - small["per_file"][daily][0]) / accounts
    per_account_base = (large["per_file"][daily][1] - small["per_file"][daily][1]) / accounts
    margin = (parse_time.GOAL - 1) * small["baseline_s"]
    imports = sum(b3["fixed"].values())
    fixed = markdown_table(
        ["file of dags/", "package modules it imports (ms)"],
        [[name, f"{s * 1000:.1f}"] for name, s in b3["fixed"].items()] + [["both", f"{imports * 1000:.1f}"]],
    )
    return met, f"""
Goal: parsing `dags/` takes <= {parse_time.GOAL}x an EmptyOperator baseline of the same shape.
Each file parsed in a fresh interpreter with Airflow loaded, as the DAG processor does (it
parses every file in a process of its own). The Airflow modules a file names are imported
first, for ours and the baseline alike: the DAG processor imports them in its long-lived
manager before forking the parse process (`parsing_pre_import_modules`). Byte-code cached;
a folder's time is the sum over its files; ours and the baseline alternated, median of
{samples} samples. The baseline has one file per file of `dags/`: the daily DAGs (six
EmptyOperator tasks each, same timetable) and the backfill DAG (same params, plan →
mapped load → report). Other processes' CPU meanwhile: {foreign}.

{markdown_table(["accounts", "DAGs", "tasks", "dags/ (ms)", "baseline (ms)", "ratio", "result"], rows)}

Per file (median ms):

{markdown_table(["accounts", "file", "ours (ms)", "its baseline (ms)", "ratio"], per_file)}

Result: {verdict(met)}.

Per DAG the product is within the goal: each additional account adds
{per_account_ours * 1000:.2f} ms to the daily file against {per_account_base * 1000:.2f} ms for the
baseline ({per_account_ours / per_account_base:.2f}x). What is fixed per file is importing the
package's own modules (registry, accounts validation, error classes, the operator, the retry
policy, the DAG factory; nothing that talks to the network or a database), which the
baseline never pays — measured the same way (fresh interpreter, Airflow and the file's
Airflow imports loaded, median of {samples}):

{fixed}

With {small['accounts']} account the baseline folder parses in {small['baseline_s'] * 1000:.1f} ms, so
{parse_time.GOAL}x leaves {margin * 1000:.1f} ms for everything ours does beyond EmptyOperator tasks;
the package imports alone take {imports * 1000:.1f} ms. Under that margin the DAG files could not
import the product's modules at all (the operator class would live in the DAG file). At
{large['accounts']} accounts the fixed cost is diluted: {large['ratio']:.2f}x. The whole folder parses in
{large['ours_s'] * 1000:.0f} ms with {large['accounts']} accounts, once every `min_file_process_interval`
(30 s by default): about {large['ours_s'] / 30 * 100:.2f}% of one core.
"""


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOC)
    parser.add_argument("--repeats", type=int, default=3, help="catchups of each kind (B4)")
    parser.add_argument("--parse-samples", type=int, default=5)
    parser.add_argument("--write-rows", type=int, default=1_000_000)
    parser.add_argument("--write-repeats", type=int, default=2)
    args = parser.parse_args()
    started = time.monotonic()
    facts = machine()

    with section("B3 parse time") as load:
        b3 = parse_time.run(args.parse_samples)
        b3_foreign = load.summary()
    with section("B5 write path") as load:
        b5 = write_path.measure(args.write_rows, args.write_repeats)
        b5_foreign = load.summary()
    sched = scheduler.run(repeats=args.repeats)
    total = time.monotonic() - started

    doc = Report(
        "Benchmarks",
        f"""
Written by `make bench` (`python -m bench`) in {total / 60:.1f} minutes. Every comparison
below was measured side by side in this same run, on this machine, against real services
(PostgreSQL, the WeChat simulator over HTTP, a real Airflow cluster: api-server,
scheduler, dag-processor, LocalExecutor). Figures are medians of repeated runs (the
number is given with each); goals in brackets come from the issue.
""",
    )
    b1_met, b1_text = scheduler.report_b1(sched)
    b2_met, b2_text = scheduler.report_b2(sched)
    b3_met, b3_text = report_b3(b3, args.parse_samples, b3_foreign)
    b4_met = scheduler.b4_ratio(sched["catchups"]) <= 1.25
    b5_met, b5_text = report_b5(b5, sched["catchups"], b5_foreign)
    doc.add("Summary", markdown_table(["benchmark", "goal", "result"], [
        ["B1 token calls", "1 per token lifetime", verdict(b1_met)],
        ["B2 API calls", "calls ÷ Σ ceil(days/span) = 1.00; rerun 0", verdict(b2_met)],
        ["B3 parse time", "<= 1.5x baseline", "; ".join(
            f"{verdict(r['ratio'] <= parse_time.GOAL)} at {r['accounts']} account(s) ({r['ratio']:.2f}x)"
            for r in b3["sizes"])],
        ["B4 scheduler throughput", "<= 1.25x no-op DAG", verdict(b4_met)],
        ["B5 write path", ">= 0.5x COPY", verdict(b5_met)],
    ]))
    doc.add("Machine", machine_table(facts))
    doc.add("B1 token calls", b1_text)
    doc.add("B2 API calls (bulk backfill)", b2_text)
    doc.add("B3 parse time", b3_text)
    doc.add("B4 scheduler throughput", scheduler.report_b4(sched))
    doc.add("B5 write path and task memory", b5_text)
    doc.add("Contention", f"Other processes' CPU during the scheduler benchmarks: {sched['foreign_load']}.")
    doc.add("How to run, and what changed in the product", """
`make bench` (or `.venv/bin/python -m bench [--repeats 3] [--parse-samples 5]
[--write-rows 1000000] [--write-repeats 2] [--out docs/benchmarks.md]`). Single parts:
`python bench/parse_time.py`, `python -m bench.write_path`. Needs PostgreSQL as for
`make test` (`WECHAT_DATACUBE_TEST_PG`); everything else (simulator, Airflow cluster,
databases) is started and removed by the run. Not part of `make test`.

Product changes made while measuring (kept small; the test suite passes unchanged):

* `plugins/wechat_datacube/storage.py`, `_copy_rows` (B5): the registry's column list is
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
