"""Token issuance and checking, as WeChat does it (reference section 5).

* classic ``/cgi-bin/token``: a new token every call; the previous one keeps working
  ``overlap_seconds`` more, then answers 40001; ``classic_daily_limit`` calls per day.
* ``/cgi-bin/stable_token``: the same token while it has >= ``stable_min_remaining``
  seconds left; ``force_refresh`` invalidates the old one at once (limited per day).
  Isolated from the classic token.
* third party: component token from the verify ticket, then authorizer tokens from a
  refresh token that rotates (the old refresh token then answers 61023).

Not thread-safe on its own: :class:`~wechat_datacube_dev.simulator.state.SimulatorState`
calls it under its lock.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wechat_datacube_dev.simulator.clock import BEIJING
from wechat_datacube_dev.simulator.config import SimulatorConfig
from wechat_datacube_dev.simulator.wire import ApiError

#: Kinds of token values the simulator hands out.
#: Kinds that open the datacube endpoints.
ACCESS_KINDS = ("classic", "stable", "authorizer")


@dataclass
class TokenRecord:
    """One issued token. ``invalid_from``: when it stops working although not expired."""

    value: str
    kind: str
    appid: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    invalid_from: dt.datetime | None = None

    def public(self) -> dict[str, Any]:
        return {
            "token": self.value,
            "kind": self.kind,
            "appid": self.appid,
            "issued_at": self.issued_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "invalid_from": self.invalid_from.isoformat() if self.invalid_from else None,
        }


def _new_value() -> str:
    return secrets.token_urlsafe(64)


class IssuedTokens:
    """Issued tokens, the current one per (kind, appid), refresh tokens and daily quotas."""

    def __init__(self, config: SimulatorConfig, now: Callable[[], dt.datetime]) -> None:
        self._config = config
        self._now = now
        self.reset()

    def reset(self) -> None:
        self._records: dict[str, TokenRecord] = {}
        self._order: list[TokenRecord] = []
        self._current: dict[tuple[str, str], str] = {}
        self._refresh: dict[str, str] = {
            appid: info["refresh_token"] for appid, info in self._config.authorizers.items()
        }
        self._quota: dict[tuple[str, str, dt.date], int] = {}

    # --- helpers ------------------------------------------------------------------

    def _issue(self, kind: str, appid: str, *, supersede_after: float | None) -> TokenRecord:
        """New token; the current one of (kind, appid) stops working after ``supersede_after`` s."""
        now = self._now()
        old_value = self._current.get((kind, appid))
        if old_value is not None and supersede_after is not None:
            old = self._records[old_value]
            cutoff = now + dt.timedelta(seconds=supersede_after)
            if old.invalid_from is None or old.invalid_from > cutoff:
                old.invalid_from = cutoff
        record = TokenRecord(_new_value(), kind, appid, now, now + dt.timedelta(seconds=self._config.token_ttl))
        self._records[record.value] = record
        self._order.append(record)
        self._current[(kind, appid)] = record.value
        return record

    def _take_quota(self, what: str, appid: str, limit: int) -> None:
        key = (what, appid, self._now().astimezone(BEIJING).date())
        used = self._quota.get(key, 0)
        if used >= limit:
            raise ApiError(45009)
        self._quota[key] = used + 1

    def _check_account(self, appid: str | None, secret: str | None) -> str:
        if not appid or appid not in self._config.accounts:
            raise ApiError(40013)
        if secret != self._config.accounts[appid]:
            raise ApiError(40125)
        return appid

    def _remaining(self, record: TokenRecord) -> int:
        return int((record.expires_at - self._now()).total_seconds())

    # --- token endpoints ----------------------------------------------------------

    def classic(self, grant_type: str | None, appid: str | None, secret: str | None) -> dict[str, Any]:
        if grant_type != "client_credential":
            raise ApiError(40002)
        appid = self._check_account(appid, secret)
        self._take_quota("classic", appid, self._config.classic_daily_limit)
        record = self._issue("classic", appid, supersede_after=self._config.overlap_seconds)
        return {"access_token": record.value, "expires_in": self._config.token_ttl}

    def stable(
        self, grant_type: str | None, appid: str | None, secret: str | None, force_refresh: bool
    ) -> dict[str, Any]:
        if grant_type != "client_credential":
            raise ApiError(40002)
        appid = self._check_account(appid, secret)
        if force_refresh:
            self._take_quota("stable_force", appid, self._config.stable_force_refresh_daily_limit)
            record = self._issue("stable", appid, supersede_after=0)
            return {"access_token": record.value, "expires_in": self._config.token_ttl}
        current = self._current.get(("stable", appid))
        if current is not None:
            record = self._records[current]
            if record.invalid_from is None and self._remaining(record) >= self._config.stable_min_remaining:
                return {"access_token": record.value, "expires_in": self._remaining(record)}
        # Not handed out any more, but the old one stays valid until it expires.
        record = self._issue("stable", appid, supersede_after=None)
        return {"access_token": record.value, "expires_in": self._config.token_ttl}

    def component(
        self, component_appid: str | None, component_secret: str | None, verify_ticket: str | None
    ) -> dict[str, Any]:
        info = self._config.components.get(component_appid or "")
        if info is None or not component_appid:
            raise ApiError(40013)
        if component_secret != info.get("secret"):
            raise ApiError(40125)
        if verify_ticket != info.get("verify_ticket"):
            raise ApiError(61006)
        record = self._issue("component", component_appid, supersede_after=self._config.overlap_seconds)
        return {"component_access_token": record.value, "expires_in": self._config.token_ttl}

    def authorizer(
        self,
        component_token: str | None,
        component_appid: str | None,
        authorizer_appid: str | None,
        refresh_token: str | None,
    ) -> dict[str, Any]:
        owner = self.check(component_token, kinds=("component",))
        if component_appid != owner:
            raise ApiError(40013, "component_appid does not match the component_access_token")
        info = self._config.authorizers.get(authorizer_appid or "")
        if info is None or not authorizer_appid or info.get("component_appid") != owner:
            raise ApiError(61003)
        if not refresh_token or refresh_token != self._refresh.get(authorizer_appid):
            raise ApiError(61023)
        record = self._issue("authorizer", authorizer_appid, supersede_after=self._config.overlap_seconds)
        if self._config.rotate_refresh_token:
            new_refresh = "refreshtoken@@@" + _new_value()
            self._refresh[authorizer_appid] = new_refresh
            now = self._now()
            never = dt.datetime.max.replace(tzinfo=dt.UTC)
            self._order.append(TokenRecord(new_refresh, "refresh", authorizer_appid, now, never))
        return {
            "authorizer_access_token": record.value,
            "expires_in": self._config.token_ttl,
            "authorizer_refresh_token": self._refresh[authorizer_appid],
        }

    # --- checking -----------------------------------------------------------------

    def owner(self, token: str | None) -> str | None:
        """The appid a token belongs to, without judging whether it still works."""
        record = self._records.get(token or "")
        return record.appid if record else None

    def check(self, token: str | None, kinds: tuple[str, ...] = ACCESS_KINDS) -> str:
        """The appid of a working token of one of ``kinds``, else the errcode WeChat gives."""
        if not token:
            raise ApiError(41001)
        record = self._records.get(token)
        if record is None or record.kind not in kinds:
            raise ApiError(40014)
        now = self._now()
        if now >= record.expires_at:
            raise ApiError(42001)
        if record.invalid_from is not None and now >= record.invalid_from:
            raise ApiError(40001)
        return record.appid

    def issued(self, kind: str | None = None) -> list[str]:
        """Every token value handed out, in order (refresh tokens included unless filtered)."""
        return [r.value for r in self._order if kind is None or r.kind == kind]

    def records(self) -> list[dict[str, Any]]:
        return [r.public() for r in self._order]
