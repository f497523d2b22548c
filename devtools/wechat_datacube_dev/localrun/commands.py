"""The four things a person does with the local stack: run it, demo it, query it, drive it.

``run``  starts the stack, prints where everything is, reports catchup progress and keeps
         going until Ctrl-C (or SIGTERM), then stops every process it started.
``demo`` starts the same stack, waits until the catchup has finished, prints rows per
         table of every endpoint the demo account is configured for and a summary, stops
         everything; exit status 0 only if every run succeeded and every table has rows
         and all its dates of the catchup done (:func:`demo_problem`).
``psql`` opens psql on the data database of the running stack.
``airflow`` runs the ``airflow`` CLI against the running stack: its AIRFLOW_HOME,
         metadata database, configuration and connections (``make airflow ARGS="dags list"``).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from types import FrameType

import psycopg

from wechat_datacube.endpoints import ALL_SOURCES
from wechat_datacube_dev.localrun import CheckoutNotFoundError
from wechat_datacube_dev.localrun.airflow_cluster import AIRFLOW_BIN, ClusterError
from wechat_datacube_dev.localrun.postgres import shell_command
from wechat_datacube_dev.localrun.report import (
    CatchupStatus,
    TableCount,
    catchup_status,
    format_counts,
    last_scheduled_day,
    table_counts,
)
from wechat_datacube_dev.localrun.stack import (
    DAG_ID,
    DATA_SCHEMA,
    DEMO_ACCOUNT,
    UI_USER,
    LocalStack,
    StackConfig,
    StackError,
)
from wechat_datacube_dev.localrun.state import StateDir, StateError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXAMPLE_QUERY = (
    f"SELECT ref_date, int_page_read_user, int_page_read_count FROM {DATA_SCHEMA}.user_read "
    f"WHERE user_source = {ALL_SOURCES} ORDER BY ref_date"
)


class Interrupted(Exception):
    """SIGTERM/SIGHUP arrived: shut down as for Ctrl-C."""


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def install_signal_handlers() -> None:
    """Ctrl-C, SIGTERM and SIGHUP all mean "stop everything" (also when started in the background,
    where a shell hands us SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)


def _shielded_stop(stack: LocalStack) -> None:
    """Stop the stack with Ctrl-C/SIGTERM ignored, so a second press cannot leave processes behind."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        stack.stop()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _status(stack: LocalStack) -> CatchupStatus:
    assert stack.cluster is not None and stack.first_day is not None
    return catchup_status(stack.cluster.dag_runs(DAG_ID), stack.first_day, last_scheduled_day())


def _counts(stack: LocalStack, first: dt.date, last: dt.date) -> list[TableCount]:
    """Rows per table of every endpoint the demo account's accounts file configures."""
    return table_counts(stack.data_params(), DEMO_ACCOUNT, first, last, endpoints=stack.endpoints, schema=DATA_SCHEMA)


def _relative(path: os.PathLike[str] | str) -> str:
    """``path`` relative to the working directory when inside it (``.local/...``), else absolute."""
    absolute = os.path.abspath(path)
    cwd = os.getcwd()
    return os.path.relpath(absolute, cwd) if absolute.startswith(cwd + os.sep) else absolute


def executor_lines(stack: LocalStack) -> list[str]:
    """The banner's executor lines: LocalExecutor, or the Celery workers and the broker (no password)."""
    assert stack.cluster is not None
    celery = stack.cluster.celery
    if celery is None:
        return ["  Executor     LocalExecutor (tasks run on this machine, in the scheduler's workers)"]
    assert stack.broker is not None
    workers = ", ".join(celery.worker_names())
    return [
        f"  Executor     CeleryExecutor: {celery.workers} workers {workers} ({celery.concurrency} task slots each), "
        f"queue {celery.queue}",
        f"  Broker       {stack.broker.description}; results in the metadata database",
    ]


def banner(stack: LocalStack) -> str:
    assert stack.cluster is not None and stack.pg is not None and stack.simulator is not None
    url = stack.cluster.base_url
    state = stack.state
    binary, *args = stack.pg.psql_command(stack.config.data_db)
    psql = shell_command([_relative(binary) if os.sep in binary else binary, *args])
    first, last = stack.first_day, last_scheduled_day()
    rule = "=" * 78
    return "\n".join(
        [
            rule,
            "WeChat datacube pipeline running locally",
            f"  Airflow UI   {url}    login: {UI_USER} / {stack.password}",
            f"  DAG          {url}/dags/{DAG_ID}  (catching up {first} .. {last})",
            f"  REST API     {url}/api/v2  (token: POST {url}/auth/token with that login)",
            f"  Simulator    {stack.simulator.base_url}  (stands in for api.weixin.qq.com)",
            f"  PostgreSQL   {stack.pg.description}",
            f"               WeChat data: database {stack.config.data_db}, schema {DATA_SCHEMA}; "
            f"Airflow metadata: {stack.config.meta_db}",
            *executor_lines(stack),
            '  CLI          make airflow ARGS="dags list"   (the airflow CLI on this stack; another terminal)',
            "  Query        make psql       (another terminal, while this runs), or:",
            f"               {psql} \\",
            f"                 -c '{EXAMPLE_QUERY}'",
            f"  Logs         {_relative(state.airflow_home)}/<component>.log, task logs in "
            f"{_relative(state.airflow_home / 'logs')}/",
            f"  State        {_relative(state.root)}/ is kept: the next run continues from here "
            "(stop, then delete it to start over)",
            "Press Ctrl-C to stop everything.",
            rule,
        ]
    )


class _Progress:
    """Polls the catchup of the running stack and says each new status line once."""

    def __init__(self, stack: LocalStack, say: Callable[[str], None]) -> None:
        self.stack, self.say, self.last_line = stack, say, ""

    def poll(self) -> CatchupStatus:
        assert self.stack.cluster is not None
        self.stack.cluster.check_alive()
        status = _status(self.stack)
        if status.line() != self.last_line:
            self.last_line = status.line()
            self.say(self.last_line)
        return status


def _supervised(
    stack: LocalStack,
    say: Callable[[str], None],
    body: Callable[[], int],
    *,
    interrupted: tuple[str, int],
    failure: str,
) -> int:
    """Run ``body`` (its exit status), turning the ways it can end into messages and exit statuses.

    Ctrl-C/SIGTERM: ``interrupted`` (message, status); a configuration the stack cannot start
    with: ``EXIT_USAGE``; a component or the database failing: ``failure: <why>``, ``EXIT_FAILED``.
    Whatever happened, every process the stack started is stopped.
    """
    try:
        return body()
    except (KeyboardInterrupt, Interrupted):
        message, status = interrupted
        say(message)
        return status
    except (StackError, StateError, CheckoutNotFoundError) as exc:
        say(f"ERROR: {exc}")
        return EXIT_USAGE
    except (ClusterError, psycopg.Error) as exc:
        say(f"{failure}: {exc}")
        return EXIT_FAILED
    finally:
        _shielded_stop(stack)
        say("stopped.")


def run(config: StackConfig, say: Callable[[str], None] = print, poll: float = 5.0) -> int:
    """``make run``: start, report, wait for Ctrl-C, stop."""
    stack = LocalStack(config, say)
    return _supervised(
        stack, say, lambda: _serve(stack, say, poll), interrupted=("\ninterrupted: stopping everything ...", EXIT_OK),
        failure="ERROR",
    )  # fmt: skip


def _serve(stack: LocalStack, say: Callable[[str], None], poll: float) -> int:
    """Start, print the banner, then report progress (and each failed run once) until interrupted."""
    stack.start()
    say(banner(stack))
    progress, announced = _Progress(stack, say), False
    reported: set[str] = set()  # failed runs already announced
    while True:
        status = progress.poll()
        if status.complete and not announced:
            announced = True
            say(format_counts(_counts(stack, status.first, status.last)))
            say("catchup complete; new days are loaded every day at 10:00 Beijing while this runs.")
        for run_ in status.failed_runs():
            if run_["dag_run_id"] not in reported:
                reported.add(run_["dag_run_id"])
                assert stack.cluster is not None
                say(f"run {run_['dag_run_id']} FAILED: see the UI ({stack.cluster.base_url}/dags/{DAG_ID}/runs)")
        time.sleep(poll)


def _describe_failures(stack: LocalStack, status: CatchupStatus) -> list[str]:
    assert stack.cluster is not None
    lines = []
    for run_ in status.failed_runs():
        tis = stack.cluster.task_instances(DAG_ID, run_["dag_run_id"])
        failed = [f"{ti['task_id']} (try {ti['try_number']})" for ti in tis if ti["state"] in ("failed", "upstream_failed")]
        lines.append(f"  run {run_['dag_run_id']}: failed tasks {', '.join(failed) or '-'}")
    lines.append(f"  task logs: {stack.state.airflow_home / 'logs'}/dag_id={DAG_ID}/")
    return lines


def demo(config: StackConfig, timeout: float, say: Callable[[str], None] = print, poll: float = 3.0) -> int:
    """``make demo``: start, catch up to completion, print counts and a summary, stop."""
    stack = LocalStack(config, say)
    return _supervised(
        stack, say, lambda: _demo(stack, timeout, say, poll), interrupted=("\ninterrupted", EXIT_FAILED),
        failure="DEMO FAILED",
    )  # fmt: skip


def _demo(stack: LocalStack, timeout: float, say: Callable[[str], None], poll: float) -> int:
    """The demo's steps: start counting, wait for the catchup, judge what it stored."""
    started = time.monotonic()
    before = _start_counting(stack)
    say(f"demo: waiting for the catchup runs of {DAG_ID} (timeout {timeout:.0f} s)")
    status = _await_catchup(stack, timeout, say, poll)
    if status is None:
        return EXIT_FAILED
    return _judge_demo(stack, status, before, time.monotonic() - started, say)


def _start_counting(stack: LocalStack) -> list[TableCount]:
    """Start the stack; the rows per table before any task can run (what the demo adds is measured against it)."""
    stack.start_services()
    assert stack.first_day is not None
    before = _counts(stack, stack.first_day, last_scheduled_day())
    stack.start_airflow()
    return before


def _await_catchup(stack: LocalStack, timeout: float, say: Callable[[str], None], poll: float) -> CatchupStatus | None:
    """The catchup once every run succeeded; None (and why, said) when a run failed or time ran out."""
    progress = _Progress(stack, say)
    deadline = time.monotonic() + timeout
    while True:
        status = progress.poll()
        if status.failed_runs():
            say("DEMO FAILED: a catchup run failed")
            for line in _describe_failures(stack, status):
                say(line)
            return None
        if status.complete:
            return status
        if time.monotonic() > deadline:
            say(f"DEMO FAILED: catchup not finished after {timeout:.0f} s ({status.line()})")
            return None
        time.sleep(poll)


def _judge_demo(
    stack: LocalStack, status: CatchupStatus, before: list[TableCount], seconds: float, say: Callable[[str], None]
) -> int:
    """Print rows per table and a summary; OK only if every table has rows and every date of the catchup
    is done (a week or month table: every period that ended in it; none may have ended yet)."""
    assert stack.simulator is not None
    counts = _counts(stack, status.first, status.last)
    say("")
    say(format_counts(counts, before))
    calls = stack.simulator.state.counters()["paths"]
    datacube = sum(n for p, n in calls.items() if p.startswith("/datacube/"))
    tokens = sum(n for p, n in calls.items() if p.startswith("/cgi-bin/"))
    rows = sum(c.rows for c in counts)
    say("")
    say(
        f"summary: {status.succeeded}/{status.days} daily runs of {DAG_ID} succeeded "
        f"({status.first}..{status.last}, Beijing); {rows} rows in "
        f"{len(counts)} tables, {rows - sum(c.rows for c in before)} new; "
        f"{datacube} datacube + {tokens} token calls to the simulator; {seconds:.0f} s."
    )
    problem = demo_problem(counts)
    if problem:
        say(f"DEMO FAILED: {problem}")
        return EXIT_FAILED
    say("DEMO OK")
    return EXIT_OK


def demo_problem(counts: list[TableCount]) -> str | None:
    """What is wrong with the stored tables, or None: a table without rows although a date of it was
    due, or a due date not done (a week / month table with no period ended in the catchup owes nothing)."""
    empty = [c.table for c in counts if c.rows == 0 and c.expected]
    unfinished = [c.table for c in counts if c.days_loaded < c.expected]
    if empty or unfinished:
        return f"tables without rows {empty or '-'}; dates not loaded in {unfinished or '-'}"
    return None


def psql(state_dir: StateDir, extra_args: list[str]) -> int:
    """Replace this process with psql on the running stack's data database."""
    args = [*state_dir.read_connection()["psql"], *extra_args]
    try:
        os.execvp(args[0], args)
    except FileNotFoundError:
        print(f"{args[0]} not found; install the PostgreSQL client (e.g. apt-get install postgresql-client)")
    return EXIT_FAILED


def airflow_command(state_dir: StateDir, args: list[str], environ: Mapping[str, str] = os.environ) -> tuple[list[str], dict[str, str]]:
    """The ``airflow`` command line and environment reaching the running stack; StateError if none runs.

    The environment is the caller's with the stack's recorded settings on top (AIRFLOW_HOME,
    the metadata DB, the Fernet key, ``[core] default_timezone``, the accounts file ...), so
    the CLI sees what the components see. ``AIRFLOW_CONN_*`` variables of the caller's shell
    are dropped: they would shadow the stack's connections in the metadata DB.
    """
    settings = state_dir.airflow_env()
    env = {k: v for k, v in environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update(settings)
    return [AIRFLOW_BIN, *args], env


def airflow(state_dir: StateDir, args: list[str]) -> int:
    """Replace this process with ``airflow <args>`` on the running stack (exit status: the CLI's)."""
    try:
        argv, env = airflow_command(state_dir, args)
    except StateError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_USAGE
    os.execve(argv[0], argv, env)
    return EXIT_FAILED  # not reached
