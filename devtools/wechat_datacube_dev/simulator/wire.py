"""How the simulated API says no: WeChat's errcode/errmsg bodies.

Every error is HTTP 200 + ``{"errcode", "errmsg"}``; errmsg texts imitate WeChat's
(including the trailing ``rid``) and never contain a token or secret.
"""

from __future__ import annotations

import secrets
from typing import Any

ERRMSG: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40013: "invalid appid",
    40014: "invalid access_token",
    40125: "invalid appsecret",
    40164: "invalid ip, not in whitelist",
    41001: "access_token missing",
    42001: "access_token expired",
    43002: "require POST method",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    47001: "data format error",
    47009: "api offline, please use the new api",
    48001: "api unauthorized",
    50001: "user unauthorized",
    50002: "user limited",
    61003: "component is not authorized by this account",
    61006: "component ticket is invalid",
    61007: "api is unauthorized to component",
    61023: "refresh_token is invalid",
    61500: "date format error",
    61501: "date range error",
}


def errmsg_for(errcode: int, detail: str | None = None) -> str:
    """WeChat-style errmsg: the text, an optional detail and a request id."""
    text = ERRMSG.get(errcode, "simulated error")
    if detail:
        text = f"{text}: {detail}"
    return f"{text} rid: {secrets.token_hex(4)}-{secrets.token_hex(4)}-{secrets.token_hex(4)}"


class ApiError(Exception):
    """An errcode the simulated API answers with (HTTP 200, JSON error body)."""

    def __init__(self, errcode: int, detail: str | None = None) -> None:
        self.errcode = errcode
        self.errmsg = errmsg_for(errcode, detail)
        super().__init__(f"{errcode}: {self.errmsg}")

    def body(self) -> dict[str, Any]:
        return {"errcode": self.errcode, "errmsg": self.errmsg}
