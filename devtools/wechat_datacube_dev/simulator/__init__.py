"""A local WeChat datacube API for tests, benchmarks and the demo.

Speaks the real wire protocol over real HTTP (token endpoints, ``/datacube/<name>``,
errcode bodies), serves deterministic synthetic data, and lets tests move its clock,
inject faults, count calls and ask for the expected answer (``state.truth``).
Start it in-process with :class:`SimulatorServer` or as
``python -m wechat_datacube_dev.simulator --port 8765``.
"""

from wechat_datacube_dev.simulator.clock import SimClock
from wechat_datacube_dev.simulator.config import DEMO_APPID, DEMO_SECRET, SimulatorConfig
from wechat_datacube_dev.simulator.server import SimulatorServer
from wechat_datacube_dev.simulator.state import SimulatorState
from wechat_datacube_dev.simulator.wire import ApiError

__all__ = [
    "DEMO_APPID",
    "DEMO_SECRET",
    "ApiError",
    "SimClock",
    "SimulatorConfig",
    "SimulatorServer",
    "SimulatorState",
]
