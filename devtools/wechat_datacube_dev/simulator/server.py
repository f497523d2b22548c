"""The real HTTP server: stdlib ``ThreadingHTTPServer`` in a daemon thread.

HTTP/1.1 with keep-alive, so clients reuse connections as they would against WeChat.
Faults that concern the transport (drop, HTTP status, HTML, broken JSON, delays) are
applied here, around the transport-free routes of :mod:`.api`. Request logging is off:
URLs carry access tokens.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from wechat_datacube_dev.http_reply import reply
from wechat_datacube_dev.simulator import api, control
from wechat_datacube_dev.simulator.config import SimulatorConfig
from wechat_datacube_dev.simulator.facts import EndpointFacts
from wechat_datacube_dev.simulator.faults import DATA_KINDS, TERMINAL_KINDS, FaultRule
from wechat_datacube_dev.simulator.rows import rows_for_day
from wechat_datacube_dev.simulator.state import SimulatorState
from wechat_datacube_dev.simulator.wire import errmsg_for

_SLOW_KINDS = frozenset({"slow"})
_PRE_KINDS = TERMINAL_KINDS | _SLOW_KINDS
_HTML_PAGE = (
    "<html><head><title>{status}</title></head><body><center><h1>{status}</h1></center>"
    "<hr><center>nginx</center></body></html>"
)


def _stray_rows(state: SimulatorState, appid: str, facts: EndpointFacts, begin: str) -> list[dict[str, Any]]:
    """Rows of the same endpoint whose ref_date lies well before the requested range.

    Searched over 40 days, so a monthly endpoint finds a 1st, and read as 40 days later,
    when even a month labelled there is over.
    """
    start = dt.date.fromisoformat(begin)
    for back in range(400, 440):
        day = start - dt.timedelta(days=back)
        rows = rows_for_day(facts.name, state.config.seed, appid, day, day + dt.timedelta(days=40),
                            state.config.quiet_day_rate)
        if rows:
            return copy.deepcopy(rows[:3])
    return []


def _extra_fields(row: dict[str, Any], facts: EndpointFacts) -> None:
    """Unknown fields at the item's top level and wherever it keeps its numbers."""
    row["sim_unknown_metric"] = 7
    row["sim_unknown_note"] = "field no document mentions"
    for holder in facts.holders(row):
        if holder is not row:
            holder["sim_unknown_metric"] = 3


def _drop_key(item: dict[str, Any], facts: EndpointFacts) -> None:
    """Drop a key field: a nested element's own key, else a top-level key other than ref_date if any."""
    elements = facts.holders(item) if facts.shape == "nested_list" else []
    if elements and facts.element_key:
        elements[0].pop(facts.element_key[0], None)
        return
    keys = [k for k in facts.key if k in item]
    if keys:
        item.pop(next((k for k in keys if k != "ref_date"), keys[0]))


#: bad_rows variants that break the body, not its rows (json.dumps writes NaN and \u0000 as they are).
_UNSTORABLE: dict[str, Any] = {"nan": float("nan"), "nul": "note\x00"}


def _break_rows(body: dict[str, Any], facts: EndpointFacts, variant: str) -> None:
    """Make a successful body unusable the way ``variant`` says (see faults.BAD_ROWS_VARIANTS).

    ``missing_key`` takes a key where the endpoint keeps its keys (top level; a nested
    list's element for getarticletotal(detail)); ``wrong_type`` turns a metric into text
    where the endpoint keeps its numbers (the ``detail`` object for the replacement family);
    ``drift`` renames every non-key field of every row, as a silent API change would;
    ``nan`` / ``nul`` add an undocumented top-level key (beside ``list`` and ``is_delay``)
    that only the stored raw body would carry.
    """
    if variant == "no_list":
        body.pop("list", None)
        body.update({"errcode": 0, "errmsg": "ok"})
        return
    if variant in _UNSTORABLE:
        body["sim_unknown_value"] = _UNSTORABLE[variant]
        return
    rows = body["list"]
    if not rows:
        return
    if variant == "missing_key":
        _drop_key(rows[0], facts)
    elif variant == "wrong_type":
        holders = facts.holders(rows[0])
        if holders:
            holders[0][facts.metric] = "n/a"
    elif variant == "drift":
        _rename_fields(rows, facts)


def _rename_fields(rows: list[dict[str, Any]], facts: EndpointFacts) -> None:
    """A shape change: every field that is not a key gets a new name (``x`` -> ``x_v2``), in every row."""
    keys = {*facts.key, *facts.element_key}
    for row in rows:
        for holder in facts.holders(row):
            for name in [n for n in holder if n not in keys]:
                holder[f"{name}_v2"] = holder.pop(name)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "WeChatDatacubeSimulator/1.0"
    #: Idle keep-alive connections are closed after this many seconds.
    timeout = 60
    #: Headers and body go out in separate writes: without this, Nagle + delayed ACK add ~40 ms per call.
    disable_nagle_algorithm = True
    state: SimulatorState  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silent: request lines carry access tokens."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # --- plumbing -----------------------------------------------------------------

    def _read_request(self, method: str) -> api.Request:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        return api.Request(
            method=method,
            path=url.path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            body=body,
            client_ip=self.client_address[0],
        )

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        reply(self, status, payload, content_type)  # a client that gave up (its timeout beat a slow fault) is fine

    def _send_json(self, status: int, body: Any) -> None:
        self._send(status, json.dumps(body, ensure_ascii=False).encode(), "application/json; encoding=utf-8")

    def _drop(self) -> None:
        """Close the connection without a response."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- dispatch -----------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        req = self._read_request(method)
        state = self.state
        if req.path.startswith("/_sim/"):
            status, body = control.handle(state, req)
            self._send_json(status, body)
            return
        if not api.is_api_path(req.path):
            self._send_json(404, {"errcode": 404, "errmsg": "not found"})
            return
        appid = api.request_appid(state, req)
        state.count(req.path, appid)
        fired = state.fault_book.draw(req.path, appid, _PRE_KINDS)
        delay = sum(r.params["delay"] for r in fired if r.kind == "slow")
        if delay:
            time.sleep(delay)
        terminal = next((r for r in fired if r.kind in TERMINAL_KINDS), None)
        if terminal is not None:
            self._apply_terminal(terminal)
            return
        body = api.handle(state, req)
        if req.path.startswith(api.DATACUBE_PREFIX) and "list" in body and appid:
            self._apply_data_faults(state, req, appid, body)
        self._send_json(200, body)

    def _apply_terminal(self, rule: FaultRule) -> None:
        if rule.kind == "drop":
            self._drop()
        elif rule.kind == "errcode":
            code = int(rule.params["errcode"])
            self._send_json(200, {"errcode": code, "errmsg": errmsg_for(code)})
        elif rule.kind == "http_status":
            status = int(rule.params["status"])
            self._send(status, _HTML_PAGE.format(status=status).encode(), "text/html")
        elif rule.kind == "html":
            self._send(200, _HTML_PAGE.format(status="502 Bad Gateway").encode(), "text/html")
        elif rule.kind == "malformed_json":
            self._send(200, b'{"list": [{"ref_date": "2024-01-0', "application/json; encoding=utf-8")

    def _apply_data_faults(self, state: SimulatorState, req: api.Request, appid: str, body: dict[str, Any]) -> None:
        facts = state.endpoint(req.path[len(api.DATACUBE_PREFIX):].strip("/"))
        for rule in state.fault_book.draw(req.path, appid, DATA_KINDS):
            if rule.kind == "empty":
                body["list"] = []
                if facts.is_delay:
                    body["is_delay"] = True
            elif rule.kind == "stray_rows":
                body["list"].extend(_stray_rows(state, appid, facts, req.json["begin_date"]))
            elif rule.kind == "extra_fields":
                for row in body["list"]:
                    _extra_fields(row, facts)
            elif rule.kind == "fewer_rows" and "list" in body:
                del body["list"][rule.params["keep"]:]
            elif rule.kind == "bad_rows" and "list" in body:
                _break_rows(body, facts, rule.params["variant"])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class SimulatorServer:
    """A simulated WeChat API on a real port. Use as a context manager or start()/stop()."""

    def __init__(self, config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or SimulatorConfig()
        self.state = SimulatorState(self.config)
        self.host = host
        self._port = port
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            return self._port
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SimulatorServer:
        if self._httpd is not None:
            return self
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._httpd = _Server((self.host, self._port), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="wechat-simulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
