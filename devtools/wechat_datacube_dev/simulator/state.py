"""The in-process handle on a running simulator: clock, tokens, counters, faults, truth.

Tests hold this object (``server.state``) to move time, inject faults, read call counts
and ask what a fault-free call would return. The HTTP handler uses the same object, so
everything here is thread-safe.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import defaultdict
from typing import Any

from wechat_datacube_dev.simulator import datacube
from wechat_datacube_dev.simulator.clock import SimClock
from wechat_datacube_dev.simulator.config import SimulatorConfig
from wechat_datacube_dev.simulator.facts import EndpointFacts, endpoint_facts
from wechat_datacube_dev.simulator.faults import FaultBook
from wechat_datacube_dev.simulator.tokens import IssuedTokens
from wechat_datacube_dev.simulator.wire import ApiError

DateLike = dt.date | str


def _as_str(value: DateLike) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


class SimulatorState:
    """Shared state of one simulator server."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.clock = SimClock()
        self.lock = threading.RLock()
        self.tokens = IssuedTokens(self.config, self.clock.now)
        self.fault_book = FaultBook(self.config.seed)
        self._paths: dict[str, int] = defaultdict(int)
        self._appids: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.fault_book.set(list(self.config.faults))

    # --- counters -----------------------------------------------------------------

    def count(self, path: str, appid: str | None) -> None:
        """Record one request to ``path`` (and to ``appid``, when known)."""
        with self.lock:
            self._paths[path] += 1
            if appid:
                self._appids[appid][path] += 1

    def counters(self) -> dict[str, Any]:
        """{"paths": {path: n}, "appids": {appid: {path: n}}} of every API request so far."""
        with self.lock:
            return {
                "paths": dict(self._paths),
                "appids": {appid: dict(paths) for appid, paths in self._appids.items()},
            }

    def reset_counters(self) -> None:
        with self.lock:
            self._paths.clear()
            self._appids.clear()

    # --- faults -------------------------------------------------------------------

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        """Replace the active fault rules (see :mod:`wechat_datacube_dev.simulator.faults`)."""
        self.fault_book.set(rules)

    def clear_faults(self) -> None:
        self.fault_book.clear()

    def faults(self) -> list[dict[str, Any]]:
        """The active rules with how often each matched (``seen``) and fired."""
        return self.fault_book.rules()

    # --- tokens -------------------------------------------------------------------

    def issued_tokens(self, kind: str | None = None) -> list[str]:
        """Every token value handed out (access, component and rotated refresh tokens).

        ``kind`` filters: "classic", "stable", "component", "authorizer" or "refresh".
        """
        with self.lock:
            return self.tokens.issued(kind)

    # --- data ---------------------------------------------------------------------

    def endpoint(self, name: str) -> EndpointFacts:
        """The facts of ``name`` as this server plays them (``config.max_spans`` applied).

        Raises UnknownEndpointError for a name the simulator does not know.
        """
        facts = endpoint_facts(name)
        span = self.config.max_spans.get(name)
        return facts if span is None else facts._replace(max_span=span)

    def answer(self, appid: str, endpoint: str, body: Any) -> dict[str, Any]:
        """The fault-free body of a datacube call (raises ApiError for bad dates or a retired endpoint)."""
        facts = self.endpoint(endpoint)
        if endpoint in self.config.retired_endpoints:
            raise ApiError(47009)
        now = self.clock.now()
        begin, end = datacube.parse_range(facts, body, now)
        return datacube.answer(facts, self.config, appid, begin, end, now)

    def truth(self, appid: str, endpoint: str, begin_date: DateLike, end_date: DateLike) -> list[dict[str, Any]]:
        """Exactly the ``list`` a fault-free call would return now (ApiError if WeChat would refuse)."""
        body = {"begin_date": _as_str(begin_date), "end_date": _as_str(end_date)}
        return self.answer(appid, endpoint, body)["list"]

    # --- everything ---------------------------------------------------------------

    def reset(self) -> None:
        """Back to the start: tokens, quotas, refresh tokens, counters, configured faults, real time."""
        with self.lock:
            self.tokens.reset()
            self.reset_counters()
            self.fault_book.set(list(self.config.faults))
            self.clock.reset()
