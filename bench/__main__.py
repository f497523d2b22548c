"""``python -m bench``: run B1-B7 and write docs/benchmarks.md.

Order: the timing-sensitive in-process measurements first (B3 parse time, B5 write path),
then one Airflow cluster for B4/B1 (catchups, which also sample the peak RSS of every
task process for B5) and B2 (bulk backfills), then B6 (50 accounts on a Celery cluster,
then on a LocalExecutor one), and last B7 (the dashboard over 50 accounts x 3 years, whose
8 GB of writes would disturb what followed). Nothing runs concurrently with a measurement; other
processes on the machine are sampled and reported per section.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from bench import celery_throughput, dashboard_volume, parse_time, scheduler, write_path
from bench.harness import REPO, Report, log, machine, machine_table, markdown_table, section, verdict

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOC)
    parser.add_argument("--repeats", type=int, default=3, help="catchups of each kind (B4)")
    parser.add_argument("--parse-samples", type=int, default=5)
    parser.add_argument("--write-rows", type=int, default=1_000_000)
    parser.add_argument("--write-repeats", type=int, default=2)
    parser.add_argument("--dashboard-accounts", type=int, default=50, help="B7 accounts")
    parser.add_argument("--dashboard-years", type=int, default=3, help="B7 years of rows per account")
    parser.add_argument("--celery-repeats", type=int, default=1, help="B6 batches of each kind on Celery")
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
    b6 = celery_throughput.run(repeats=args.celery_repeats)
    # Last: its 8 GB of writes and the DROP of its database leave the server flushing for
    # minutes, which slowed every real task of a scheduler benchmark run after it.
    with section("B7 dashboard at volume") as load:
        b7 = dashboard_volume.measure(args.dashboard_accounts, args.dashboard_years)
        b7_foreign = load.summary()
    total = time.monotonic() - started

    doc = Report(
        "Benchmarks",
        f"""
Written by `make bench` (`python -m bench`) in {total / 60:.1f} minutes. Every comparison
below was measured side by side in this same run, on this machine, against real services
(PostgreSQL, the WeChat simulator over HTTP, a real Airflow cluster: api-server,
scheduler, dag-processor, LocalExecutor; B6 runs CeleryExecutor with a Redis broker and
two workers). Figures are medians of repeated runs (the number is given with each);
goals in brackets come from the issue.
""",
    )
    b1_met, b1_text = scheduler.report_b1(sched)
    b2_met, b2_text = scheduler.report_b2(sched)
    b3_met, b3_text = parse_time.report(b3, b3_foreign)
    b4_met = scheduler.b4_ratio(sched["catchups"]) <= 1.25
    b5_met, b5_text = report_b5(b5, sched["catchups"], b5_foreign)
    _, b6_text = celery_throughput.report(b6)
    b7_met, b7_text = dashboard_volume.report(b7)
    doc.add("Summary", markdown_table(["benchmark", "goal", "result"], [
        ["B1 token calls", "1 per token lifetime", verdict(b1_met)],
        ["B2 API calls", "calls ÷ Σ ceil(days/span) = 1.00; rerun 0", verdict(b2_met)],
        ["B3 parse time", parse_time.GOAL_TEXT, parse_time.summary(b3)],
        ["B4 scheduler throughput", "<= 1.25x no-op DAG", verdict(b4_met)],
        ["B5 write path", ">= 0.5x COPY", verdict(b5_met)],
        ["B6 throughput on Celery (50 accounts)", celery_throughput.GOAL_TEXT, celery_throughput.summary(b6)],
        ["B7 dashboard at volume", f"p95 <= {dashboard_volume.GOAL_MS:.0f} ms per endpoint (1 account, 1 year; "
         f"{b7['accounts']} accounts x {b7['years']} years)", verdict(b7_met)],
    ]))
    doc.add("Machine", machine_table(facts))
    doc.add("B1 token calls", b1_text)
    doc.add("B2 API calls (bulk backfill)", b2_text)
    doc.add("B3 parse time", b3_text)
    doc.add("B4 scheduler throughput", scheduler.report_b4(sched))
    doc.add("B5 write path and task memory", b5_text)
    doc.add("B6 throughput on Celery (50 accounts)", b6_text)
    doc.add("B7 dashboard at volume", f"{b7_text}\nOther processes' CPU meanwhile: {b7_foreign}.\n")
    doc.add("Contention", f"Other processes' CPU during the scheduler benchmarks: {sched['foreign_load']}.")
    doc.add("How to run, and what changed in the product", """
`make bench` (or `.venv/bin/python -m bench [--repeats 3] [--parse-samples 5]
[--write-rows 1000000] [--write-repeats 2] [--dashboard-accounts 50] [--dashboard-years 3]
[--celery-repeats 1] [--out docs/benchmarks.md]`). B7 needs ~8 GB of free disk for its database.
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
