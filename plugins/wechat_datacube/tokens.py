"""Access-token sources and the shared token cache.

WeChat's advice, and the lesson of every SDK's issue tracker: one place owns the token,
everyone else reads it; refresh under a lock and re-check after taking it; on a token
error invalidate only if the stored token is still the one that failed, refresh, and
retry the call once. This module implements that ownership:

* **Sources** know how to obtain a token for one mode (``stable``, ``classic``,
  ``authorizer``, ``external``) and nothing about caching.
* **Stores** hold the current token per (appid, mode): :class:`PostgresTokenStore`
  (shared by every worker, process and host: table ``<schema>.access_token_cache``,
  encrypted with the Airflow Fernet key) or :class:`LocalTokenStore` (this process only).
* :class:`TokenManager` puts a module-level in-process memo in front of the store so a
  task does not hit the database per call, and runs the refresh protocol.

Why a database and not just the memo: in ``classic`` mode every new token invalidates the
previous one five minutes later, so independent workers that each fetch their own knock
each other out, and each fetch spends the 2000/day quota. Several ``stable`` callers are
harmless, but a forced refresh still invalidates everyone else's token.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from wechat_datacube.errors import ConfigError, MalformedResponseError, TokenError
from wechat_datacube.transport import CallContext, Transport

log = logging.getLogger(__name__)

#: Refresh a token when less than this many seconds of its life are left (>= 5 min).
DEFAULT_REFRESH_MARGIN = 600.0
#: How long an externally owned token is trusted before the Variable is read again.
EXTERNAL_REREAD_SECONDS = 300.0

Clock = Callable[[], dt.datetime]


def mask_value(value: str | None) -> None:
    """Register a secret with Airflow's masker (task logs and the supervisor's)."""
    if not value:
        return
    from airflow.sdk.log import mask_secret

    mask_secret(value)


def read_variable(name: str) -> str | None:
    """Read an Airflow Variable through the Task SDK (env ``AIRFLOW_VAR_<NAME>`` works too)."""
    from airflow.sdk import Variable

    value = Variable.get(name, default=None)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


# --- tokens -----------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    """What a source returns: the token, its lifetime, and a rotated refresh token if any."""

    value: str
    expires_in: float
    refresh_token: str | None = None


@dataclass(frozen=True)
class CachedToken:
    """A stored token with its bookkeeping (times are aware UTC)."""

    value: str
    expires_at: dt.datetime
    refresh_at: dt.datetime

    def usable(self, now: dt.datetime) -> bool:
        return now < self.refresh_at

    @classmethod
    def from_issued(cls, issued: IssuedToken, now: dt.datetime, margin: float) -> CachedToken:
        """Refresh ``margin`` seconds ahead of expiry, but never sooner than half-way.

        The half-way floor matters for ``stable`` mode: WeChat hands back the *same*
        token until it has < 300 s left, so a token can arrive with less life than the
        margin; refreshing it at once would loop. Half its remaining life bounds the
        number of calls until WeChat issues a new one.
        """
        life = max(0.0, float(issued.expires_in))
        ahead = max(life - margin, life / 2)
        return cls(issued.value, now + dt.timedelta(seconds=life), now + dt.timedelta(seconds=ahead))


@dataclass(frozen=True)
class TokenKey:
    """The cache key: whose token (appid) and of which kind (mode)."""

    appid: str
    mode: str


# --- sources ----------------------------------------------------------------------


class TokenSource(Protocol):
    """Obtains a token for one mode. ``failed`` is the token a call just rejected."""

    mode: str
    #: Whether the token is worth sharing through the store (False: external Variable).
    shared: bool

    def fetch(self, *, failed: str | None, force: bool, refresh_token: str | None) -> IssuedToken: ...


def _token_from(body: dict[str, Any], field: str, ctx: CallContext) -> IssuedToken:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise MalformedResponseError(f"token response has no {field}", **ctx.kwargs())
    mask_value(value)
    return IssuedToken(value=value, expires_in=float(body.get("expires_in") or 7200))


class ClassicTokenSource:
    """``GET /cgi-bin/token``: a new token every call; the previous one dies 5 min later."""

    mode = "classic"
    shared = True

    def __init__(self, transport: Transport, appid: str, secret: str, ctx: CallContext, on_call: Callable[[], None]):
        self.transport, self.appid, self.secret, self.ctx, self.on_call = transport, appid, secret, ctx, on_call

    def fetch(self, *, failed: str | None, force: bool, refresh_token: str | None) -> IssuedToken:
        body = self.transport.request(
            "GET",
            "/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            context=self.ctx,
            on_attempt=self.on_call,
        )
        return _token_from(body, "access_token", self.ctx)


class StableTokenSource:
    """``POST /cgi-bin/stable_token``: the same token until it nears expiry.

    ``force_refresh`` (20/day, invalidates the token for every other caller) is used only
    when asked for, or when the normal call hands back the very token that just failed.
    """

    mode = "stable"
    shared = True

    def __init__(self, transport: Transport, appid: str, secret: str, ctx: CallContext, on_call: Callable[[], None]):
        self.transport, self.appid, self.secret, self.ctx, self.on_call = transport, appid, secret, ctx, on_call

    def _call(self, force_refresh: bool) -> IssuedToken:
        body = self.transport.request(
            "POST",
            "/cgi-bin/stable_token",
            json_body={
                "grant_type": "client_credential",
                "appid": self.appid,
                "secret": self.secret,
                "force_refresh": force_refresh,
            },
            context=self.ctx,
            on_attempt=self.on_call,
        )
        return _token_from(body, "access_token", self.ctx)

    def fetch(self, *, failed: str | None, force: bool, refresh_token: str | None) -> IssuedToken:
        if force:
            return self._call(True)
        issued = self._call(False)
        if failed is not None and issued.value == failed:
            return self._call(True)
        return issued


class AuthorizerTokenSource:
    """Third-party platform: ``api_authorizer_token`` with the component token from a Variable.

    The refresh token may rotate with every call; the store persists the new one (it takes
    precedence over the connection's initial value, which then is only a bootstrap).
    """

    mode = "authorizer"
    shared = True

    def __init__(
        self,
        transport: Transport,
        *,
        component_appid: str,
        authorizer_appid: str,
        initial_refresh_token: str,
        component_token_variable: str,
        ctx: CallContext,
        on_call: Callable[[], None],
    ) -> None:
        self.transport = transport
        self.component_appid = component_appid
        self.authorizer_appid = authorizer_appid
        self.initial_refresh_token = initial_refresh_token
        self.component_token_variable = component_token_variable
        self.ctx = ctx
        self.on_call = on_call

    def fetch(self, *, failed: str | None, force: bool, refresh_token: str | None) -> IssuedToken:
        component_token = read_variable(self.component_token_variable)
        if not component_token:
            raise ConfigError(
                f"Airflow Variable {self.component_token_variable!r} (component_access_token) is missing or empty",
                **self.ctx.kwargs(),
            )
        mask_value(component_token)
        current_refresh = refresh_token or self.initial_refresh_token
        body = self.transport.request(
            "POST",
            "/cgi-bin/component/api_authorizer_token",
            params={"component_access_token": component_token},
            json_body={
                "component_appid": self.component_appid,
                "authorizer_appid": self.authorizer_appid,
                "authorizer_refresh_token": current_refresh,
            },
            context=self.ctx,
            on_attempt=self.on_call,
        )
        issued = _token_from(body, "authorizer_access_token", self.ctx)
        rotated = body.get("authorizer_refresh_token")
        if isinstance(rotated, str) and rotated:
            mask_value(rotated)
        else:
            rotated = None
        return IssuedToken(issued.value, issued.expires_in, refresh_token=rotated)


class ExternalTokenSource:
    """The token belongs to a central token service and is read from a Variable.

    This source never asks WeChat for a token. On a token error it reads the Variable
    once more; if it still holds the token that failed, there is nothing left to try.
    """

    mode = "external"
    shared = False

    def __init__(self, variable: str, ctx: CallContext) -> None:
        self.variable = variable
        self.ctx = ctx

    def fetch(self, *, failed: str | None, force: bool, refresh_token: str | None) -> IssuedToken:
        value = read_variable(self.variable)
        if not value:
            raise ConfigError(f"Airflow Variable {self.variable!r} (access token) is missing or empty", **self.ctx.kwargs())
        mask_value(value)
        if failed is not None and value == failed:
            raise TokenError(
                f"the token in Airflow Variable {self.variable!r} was rejected and the Variable has not "
                "changed; the central token service must refresh it",
                **self.ctx.kwargs(),
            )
        return IssuedToken(value=value, expires_in=EXTERNAL_REREAD_SECONDS * 2)


# --- stores -----------------------------------------------------------------------

#: Whether the stored token (None: there is none) can be kept.
StillGood = Callable[[CachedToken | None], bool]
#: Obtain a new token, given the persisted refresh token (authorizer mode) or None.
FetchToken = Callable[[str | None], IssuedToken]
#: Turn a fetched token into the cached form (with its refresh time).
MakeToken = Callable[[IssuedToken], CachedToken]


class TokenStore(Protocol):
    """Where the current token of each key lives, with a lock for refreshing it."""

    def read(self, key: TokenKey) -> CachedToken | None:
        """The stored token (no lock): the fast path."""

    def refresh(self, key: TokenKey, still_good: StillGood, fetch: FetchToken, make: MakeToken) -> CachedToken:
        """Under the key's lock: keep the stored token if ``still_good``, else fetch and store.

        ``fetch`` gets the persisted refresh token (authorizer mode) or None.
        """


_LOCAL_TOKENS: dict[TokenKey, CachedToken] = {}
_LOCAL_REFRESH_TOKENS: dict[str, str] = {}
_LOCAL_LOCKS: dict[TokenKey, threading.Lock] = {}
_LOCAL_GUARD = threading.Lock()


class LocalTokenStore:
    """Process-local store: fine for one worker process, wrong for many.

    Without a shared store, every process fetches its own token: in ``classic`` mode they
    invalidate each other (5 minutes after each new token) and spend the daily quota;
    rotated authorizer refresh tokens live only as long as the process.
    """

    def read(self, key: TokenKey) -> CachedToken | None:
        return _LOCAL_TOKENS.get(key)

    def refresh(self, key: TokenKey, still_good: StillGood, fetch: FetchToken, make: MakeToken) -> CachedToken:
        with _LOCAL_GUARD:
            lock = _LOCAL_LOCKS.setdefault(key, threading.Lock())
        with lock:
            current = _LOCAL_TOKENS.get(key)
            if still_good(current):
                assert current is not None
                return current
            issued = fetch(_LOCAL_REFRESH_TOKENS.get(key.appid) if key.mode == "authorizer" else None)
            if issued.refresh_token:
                _LOCAL_REFRESH_TOKENS[key.appid] = issued.refresh_token
            cached = make(issued)
            _LOCAL_TOKENS[key] = cached
            return cached


def clear_local_store() -> None:
    """Forget every process-local token and refresh token (tests)."""
    _LOCAL_TOKENS.clear()
    _LOCAL_REFRESH_TOKENS.clear()


class _PlainText:
    """Null cipher used when no Fernet key is configured (logged once, tokens kept in clear)."""

    is_encrypted = False

    def encrypt(self, msg: bytes) -> bytes:
        return msg

    def decrypt(self, msg: bytes) -> bytes:
        return msg


@functools.cache
def _warn_unencrypted() -> None:
    """Once per process, not at every encrypt/decrypt."""
    log.warning("no Fernet key configured: cached access tokens are stored unencrypted")


def _fernet() -> Any:
    """Airflow's Fernet (task-SDK flavour); a null cipher when no key is configured.

    Without an airflow.cfg the task SDK reports the unrendered template ``{FERNET_KEY}``
    as the key: that means "not configured", not "broken".
    """
    from airflow.sdk.configuration import conf
    from airflow.sdk.crypto import get_fernet

    if conf.get("core", "fernet_key", fallback="").strip() in ("", "{FERNET_KEY}"):
        _warn_unencrypted()
        return _PlainText()
    return get_fernet()


def encrypt(value: str) -> tuple[str, bool]:
    f = _fernet()
    return f.encrypt(value.encode()).decode(), bool(f.is_encrypted)


def decrypt(value: str, encrypted: bool) -> str:
    return _fernet().decrypt(value.encode()).decode() if encrypted else value


_ENSURED: set[tuple[str, str]] = set()
_ENSURE_LOCK = threading.Lock()


class PostgresTokenStore:
    """Shared store: ``<schema>.access_token_cache`` (and ``authorizer_refresh_token``).

    Created here under an advisory lock (``CREATE ... IF NOT EXISTS`` races otherwise),
    separate from the stats tables. Tokens are Fernet-encrypted when a key is configured.
    Round trips: one SELECT on the fast path; a refresh is BEGIN, a locking upsert that
    returns the row's latest committed version (the re-check), the HTTP call, one UPDATE
    and COMMIT (+ one SELECT/UPSERT of the refresh token in authorizer mode). A
    connection is opened per operation: the memo makes operations rare, and nothing
    leaks across forked workers.
    """

    def __init__(self, postgres_conn_id: str, schema: str = "wechat") -> None:
        from wechat_datacube.storage_schema import validate_schema_name

        self.postgres_conn_id = postgres_conn_id
        self.schema = validate_schema_name(schema)

    # -- plumbing --
    def _connect(self) -> Any:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        conn = PostgresHook(postgres_conn_id=self.postgres_conn_id).get_conn()
        conn.autocommit = True
        return conn

    def _ensure(self, conn: Any) -> None:
        # Keyed by the database actually reached (a conn id can be re-pointed), not the id.
        marker = (f"{conn.info.host}:{conn.info.port}/{conn.info.dbname}", self.schema)
        with _ENSURE_LOCK:
            if marker in _ENSURED:
                return
        lock_id = int.from_bytes(hashlib.sha256(f"wechat_token_ddl:{self.schema}".encode()).digest()[:8], "big", signed=True)
        s = self.schema
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_id,))
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{s}"')
            conn.execute(
                f"""CREATE TABLE IF NOT EXISTS "{s}".access_token_cache (
                    appid text NOT NULL,
                    mode text NOT NULL,
                    token text,
                    encrypted boolean NOT NULL DEFAULT false,
                    expires_at timestamptz,
                    refresh_at timestamptz,
                    updated_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (appid, mode)
                )"""
            )
            conn.execute(f"""COMMENT ON TABLE "{s}".access_token_cache IS
                'Current WeChat access token per (appid, mode), shared by all workers; '
                'token is Fernet-encrypted when encrypted is true. Owned by wechat_datacube.tokens.'""")
            conn.execute(
                f"""CREATE TABLE IF NOT EXISTS "{s}".authorizer_refresh_token (
                    authorizer_appid text PRIMARY KEY,
                    refresh_token text NOT NULL,
                    encrypted boolean NOT NULL DEFAULT false,
                    updated_at timestamptz NOT NULL DEFAULT now()
                )"""
            )
        with _ENSURE_LOCK:
            _ENSURED.add(marker)

    @staticmethod
    def _row_to_token(row: tuple[Any, ...] | None) -> CachedToken | None:
        if row is None or row[0] is None:
            return None
        value, encrypted, expires_at, refresh_at = row
        return CachedToken(decrypt(value, encrypted), expires_at, refresh_at)

    # -- API --
    def read(self, key: TokenKey) -> CachedToken | None:
        with self._connect() as conn:
            self._ensure(conn)
            row = conn.execute(
                f'SELECT token, encrypted, expires_at, refresh_at FROM "{self.schema}".access_token_cache '
                "WHERE appid = %s AND mode = %s",
                (key.appid, key.mode),
            ).fetchone()
        return self._row_to_token(row)

    def refresh(self, key: TokenKey, still_good: StillGood, fetch: FetchToken, make: MakeToken) -> CachedToken:
        s = self.schema
        with self._connect() as conn:
            self._ensure(conn)
            with conn.transaction():
                # Locks the row (creating it if needed) and returns its latest committed
                # version: whoever refreshed while we waited is seen here.
                row = conn.execute(
                    f'INSERT INTO "{s}".access_token_cache (appid, mode) VALUES (%s, %s) '
                    "ON CONFLICT (appid, mode) DO UPDATE SET appid = EXCLUDED.appid "
                    "RETURNING token, encrypted, expires_at, refresh_at",
                    (key.appid, key.mode),
                ).fetchone()
                current = self._row_to_token(row)
                if still_good(current):
                    assert current is not None
                    return current
                persisted = None
                if key.mode == "authorizer":
                    rt = conn.execute(
                        f'SELECT refresh_token, encrypted FROM "{s}".authorizer_refresh_token '
                        "WHERE authorizer_appid = %s",
                        (key.appid,),
                    ).fetchone()
                    persisted = decrypt(rt[0], rt[1]) if rt else None
                    mask_value(persisted)
                issued = fetch(persisted)
                if issued.refresh_token and issued.refresh_token != persisted:
                    enc_rt, is_enc_rt = encrypt(issued.refresh_token)
                    conn.execute(
                        f'INSERT INTO "{s}".authorizer_refresh_token (authorizer_appid, refresh_token, encrypted) '
                        "VALUES (%s, %s, %s) ON CONFLICT (authorizer_appid) DO UPDATE SET "
                        "refresh_token = EXCLUDED.refresh_token, encrypted = EXCLUDED.encrypted, updated_at = now()",
                        (key.appid, enc_rt, is_enc_rt),
                    )
                cached = make(issued)
                enc, is_enc = encrypt(cached.value)
                conn.execute(
                    f'UPDATE "{s}".access_token_cache SET token = %s, encrypted = %s, expires_at = %s, '
                    "refresh_at = %s, updated_at = now() WHERE appid = %s AND mode = %s",
                    (enc, is_enc, cached.expires_at, cached.refresh_at, key.appid, key.mode),
                )
                return cached


# --- the manager: memo + protocol ------------------------------------------------

#: In-process memo: (wechat conn id, appid, mode) -> token. Saves a DB round trip per call.
_MEMO: dict[tuple[str, str, str], CachedToken] = {}
_MEMO_LOCK = threading.Lock()


def clear_token_memo() -> None:
    """Forget the in-process memo (the shared store is untouched)."""
    with _MEMO_LOCK:
        _MEMO.clear()


class TokenManager:
    """Hands out a usable token; refreshes it under the store's lock when needed.

    ``get(failed=token)`` is what a caller does after a token error: the stored token is
    replaced only if it is still the one that failed; a newer one is simply used.
    """

    def __init__(
        self,
        source: TokenSource,
        store: TokenStore,
        *,
        conn_id: str,
        appid: str,
        clock: Clock,
        margin: float = DEFAULT_REFRESH_MARGIN,
    ) -> None:
        self.source = source
        self.store = store if source.shared else LocalTokenStore()
        self.key = TokenKey(appid, source.mode)
        self.memo_key = (conn_id, appid, source.mode)
        self.clock = clock
        self.margin = margin

    def get(self, *, force: bool = False, failed: str | None = None) -> str:
        now = self.clock()

        def good(tok: CachedToken | None) -> bool:
            return tok is not None and tok.value != failed and tok.usable(now)

        if not force:
            with _MEMO_LOCK:
                memo = _MEMO.get(self.memo_key)
            if good(memo):
                assert memo is not None
                return memo.value
            stored = self.store.read(self.key)
            if good(stored):
                assert stored is not None
                self._remember(stored)
                return stored.value

        def fetch(refresh_token: str | None) -> IssuedToken:
            return self.source.fetch(failed=failed, force=force, refresh_token=refresh_token)

        def make(issued: IssuedToken) -> CachedToken:
            return CachedToken.from_issued(issued, self.clock(), self.margin)

        cached = self.store.refresh(self.key, (lambda tok: False) if force else good, fetch, make)
        self._remember(cached)
        return cached.value

    def _remember(self, tok: CachedToken) -> None:
        mask_value(tok.value)
        with _MEMO_LOCK:
            _MEMO[self.memo_key] = tok
