"""The WeChat-facing routes: token endpoints and ``/datacube/<name>``.

Transport-free: takes a parsed :class:`Request`, returns the JSON body to send (errors
are bodies too: WeChat answers them with HTTP 200). Faults are applied around this by
the server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from wechat_datacube_dev.simulator.facts import FACTS
from wechat_datacube_dev.simulator.state import SimulatorState
from wechat_datacube_dev.simulator.wire import ApiError

DATACUBE_PREFIX = "/datacube/"
TOKEN_PATH = "/cgi-bin/token"
STABLE_TOKEN_PATH = "/cgi-bin/stable_token"
COMPONENT_TOKEN_PATH = "/cgi-bin/component/api_component_token"
AUTHORIZER_TOKEN_PATH = "/cgi-bin/component/api_authorizer_token"
KNOWN_PATHS = (TOKEN_PATH, STABLE_TOKEN_PATH, COMPONENT_TOKEN_PATH, AUTHORIZER_TOKEN_PATH)

_NO_JSON = object()


@dataclass
class Request:
    """One HTTP request, already read off the socket."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    client_ip: str = "127.0.0.1"

    @cached_property
    def json(self) -> Any:
        """The body as JSON, or a sentinel when it is not JSON."""
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError:
            return _NO_JSON


def is_api_path(path: str) -> bool:
    return path.startswith(DATACUBE_PREFIX) or path in KNOWN_PATHS


def request_appid(state: SimulatorState, req: Request) -> str | None:
    """Whose request this is, for counters and fault filters (no validation)."""
    if req.path.startswith(DATACUBE_PREFIX):
        with state.lock:
            return state.tokens.owner(req.query.get("access_token"))
    if req.path == TOKEN_PATH:
        return req.query.get("appid")
    body = req.json if isinstance(req.json, dict) else {}
    if req.path == STABLE_TOKEN_PATH:
        return body.get("appid")
    if req.path == COMPONENT_TOKEN_PATH:
        return body.get("component_appid")
    if req.path == AUTHORIZER_TOKEN_PATH:
        return body.get("authorizer_appid")
    return None


def _body(req: Request) -> dict[str, Any]:
    body = req.json
    if not isinstance(body, dict):
        raise ApiError(47001)
    return body


def _require_post(req: Request) -> None:
    if req.method != "POST":
        raise ApiError(43002)


def handle(state: SimulatorState, req: Request) -> dict[str, Any]:
    """Answer one WeChat API request (IP whitelist, tokens, datacube)."""
    try:
        whitelist = state.config.ip_whitelist
        if whitelist is not None and req.client_ip not in whitelist:
            raise ApiError(40164, f"invalid ip {req.client_ip}, not in whitelist")
        if req.path.startswith(DATACUBE_PREFIX):
            return _datacube(state, req)
        with state.lock:
            if req.path == TOKEN_PATH:
                q = req.query
                return state.tokens.classic(q.get("grant_type"), q.get("appid"), q.get("secret"))
            _require_post(req)
            body = _body(req)
            if req.path == STABLE_TOKEN_PATH:
                force = body.get("force_refresh") in (True, "true", 1)
                return state.tokens.stable(body.get("grant_type"), body.get("appid"), body.get("secret"), force)
            if req.path == COMPONENT_TOKEN_PATH:
                return state.tokens.component(
                    body.get("component_appid"), body.get("component_appsecret"), body.get("component_verify_ticket")
                )
            if req.path == AUTHORIZER_TOKEN_PATH:
                return state.tokens.authorizer(
                    req.query.get("component_access_token"),
                    body.get("component_appid"),
                    body.get("authorizer_appid"),
                    body.get("authorizer_refresh_token"),
                )
        raise ApiError(48001)
    except ApiError as err:
        return err.body()


def _datacube(state: SimulatorState, req: Request) -> dict[str, Any]:
    name = req.path[len(DATACUBE_PREFIX):].strip("/")
    _require_post(req)
    with state.lock:
        appid = state.tokens.check(req.query.get("access_token"))
    if name not in FACTS:
        raise ApiError(48001)
    return state.answer(appid, name, req.json if req.json is not _NO_JSON else None)
