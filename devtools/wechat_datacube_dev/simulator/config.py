"""Configuration of the simulated WeChat API: who may log in and how strict it is.

Limits that tests need to reach quickly (the classic token's daily quota, the stable
token's force-refresh quota) are plain settings, so a test can set 5 instead of making
2000 calls. So are the API facts the reference is unsure of or that WeChat may change
(a span, a retired endpoint): a test can play the other answer without a code change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wechat_datacube_dev.simulator.facts import FACTS

#: Credentials the demo server (``python -m wechat_datacube_dev.simulator``) accepts by default.
DEMO_APPID = "wx_demo_account"
DEMO_SECRET = "demo-app-secret-change-me"


@dataclass
class SimulatorConfig:
    """Everything that shapes one simulated WeChat backend.

    ``components``: component_appid -> {"secret": ..., "verify_ticket": ...}.
    ``authorizers``: authorizer_appid -> {"component_appid": ..., "refresh_token": ...}
    (the initial refresh token; the simulator rotates it when ``rotate_refresh_token``).
    ``faults``: rules installed at start and restored by ``state.reset()``.
    """

    accounts: dict[str, str] = field(default_factory=lambda: {DEMO_APPID: DEMO_SECRET})
    components: dict[str, dict[str, str]] = field(default_factory=dict)
    authorizers: dict[str, dict[str, str]] = field(default_factory=dict)
    seed: int = 20141201
    #: Beijing hour at which day D's data appears on D+1.
    ready_hour: int = 8
    ip_whitelist: list[str] | None = None
    rotate_refresh_token: bool = True
    #: Lifetime of every token the simulator issues (seconds on the settable clock).
    token_ttl: int = 7200
    #: How long a superseded classic/component/authorizer token keeps working.
    overlap_seconds: int = 300
    #: A stable token is handed out again only while it has at least this many seconds left.
    stable_min_remaining: int = 300
    #: Classic /cgi-bin/token calls per account per Beijing day before 45009.
    classic_daily_limit: int = 2000
    #: stable_token force_refresh calls per account per Beijing day before 45009.
    stable_force_refresh_daily_limit: int = 20
    faults: list[dict[str, Any]] = field(default_factory=list)
    #: Endpoint -> max span in days, overriding the simulator's facts (e.g. {"getbizsummary": 1}
    #: makes every wider getbizsummary window answer 61501).
    max_spans: dict[str, int] = field(default_factory=dict)
    #: Endpoints WeChat has switched off: every call to them answers 47009.
    retired_endpoints: list[str] = field(default_factory=list)
    #: Share of days without a mass send on which nothing changed, so the replacement family
    #: answers a final ``{"list": [], "is_delay": false}``. Small: DAG tests fetch only legacy
    #: endpoints, and before the readiness deadline the pipeline retries such a day.
    quiet_day_rate: float = 0.05
    #: Play the community-reported quirk of the endpoints whose facts say ``newest_alone_empty``
    #: (getusersummary): asked for the newest published day alone they answer ``{"list": []}``,
    #: while any window of two or more days that includes it answers all its days.
    newest_alone_empty: bool = True

    def __post_init__(self) -> None:
        """Refuse typos and nonsense at start, not on the first request."""
        unknown = sorted((set(self.max_spans) | set(self.retired_endpoints)) - set(FACTS))
        if unknown:
            raise ValueError(f"unknown datacube endpoint(s) {', '.join(unknown)}; known: {', '.join(sorted(FACTS))}")
        if any(span < 1 for span in self.max_spans.values()):
            raise ValueError(f"max_spans must be >= 1 day: {self.max_spans}")
        if not 0.0 <= self.quiet_day_rate <= 1.0:
            raise ValueError(f"quiet_day_rate must be within [0, 1], got {self.quiet_day_rate}")
