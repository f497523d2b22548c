"""``python -m wechat_datacube_dev.localrun {run,demo,psql,airflow}`` — what ``make run``, ``make demo``,
``make psql`` and ``make airflow`` call.

``airflow <args>`` runs the ``airflow`` CLI against the running stack (everything after
``airflow`` goes to it unchanged, options included), e.g. ``python -m
wechat_datacube_dev.localrun airflow connections list``.

Every option has an environment variable, so ``make`` targets take them too, e.g.
``WECHAT_DATACUBE_RUN_PORT=8081 make run``; ``make run EXECUTOR=celery`` passes
``--executor celery`` (CeleryExecutor, a Redis broker and two workers).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wechat_datacube_dev.localrun.stack import StackConfig

ENV_STATE_DIR = "WECHAT_DATACUBE_LOCAL_DIR"
ENV_PORT = "WECHAT_DATACUBE_RUN_PORT"
ENV_DAYS = "WECHAT_DATACUBE_DEMO_DAYS"
ENV_TIMEOUT = "WECHAT_DATACUBE_DEMO_TIMEOUT"
ENV_DB_PREFIX = "WECHAT_DATACUBE_LOCAL_DB"
ENV_EXECUTOR = "WECHAT_DATACUBE_EXECUTOR"
#: ``stack.EXECUTORS``, spelled here so that parsing the command line imports nothing heavy
#: (a test holds the two equal).
EXECUTORS = ("local", "celery")


def build_parser() -> argparse.ArgumentParser:
    env = os.environ
    parser = argparse.ArgumentParser(prog="python -m wechat_datacube_dev.localrun", description=__doc__)
    parser.add_argument(
        "--state-dir", type=Path, default=Path(env.get(ENV_STATE_DIR, ".local")),
        help=f"kept between runs: embedded PostgreSQL, AIRFLOW_HOME, accounts file (env {ENV_STATE_DIR}; .local)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("run", "start everything, keep it running until Ctrl-C"),
                       ("demo", "start everything, finish the catchup, report, stop")):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("--port", type=int, default=int(env.get(ENV_PORT, "8080")),
                         help=f"Airflow api-server port (env {ENV_PORT}; 8080)")
        cmd.add_argument("--host", default="127.0.0.1", help="address the api-server binds to (127.0.0.1)")
        cmd.add_argument("--days", type=int, default=int(env.get(ENV_DAYS, "14")),
                         help=f"days to catch up on a fresh state directory (env {ENV_DAYS}; 14)")
        cmd.add_argument("--db-prefix", default=env.get(ENV_DB_PREFIX, "wechat_datacube"),
                         help=f"databases <prefix> (data) and <prefix>_airflow (metadata) (env {ENV_DB_PREFIX})")
        cmd.add_argument("--simulator-port", type=int, default=0, help="simulator port (0: any free port)")
        cmd.add_argument("--executor", choices=EXECUTORS, default=env.get(ENV_EXECUTOR, "local"),
                         help=f"local: LocalExecutor; celery: CeleryExecutor, a Redis broker "
                         f"(WECHAT_DATACUBE_REDIS_URL, the local server or an embedded one) and two workers "
                         f"(env {ENV_EXECUTOR}; local)")  # fmt: skip
        if name == "demo":
            cmd.add_argument("--timeout", type=float, default=float(env.get(ENV_TIMEOUT, "1200")),
                             help=f"seconds to wait for the catchup (env {ENV_TIMEOUT}; 1200)")
    sub.add_parser("psql", help="psql on the running stack's data database; further arguments go to psql")
    sub.add_parser("airflow", add_help=False,
                   help="the airflow CLI on the running stack (its home, metadata DB, config and connections); "
                   "all further arguments go to airflow, e.g. `airflow dags list`")
    return parser


def split_airflow_args(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """(launcher arguments up to the ``airflow`` command, the airflow CLI's arguments) — None if not that command.

    Split by hand: argparse would take the CLI's own options (``-o json``, ``--help``) for ours.
    """
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--state-dir":
            index += 2
            continue
        if token.startswith("-"):
            index += 1
            continue
        if token == "airflow":
            return argv[: index + 1], argv[index + 1 :]
        break
    return argv, None


def stack_config(args: argparse.Namespace, state_dir: Path) -> StackConfig:
    """The stack configuration ``run`` / ``demo`` options describe."""
    from wechat_datacube_dev.localrun.stack import StackConfig

    return StackConfig(
        state_dir=state_dir,
        port=args.port,
        host=args.host,
        days=args.days,
        db_prefix=args.db_prefix,
        simulator_port=args.simulator_port,
        executor=args.executor,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    launcher_args, airflow_args = split_airflow_args(list(sys.argv[1:] if argv is None else argv))
    args, extra = parser.parse_known_args(launcher_args)
    if extra and args.command != "psql":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "executor", EXECUTORS[0]) not in EXECUTORS:  # argparse checks the command line, not defaults
        parser.error(f"{ENV_EXECUTOR} must be one of {', '.join(EXECUTORS)}, not {args.executor!r}")
    state_dir = args.state_dir.resolve()
    # Anything that imports Airflow in this process must find this home, not ~/airflow.
    os.environ["AIRFLOW_HOME"] = str(state_dir / "airflow")
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    from wechat_datacube_dev.localrun import commands
    from wechat_datacube_dev.localrun.processes import PRIVATE_UMASK
    from wechat_datacube_dev.localrun.state import StateDir, StateError

    # Whatever this launcher and every program it runs (initdb, airflow db migrate, the
    # components) creates in the state directory is the user's alone: it holds the Fernet
    # key, the generated admin password and logs that print it.
    os.umask(PRIVATE_UMASK)

    if args.command == "psql":
        try:
            return commands.psql(StateDir(state_dir), extra)
        except StateError as exc:
            print(f"ERROR: {exc}")
            return commands.EXIT_USAGE
    if args.command == "airflow":
        return commands.airflow(StateDir(state_dir), airflow_args or [])
    if args.days < 1:
        print("--days must be at least 1")
        return commands.EXIT_USAGE
    config = stack_config(args, state_dir)
    commands.install_signal_handlers()
    if args.command == "run":
        return commands.run(config)
    return commands.demo(config, timeout=args.timeout)


if __name__ == "__main__":
    sys.exit(main())
