"""The ``/_sim/`` control routes: the in-process state handle, over HTTP.

For the demo, benchmarks and anything that runs the simulator in another process.
Returns (HTTP status, JSON body).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from wechat_datacube_dev.simulator.api import Request
from wechat_datacube_dev.simulator.facts import UnknownEndpointError
from wechat_datacube_dev.simulator.state import SimulatorState
from wechat_datacube_dev.simulator.wire import ApiError


def _clock(state: SimulatorState) -> dict[str, Any]:
    return {
        "now": state.clock.now().isoformat(),
        "beijing": state.clock.beijing_now().isoformat(),
        "frozen": state.clock.frozen,
    }


def _set_clock(state: SimulatorState, body: dict[str, Any]) -> None:
    if body.get("now"):
        moment = dt.datetime.fromisoformat(str(body["now"]).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError("'now' needs a UTC offset, e.g. 2024-05-01T10:00:00+08:00")
        state.clock.set(moment)
    if body.get("advance_seconds") is not None:
        state.clock.advance(float(body["advance_seconds"]))
    if body.get("unfreeze"):
        state.clock.unfreeze()
    if body.get("reset"):
        state.clock.reset()


def handle(state: SimulatorState, req: Request) -> tuple[int, dict[str, Any]]:
    """Route one ``/_sim/...`` request."""
    route = (req.method, req.path.rstrip("/"))
    body = req.json if isinstance(req.json, dict) else {}
    try:
        if route == ("GET", "/_sim/health"):
            return 200, {"ok": True}
        if route == ("GET", "/_sim/clock"):
            return 200, _clock(state)
        if route == ("POST", "/_sim/clock"):
            _set_clock(state, body)
            return 200, _clock(state)
        if route == ("GET", "/_sim/counters"):
            return 200, state.counters()
        if route == ("POST", "/_sim/counters/reset"):
            state.reset_counters()
            return 200, state.counters()
        if route == ("GET", "/_sim/faults"):
            return 200, {"rules": state.faults()}
        if route == ("POST", "/_sim/faults"):
            state.set_faults(list(body.get("rules") or []))
            return 200, {"rules": state.faults()}
        if route == ("DELETE", "/_sim/faults"):
            state.clear_faults()
            return 200, {"rules": []}
        if route == ("GET", "/_sim/truth"):
            q = req.query
            try:
                rows = state.truth(q.get("appid", ""), q.get("endpoint", ""), q.get("begin_date", ""),
                                   q.get("end_date", ""))
            except ApiError as err:
                return 200, err.body()
            return 200, {"list": rows}
        if route == ("GET", "/_sim/tokens"):
            return 200, {"tokens": state.issued_tokens(), "records": state.tokens.records()}
        if route == ("POST", "/_sim/reset"):
            state.reset()
            return 200, {"ok": True}
    except (ValueError, TypeError, UnknownEndpointError) as err:
        return 400, {"error": str(err)}
    return 404, {"error": f"no simulator control route {req.method} {req.path}"}
