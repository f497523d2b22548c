"""WeChatDatacubeHook: the one way this project talks to the WeChat datacube API.

Like Airflow's HTTP hook, it owns the session, the credentials and the retries and knows
nothing of DAG context. Endpoint facts (path, max span, first date) come from the
registry in endpoints.py; date rules from dates.py; the errcode classification from
errors.py; tokens from tokens.py.

Token cache trade-off: pass ``token_store_conn_id`` (a Postgres connection) and every
worker, process, host and account of that database shares one token per (appid, mode,
credential), refreshed under a lock, in the schema ``wechat_tokens`` whatever the
account's data schema. The credential is a fingerprint of AppID + AppSecret (authorizer:
component + authorizer AppID; external: the Variable), so a connection whose secret was
changed never uses a token the old secret obtained: a wrong secret fails at once (40125).
Without it the cache is process-local: correct for a single process, but parallel
workers each fetch their own token — in ``classic`` mode each new token kills the
previous one five minutes later and every fetch spends the 2000/day quota, and a rotated
authorizer refresh token is lost when the process ends.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from wechat_datacube.dates import DateLike, DateRange, check_servable, utcnow
from wechat_datacube.endpoints import EndpointSpec, get_endpoint
from wechat_datacube.errors import (
    ConfigError,
    DateRangeError,
    MalformedResponseError,
    TokenError,
    WeChatDatacubeError,
    advice,
)
from wechat_datacube.provider import DEFAULT_BASE_URL, TOKEN_MODES
from wechat_datacube.responses import in_window, response_list
from wechat_datacube.tokens import (
    DEFAULT_REFRESH_MARGIN,
    AuthorizerTokenSource,
    ClassicTokenSource,
    ExternalTokenSource,
    LocalTokenStore,
    PostgresTokenStore,
    RefreshTokens,
    StableTokenSource,
    TokenManager,
    TokenSource,
    TokenStore,
    mask_value,
    read_variable,
)
from wechat_datacube.transport import CallContext, HttpBackoff, Transport

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 30.0


@dataclass(frozen=True)
class FetchedWindow:
    """One API call's outcome: the window asked for, the body as received, the rows dated inside it."""

    window: DateRange
    body: dict[str, Any]
    rows: list[dict[str, Any]]
    dropped: int
    is_delay: bool


def _as_bool(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in ("0", "false", "no", "off")


def _as_float(value: Any, default: float, name: str) -> float:
    if value is None or value == "":
        return default
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"connection extra {name!r} must be a number, got {value!r}") from None
    if result <= 0:
        raise ConfigError(f"connection extra {name!r} must be positive, got {value!r}")
    return result


class WeChatDatacubeHook(BaseHook):
    """Fetch WeChat Official Account datacube statistics.

    :param wechat_conn_id: connection of type ``wechat`` (login = AppID, password =
        AppSecret, host = base URL; extras: token_mode, token_variable, component_appid,
        component_token_variable, authorizer_appid, authorizer_refresh_token,
        connect_timeout, read_timeout, verify).
    :param token_store_conn_id: Postgres connection for the shared token cache; None means
        a process-local cache (see the module docstring for the trade-off).
    :param schema: the account's data schema. Not where tokens are cached: the token
        tables live in :data:`~wechat_datacube.tokens.TOKEN_SCHEMA` for every account, so
        accounts sharing an AppID share one token (refresh tokens cached under a data
        schema by earlier releases are carried over).
    :param account: label used in error messages (default: the AppID).
    :param clock: aware-UTC "now"; drives date validation and token expiry bookkeeping.
    :param max_attempts: requests per call before a transient error is given up.
    :param max_retry_seconds: total waiting between those attempts.
    :param backoff_base: first backoff delay (doubling, with jitter, up to ``backoff_max``).
    :param rate_limit_wait_max: cap of the wait after 45011 (next minute by default).

    These four make the hook's :class:`~wechat_datacube.transport.HttpBackoff` (retries of
    one HTTP call within a task try), not the Airflow retry policy between task tries
    (:mod:`wechat_datacube.retry_policy`).
    :param sleep: how to wait (injectable so tests can advance a simulated clock).
    :param refresh_margin: refresh tokens this many seconds before they expire.
    """

    conn_name_attr = "wechat_conn_id"
    default_conn_name = "wechat_default"
    conn_type = "wechat"
    hook_name = "WeChat Official Account"

    def __init__(
        self,
        wechat_conn_id: str = default_conn_name,
        *,
        token_store_conn_id: str | None = None,
        schema: str = "wechat",
        account: str | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        max_attempts: int = 4,
        max_retry_seconds: float = 120.0,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        rate_limit_wait_max: float = 61.0,
        sleep: Callable[[float], None] | None = None,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
    ) -> None:
        super().__init__()
        if max_attempts < 1:
            raise ConfigError("max_attempts must be >= 1")
        self.wechat_conn_id = wechat_conn_id
        self.token_store_conn_id = token_store_conn_id
        self.schema = schema
        self._account = account
        self.clock: Callable[[], dt.datetime] = clock or utcnow
        self.backoff = HttpBackoff(
            max_attempts=max_attempts,
            max_retry_seconds=max_retry_seconds,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            rate_limit_wait_max=rate_limit_wait_max,
        )
        self._sleep = sleep or time.sleep
        self.refresh_margin = refresh_margin
        #: HTTP requests sent to datacube endpoints / token endpoints (each retry counts).
        self.data_calls = 0
        self.token_calls = 0

    # --- configuration ------------------------------------------------------------

    @cached_property
    def _conn(self) -> Any:
        conn = self.get_connection(self.wechat_conn_id)
        if conn.password:
            mask_value(conn.password)
        return conn

    @cached_property
    def extras(self) -> dict[str, Any]:
        return dict(self._conn.extra_dejson or {})

    @property
    def appid(self) -> str:
        return (self._conn.login or "").strip()

    @property
    def account(self) -> str:
        return self._account or self.appid or self.wechat_conn_id

    @property
    def token_mode(self) -> str:
        mode = (self.extras.get("token_mode") or "stable").strip().lower()
        if mode not in TOKEN_MODES:
            raise ConfigError(
                f"connection {self.wechat_conn_id!r}: token_mode {mode!r} is not one of {', '.join(TOKEN_MODES)}"
            )
        return mode

    def _require(self, values: dict[str, Any]) -> None:
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise ConfigError(
                f"connection {self.wechat_conn_id!r} (token_mode={self.token_mode}) is missing: {', '.join(missing)}",
                account=self._account or self.appid or None,
            )

    @cached_property
    def transport(self) -> Transport:
        extras = self.extras
        timeout = (
            _as_float(extras.get("connect_timeout"), DEFAULT_CONNECT_TIMEOUT, "connect_timeout"),
            _as_float(extras.get("read_timeout"), DEFAULT_READ_TIMEOUT, "read_timeout"),
        )
        base_url = (self._conn.host or "").strip() or DEFAULT_BASE_URL
        if "://" not in base_url:
            base_url = "https://" + base_url
        return Transport(
            base_url,
            timeout=timeout,
            verify=_as_bool(extras.get("verify"), True),
            backoff=self.backoff,
            clock=self.clock,
            sleep=self._sleep,
        )

    def get_conn(self) -> Any:
        """The hook's ``requests.Session`` (one per hook)."""
        return self.transport.session

    def _count_token_call(self) -> None:
        self.token_calls += 1

    def _source(self) -> tuple[TokenSource, str]:
        """The token source for the configured mode and the appid its cache is keyed by."""
        mode, extras, ctx = self.token_mode, self.extras, CallContext(account=self.account)
        if mode in ("stable", "classic"):
            secret = self._conn.password
            self._require({"login (AppID)": self.appid, "password (AppSecret)": secret})
            cls = StableTokenSource if mode == "stable" else ClassicTokenSource
            return cls(self.transport, self.appid, secret, ctx, self._count_token_call), self.appid
        if mode == "authorizer":
            authorizer_appid = extras.get("authorizer_appid") or self.appid
            self._require(
                {
                    "component_appid": extras.get("component_appid"),
                    "authorizer_appid (or login)": authorizer_appid,
                    "authorizer_refresh_token": extras.get("authorizer_refresh_token"),
                    "component_token_variable": extras.get("component_token_variable"),
                }
            )
            mask_value(extras["authorizer_refresh_token"])
            source = AuthorizerTokenSource(
                self.transport,
                component_appid=extras["component_appid"],
                authorizer_appid=authorizer_appid,
                initial_refresh_token=extras["authorizer_refresh_token"],
                component_token_variable=extras["component_token_variable"],
                ctx=ctx,
                on_call=self._count_token_call,
            )
            return source, authorizer_appid
        self._require({"token_variable": extras.get("token_variable")})
        return ExternalTokenSource(extras["token_variable"], ctx), self.appid or self.wechat_conn_id

    @cached_property
    def tokens(self) -> TokenManager:
        source, appid = self._source()
        store: TokenStore = (
            PostgresTokenStore(self.token_store_conn_id) if self.token_store_conn_id else LocalTokenStore()
        )
        return TokenManager(
            source, store, conn_id=self.wechat_conn_id, appid=appid, clock=self.clock, margin=self.refresh_margin
        )

    # --- tokens ---------------------------------------------------------------------

    def get_access_token(self, force_refresh: bool = False) -> str:
        """A usable access token (shared cache first; WeChat only when it must)."""
        return self.tokens.get(force=force_refresh)

    # --- data -----------------------------------------------------------------------

    def call(self, endpoint: str, begin_date: DateLike, end_date: DateLike) -> dict[str, Any]:
        """One POST for [begin_date, end_date]; the parsed body, or a typed error.

        The range is parsed (:meth:`DateRange.parse`) and its span checked against the
        registry before calling. A token error refreshes the token (unless the cache
        already holds a newer one) and retries once; a second token error raises.
        """
        spec = get_endpoint(endpoint)
        window = DateRange.parse(begin_date, end_date, account=self.account, endpoint=spec.name)
        return self._call(spec, window)

    def _call(self, spec: EndpointSpec, window: DateRange) -> dict[str, Any]:
        ctx = CallContext(self.account, spec.name, window.begin, window.end)
        if window.days > spec.max_span:
            raise DateRangeError(f"{spec.name} allows at most {spec.max_span} day(s) per call", **ctx.kwargs())
        body_json = {"begin_date": window.begin.isoformat(), "end_date": window.end.isoformat()}
        started = time.monotonic()
        token = self.get_access_token()
        try:
            body = self._post(spec, token, body_json, ctx)
        except TokenError as first:
            self.log.warning("token rejected (errcode %s) on %s; refreshing once", first.errcode, spec.name)
            token = self.tokens.get(failed=token)
            try:
                body = self._post(spec, token, body_json, ctx)
            except TokenError as second:
                second.reword(f"token rejected again after one refresh: {second.message}")
                raise
        rows = response_list(body, **ctx.kwargs())
        self.log.info(
            "wechat %s %s account=%s: %d row(s) in %.2f s",
            spec.name, window, self.account, len(rows), time.monotonic() - started,
        )
        return body

    def _post(self, spec: EndpointSpec, token: str, body: dict[str, str], ctx: CallContext) -> dict[str, Any]:
        def count() -> None:
            self.data_calls += 1

        return self.transport.request(
            "POST", spec.path, params={"access_token": token}, json_body=body, context=ctx, on_attempt=count
        )

    def fetch_windows(self, endpoint: str, begin_date: DateLike, end_date: DateLike) -> list[FetchedWindow]:
        """Check the range, call once per window of the endpoint's max span, keep only in-window rows.

        Refused before any call: a bad range, dates before the endpoint's first date, an end
        on or after today in Beijing. Stray rows are dropped by the one rule in
        :mod:`wechat_datacube.responses`; an answer whose rows all lie outside the window is a
        MalformedResponseError.
        """
        spec = get_endpoint(endpoint)
        dates = DateRange.parse(begin_date, end_date, account=self.account, endpoint=spec.name)
        check_servable(spec, dates, now=self.clock(), account=self.account)
        return [self._fetch_window(spec, window) for window in dates.windows(spec.max_span)]

    def _fetch_window(self, spec: EndpointSpec, window: DateRange) -> FetchedWindow:
        body = self._call(spec, window)
        ctx = CallContext(self.account, spec.name, window.begin, window.end).kwargs()
        try:
            rows, stray = in_window(spec, body["list"], window.begin, window.end, **ctx)
        except MalformedResponseError as exc:
            exc.raw = body
            raise
        if stray:
            self.log.warning(
                "wechat %s %s: dropped %d row(s) dated outside the requested range (e.g. %s)",
                spec.name, window, len(stray), min(stray),
            )
        return FetchedWindow(window, body, rows, len(stray), bool(body.get("is_delay", False)))

    def fetch(self, endpoint: str, begin_date: DateLike, end_date: DateLike) -> list[dict[str, Any]]:
        """All in-window rows of [begin_date, end_date] (checked, one call per window of the max span)."""
        return [row for fetched in self.fetch_windows(endpoint, begin_date, end_date) for row in fetched.rows]

    # --- Airflow niceties -----------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """The UI's Test button (Admin -> Connections): is the credential good, says WeChat?

        Never answered from a token cache: a cached token proves only that *some* secret
        worked once (a secret changed to a wrong one would pass for two hours). Per mode:

        * ``stable`` and ``classic``: ``POST /cgi-bin/stable_token`` with
          ``force_refresh=false`` and the connection's AppID/AppSecret. WeChat checks both
          (40013 / 40125) and the caller's IP whitelist (40164); the call hands back the
          current stable token or a fresh one while the old stays valid, so it invalidates
          nobody's token. It is also what classic mode is tested with: stable tokens are
          separate from classic ones, whereas a ``/cgi-bin/token`` call would issue a new
          classic token and kill the one every worker shares five minutes later (and spend
          the 2000/day quota). The token obtained is not cached.
        * ``authorizer``: the extras are complete and the component-token Variable is set;
          WeChat is not asked, because exchanging the refresh token rotates it, and only a
          task (which persists the rotated one) may do that.
        * ``external``: the token Variable is set; the token itself belongs to the central
          token service and is not checked.

        The message names the errcode and what to do (e.g. 40125: check the password).
        """
        try:
            return True, self._verify_credential()
        except WeChatDatacubeError as exc:
            return False, self._refusal(exc)
        except Exception as exc:  # the UI wants a message, not a traceback
            return False, f"{type(exc).__name__}: {exc}"

    def _verify_credential(self) -> str:
        """What :meth:`test_connection` checked (raises what failed)."""
        mode = self.token_mode
        source, _ = self._source()  # validates the extras of every mode
        if mode in ("stable", "classic"):
            ctx = CallContext(account=self.account)
            probe = StableTokenSource(self.transport, self.appid, self._conn.password, ctx, self._count_token_call)
            probe.fetch(failed=None, force=False, refresh=RefreshTokens(), save_refresh=lambda new, old: None)
            checked = (
                f"WeChat accepted AppID {self.appid} and its AppSecret "
                "(POST /cgi-bin/stable_token, force_refresh=false: no token was invalidated)"
            )
            if mode == "classic":
                checked += (
                    "; classic mode is tested this way because a /cgi-bin/token call would invalidate "
                    "the classic token the workers share five minutes later"
                )
            return checked
        if mode == "authorizer":
            assert isinstance(source, AuthorizerTokenSource)
            if not read_variable(source.component_token_variable):
                raise ConfigError(
                    f"Airflow Variable {source.component_token_variable!r} (component_access_token) is missing or empty"
                )
            return (
                f"configuration complete and Variable {source.component_token_variable!r} is set; not checked with "
                "WeChat: exchanging the authorizer refresh token rotates it, which only a task may do"
            )
        assert isinstance(source, ExternalTokenSource)
        if not read_variable(source.variable):
            raise ConfigError(f"Airflow Variable {source.variable!r} (access token) is missing or empty")
        return f"Variable {source.variable!r} holds a token; its validity is the central token service's business"

    def _refusal(self, exc: WeChatDatacubeError) -> str:
        """The Test button's text for a failed check: errcode, what to do, WeChat's own words."""
        if exc.errcode is None:
            return str(exc)
        said = f" (WeChat: {exc.errmsg})" if exc.errmsg else ""
        return f"WeChat refused the credential: errcode {exc.errcode}: {advice(exc.errcode)}{said}"

    def close(self) -> None:
        if "transport" in self.__dict__:
            self.transport.close()
