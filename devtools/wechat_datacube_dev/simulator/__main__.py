"""``python -m wechat_datacube_dev.simulator``: run the simulated WeChat API until Ctrl-C/SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType

from wechat_datacube_dev.simulator.config import DEMO_APPID, DEMO_SECRET, SimulatorConfig
from wechat_datacube_dev.simulator.faults import FaultRule
from wechat_datacube_dev.simulator.server import SimulatorServer


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m wechat_datacube_dev.simulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--appid", default=DEMO_APPID, help="account the token endpoints accept")
    p.add_argument("--secret", default=DEMO_SECRET, help="its app secret")
    p.add_argument("--seed", type=int, default=SimulatorConfig.seed, help="seed of the synthetic data")
    p.add_argument("--ready-hour", type=int, default=SimulatorConfig.ready_hour,
                   help="Beijing hour at which day D's data appears on D+1")
    p.add_argument("--ip-whitelist", default=None, help="comma-separated caller IPs (default: any)")
    p.add_argument("--classic-daily-limit", type=int, default=SimulatorConfig.classic_daily_limit)
    p.add_argument("--faults", default=None, help='JSON list of fault rules (or {"rules": [...]})')
    return p


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    faults = []
    if args.faults:
        parsed = json.loads(args.faults)
        faults = parsed.get("rules", []) if isinstance(parsed, dict) else parsed
        for rule in faults:
            FaultRule.from_dict(rule)  # fail at start, not on the first request
    whitelist = [ip.strip() for ip in args.ip_whitelist.split(",") if ip.strip()] if args.ip_whitelist else None
    return SimulatorConfig(
        accounts={args.appid: args.secret},
        seed=args.seed,
        ready_hour=args.ready_hour,
        ip_whitelist=whitelist,
        classic_daily_limit=args.classic_daily_limit,
        faults=faults,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as err:
        print(f"bad --faults: {err}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    server = SimulatorServer(config, host=args.host, port=args.port).start()
    print(f"WeChat datacube simulator listening on {server.base_url}", flush=True)
    print(f"  appid:  {args.appid}", flush=True)
    print(f"  secret: {args.secret}  (demo credential)", flush=True)
    print(f"  control: {server.base_url}/_sim/clock | counters | faults | truth | tokens | reset", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        print("simulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
