"""Access-token sources and the shared token cache.

WeChat's advice, and the lesson of every SDK's issue tracker: one place owns the token,
everyone else reads it; refresh under a lock and re-check after taking it; on a token
error invalidate only if the stored token is still the one that failed, refresh, and
retry the call once. This module implements that ownership:

* **Sources** know how to obtain a token for one mode (``stable``, ``classic``,
  ``authorizer``, ``external``) and nothing about caching.
* **Stores** hold the current token per (appid, mode, credential): :class:`PostgresTokenStore`
  (shared by every worker, process, host and account of a database: schema
  :data:`TOKEN_SCHEMA`, encrypted with the Airflow Fernet key) or :class:`LocalTokenStore`
  (this process only).
* :class:`TokenManager` puts a module-level in-process memo in front of the store so a
  task does not hit the database per call, and runs the refresh protocol.

Why a database and not just the memo: in ``classic`` mode every new token invalidates the
previous one five minutes later, so independent workers that each fetch their own knock
each other out, and each fetch spends the 2000/day quota. Several ``stable`` callers are
harmless, but a forced refresh still invalidates everyone else's token.

Hardening (what went wrong before): a rotated authorizer refresh token is committed the
moment WeChat hands it out, and the one it replaced is kept as a fallback; a row the
current Fernet key cannot decrypt is treated as absent; WeChat's ``expires_in`` is
clamped into a sane range; all accounts sharing an AppID share one cache, whatever
their data schema; and a token is only ever handed to the credential that obtained it.

Why the credential is part of the key: keyed by (appid, mode) alone, a connection whose
AppSecret was changed to a wrong one kept working on the token the right secret had
cached, for up to two hours, and then failed with 40125 at some random later task; the
connection's Test button even reported success. The key now carries a fingerprint of the
credential (:func:`credential_fingerprint`: a truncated HMAC-SHA256 of AppID and
AppSecret, never the secret), so a changed secret misses the cache and is checked by
WeChat at its first call.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import hmac
import logging
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.fernet import InvalidToken

from wechat_datacube.errors import ConfigError, MalformedResponseError, PermanentError, TokenError
from wechat_datacube.transport import CallContext, Transport

log = logging.getLogger(__name__)

#: Refresh a token when less than this many seconds of its life are left (>= 5 min).
DEFAULT_REFRESH_MARGIN = 600.0
#: How long an externally owned token is trusted before the Variable is read again.
EXTERNAL_REREAD_SECONDS = 300.0
#: The range a token lifetime from WeChat is clamped into (documented: 7200 s).
EXPIRES_IN_MIN = 60.0
EXPIRES_IN_MAX = 14_400.0
#: The lifetime assumed when WeChat's answer has none, or no number: the documented one.
EXPIRES_IN_DEFAULT = 7200.0
#: errcode of a refused authorizer refresh token.
REFRESH_TOKEN_INVALID = 61023
#: Schema of the token tables: one for the whole database, not one per account's data
#: schema, so two accounts with one AppID share (and never invalidate) one token.
TOKEN_SCHEMA = "wechat_tokens"

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


# --- token lifetimes ----------------------------------------------------------------


def _as_number(raw: Any) -> float | None:
    """``raw`` as a float (huge ints as +-inf), or None for what is not a number (bool, NaN, text)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return None
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except ValueError:
        return None
    except OverflowError:  # an int beyond float range
        value = math.inf if raw > 0 else -math.inf
    return None if math.isnan(value) else value


def _describe_raw(raw: Any) -> str:
    """What a non-numeric expires_in was, without echoing text that could hold a secret."""
    if isinstance(raw, str):
        return f"a string of {len(raw)} character(s)"
    if isinstance(raw, bool | float):
        return repr(raw)
    return f"a {type(raw).__name__}"


def checked_expires_in(raw: Any, account: str | None) -> float:
    """The lifetime (s) to trust for a token WeChat answered with ``expires_in=raw``.

    Why: the lifetime decides when every worker refreshes. A negative or zero value made a
    new token on every call (in classic mode: the daily quota spent, other workers'
    tokens killed), ``1e300`` overflowed the expiry date after WeChat had already
    answered, and text or ``true`` is no lifetime at all. Numbers are clamped into
    :data:`EXPIRES_IN_MIN`..:data:`EXPIRES_IN_MAX`; a missing or non-numeric value means
    the documented 7200 s (if the token dies sooner, the call's token error refreshes it
    once). Each correction is a warning naming the account, never the token.
    """
    if raw is None:
        log.warning("account %s: the token answer has no expires_in; assuming %d s", account, EXPIRES_IN_DEFAULT)
        return EXPIRES_IN_DEFAULT
    number = _as_number(raw)
    if number is None:
        log.warning(
            "account %s: the token answer's expires_in is not a number (%s); assuming %d s",
            account,
            _describe_raw(raw),
            EXPIRES_IN_DEFAULT,
        )
        return EXPIRES_IN_DEFAULT
    clamped = min(max(number, EXPIRES_IN_MIN), EXPIRES_IN_MAX)
    if clamped != number:
        log.warning(
            "account %s: the token answer's expires_in=%g is outside %d..%d s; using %d s",
            account,
            number,
            EXPIRES_IN_MIN,
            EXPIRES_IN_MAX,
            clamped,
        )
    return clamped


# --- tokens -----------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    """What a source returns: the token and its (checked) lifetime in seconds."""

    value: str
    expires_in: float


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
        number of calls until WeChat issues a new one. The lifetime is bounded again
        here (sources already check it) so no value can overflow the dates.
        """
        life = min(max(0.0, float(issued.expires_in)), EXPIRES_IN_MAX)
        ahead = max(life - margin, life / 2)
        return cls(issued.value, now + dt.timedelta(seconds=life), now + dt.timedelta(seconds=ahead))


@dataclass(frozen=True)
class TokenKey:
    """The cache key: whose token (appid), of which kind (mode), obtained with what (credential).

    ``credential`` is a :func:`credential_fingerprint` of what obtained the token (classic
    and stable: AppID + AppSecret; authorizer: component AppID + authorizer AppID;
    external: the Variable's name), so a token is never handed to another credential.
    """

    appid: str
    mode: str
    credential: str


#: HMAC key of :func:`credential_fingerprint`: a fixed domain separator, not a secret.
#: Changing it (or the truncation) makes every cached token a miss once: they are refetched.
_FINGERPRINT_KEY = b"wechat_datacube.tokens credential fingerprint v1"
#: Modes whose credential is the AppID's one AppSecret: a newly accepted one supersedes the rest.
ONE_SECRET_MODES = ("classic", "stable")
#: Hex digits kept (64 bits): enough to tell two credentials of one AppID apart.
FINGERPRINT_LENGTH = 16


def credential_fingerprint(*parts: str) -> str:
    """A short, stable fingerprint of a credential: HMAC-SHA256 over its parts, truncated.

    Stored in clear in the token table (it is part of the key), so it must not reveal the
    secret: an AppSecret is 32 random hex digits (128 bits), so 64 bits of a domain-separated
    SHA-256 of it (HMAC under a fixed, public key) give nothing to search with. Parts are length-prefixed so ("ab", "c") and ("a", "bc") differ.
    """
    message = b"".join(len(p.encode()).to_bytes(4, "big") + p.encode() for p in parts)
    return hmac.new(_FINGERPRINT_KEY, message, hashlib.sha256).hexdigest()[:FINGERPRINT_LENGTH]


@dataclass(frozen=True)
class RefreshTokens:
    """The persisted authorizer refresh tokens: the current one and the one it replaced.

    ``previous`` is a fallback, tried when WeChat refuses ``current`` with 61023 (say a
    rotation WeChat did not complete): without a working one, a person must authorise
    the account again.
    """

    current: str | None = None
    previous: str | None = None


#: Persist a refresh token at once, in its own commit: (new current, the one it replaces).
SaveRefresh = Callable[[str, str | None], None]


# --- sources ----------------------------------------------------------------------


class TokenSource(Protocol):
    """Obtains a token for one mode. ``failed`` is the token a call just rejected.

    ``refresh`` and ``save_refresh`` matter to the authorizer mode only: the persisted
    refresh tokens, and where to persist a rotated one the moment WeChat answers.
    """

    mode: str
    #: Whether the token is worth sharing through the store (False: external Variable).
    shared: bool
    #: :func:`credential_fingerprint` of what this source obtains tokens with (part of the key).
    credential: str

    def fetch(
        self, *, failed: str | None, force: bool, refresh: RefreshTokens, save_refresh: SaveRefresh
    ) -> IssuedToken: ...


def _token_from(body: dict[str, Any], field: str, ctx: CallContext) -> IssuedToken:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise MalformedResponseError(f"token response has no {field}", **ctx.kwargs())
    mask_value(value)
    return IssuedToken(value=value, expires_in=checked_expires_in(body.get("expires_in"), ctx.account))


class ClassicTokenSource:
    """``GET /cgi-bin/token``: a new token every call; the previous one dies 5 min later."""

    mode = "classic"
    shared = True

    def __init__(self, transport: Transport, appid: str, secret: str, ctx: CallContext, on_call: Callable[[], None]):
        self.transport, self.appid, self.secret, self.ctx, self.on_call = transport, appid, secret, ctx, on_call
        self.credential = credential_fingerprint(appid, secret)

    def fetch(
        self, *, failed: str | None, force: bool, refresh: RefreshTokens, save_refresh: SaveRefresh
    ) -> IssuedToken:
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
        self.credential = credential_fingerprint(appid, secret)

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

    def fetch(
        self, *, failed: str | None, force: bool, refresh: RefreshTokens, save_refresh: SaveRefresh
    ) -> IssuedToken:
        if force:
            return self._call(True)
        issued = self._call(False)
        if failed is not None and issued.value == failed:
            return self._call(True)
        return issued


class AuthorizerTokenSource:
    """Third-party platform: ``api_authorizer_token`` with the component token from a Variable.

    The refresh token may rotate with every call. The rotated one is handed to
    ``save_refresh`` straight after WeChat's answer, before anything else can fail: the
    old one is dead by then, and losing the new one means a person must re-authorise.
    Refresh tokens are tried in order until one is accepted: the stored one, the one it
    replaced, then the connection's (a bootstrap, and where an operator puts the token of
    a re-authorisation).
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
        # The refresh token is no part of it: it rotates with every call.
        self.credential = credential_fingerprint(component_appid, authorizer_appid)

    def _component_token(self) -> str:
        component_token = read_variable(self.component_token_variable)
        if not component_token:
            raise ConfigError(
                f"Airflow Variable {self.component_token_variable!r} (component_access_token) is missing or empty",
                **self.ctx.kwargs(),
            )
        mask_value(component_token)
        return component_token

    def candidates(self, refresh: RefreshTokens) -> list[tuple[str, str]]:
        """(label, refresh token) to try in order, each distinct token once."""
        named = (
            ("stored", refresh.current),
            ("previous stored", refresh.previous),
            ("connection's", self.initial_refresh_token),
        )
        seen: set[str] = set()
        out = []
        for label, token in named:
            if token and token not in seen:
                seen.add(token)
                out.append((label, token))
        return out

    def _exchange(self, component_token: str, refresh_token: str) -> dict[str, Any]:
        return self.transport.request(
            "POST",
            "/cgi-bin/component/api_authorizer_token",
            params={"component_access_token": component_token},
            json_body={
                "component_appid": self.component_appid,
                "authorizer_appid": self.authorizer_appid,
                "authorizer_refresh_token": refresh_token,
            },
            context=self.ctx,
            on_attempt=self.on_call,
        )

    def fetch(
        self, *, failed: str | None, force: bool, refresh: RefreshTokens, save_refresh: SaveRefresh
    ) -> IssuedToken:
        component_token = self._component_token()
        candidates = self.candidates(refresh)
        if not candidates:
            raise ConfigError("no authorizer refresh token stored or configured", **self.ctx.kwargs())
        for index, (label, candidate) in enumerate(candidates):
            try:
                body = self._exchange(component_token, candidate)
            except PermanentError as exc:
                if exc.errcode != REFRESH_TOKEN_INVALID or index == len(candidates) - 1:
                    raise
                log.warning(
                    "account %s: WeChat refused the %s authorizer refresh token (61023); trying the %s one",
                    self.ctx.account,
                    label,
                    candidates[index + 1][0],
                )
                continue
            self._keep_working_refresh_token(body, candidate, refresh, save_refresh)
            return _token_from(body, "authorizer_access_token", self.ctx)
        raise AssertionError("unreachable: the last candidate answers or raises")

    @staticmethod
    def _keep_working_refresh_token(
        body: dict[str, Any], used: str, refresh: RefreshTokens, save_refresh: SaveRefresh
    ) -> None:
        """Persist the refresh token to use next time, if it is not the stored one already.

        That is the rotated one WeChat just sent (replacing ``used``), else ``used`` itself
        when it was a fallback: the next refresh then starts with a token that works.
        """
        rotated = body.get("authorizer_refresh_token")
        if isinstance(rotated, str) and rotated and rotated != used:
            mask_value(rotated)
            save_refresh(rotated, used)
        elif used != refresh.current:
            save_refresh(used, refresh.current)


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
        self.credential = credential_fingerprint("variable", variable)

    def fetch(
        self, *, failed: str | None, force: bool, refresh: RefreshTokens, save_refresh: SaveRefresh
    ) -> IssuedToken:
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
#: Obtain a new token, given the persisted refresh tokens (authorizer mode) and where to
#: persist a rotated one at once.
FetchToken = Callable[[RefreshTokens, SaveRefresh], IssuedToken]
#: Turn a fetched token into the cached form (with its refresh time).
MakeToken = Callable[[IssuedToken], CachedToken]


class TokenStore(Protocol):
    """Where the current token of each key lives, with a lock for refreshing it."""

    def read(self, key: TokenKey) -> CachedToken | None:
        """The stored token (no lock): the fast path."""

    def refresh(self, key: TokenKey, still_good: StillGood, fetch: FetchToken, make: MakeToken) -> CachedToken:
        """Under the key's lock: keep the stored token if ``still_good``, else fetch and store.

        ``fetch`` gets the persisted refresh tokens (authorizer mode; empty otherwise) and a
        function that persists a rotated one at once, still under the lock.
        """


_LOCAL_TOKENS: dict[TokenKey, CachedToken] = {}
_LOCAL_REFRESH_TOKENS: dict[str, RefreshTokens] = {}
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

            def save(new: str, previous: str | None) -> None:
                _LOCAL_REFRESH_TOKENS[key.appid] = RefreshTokens(new, previous)

            refresh = (
                _LOCAL_REFRESH_TOKENS.get(key.appid, RefreshTokens()) if key.mode == "authorizer" else RefreshTokens()
            )
            cached = make(fetch(refresh, save))
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
    """The clear text of a stored value; InvalidToken if the current key cannot read it.

    A value stored encrypted while no key is configured now is unreadable too: handing
    out the ciphertext as a token would only fail at WeChat.
    """
    if not encrypted:
        return value
    f = _fernet()
    if not f.is_encrypted:
        raise InvalidToken
    return f.decrypt(value.encode()).decode()


def _readable(value: str | None, encrypted: bool, what: str, instead: str) -> str | None:
    """``value`` decrypted, or None with a warning when the current Fernet key cannot read it.

    Why not raise: after AIRFLOW__CORE__FERNET_KEY changes, every stored token is
    unreadable and raising would stop every task until someone deletes rows by hand; a
    token can be fetched again (and overwrites the row). The warning names the row, never
    its value.
    """
    if value is None:
        return None
    try:
        return decrypt(value, encrypted)
    except InvalidToken:
        log.warning(
            "%s cannot be decrypted with the current Fernet key (AIRFLOW__CORE__FERNET_KEY changed?); %s",
            what,
            instead,
        )
        return None


def _lock_id(name: str) -> int:
    """A stable signed 64-bit id for a PostgreSQL advisory lock."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def _session_lock(conn: Any, name: str) -> Iterator[None]:
    """Hold a session-level advisory lock across several commits.

    A row lock lasts only as long as its transaction, but the rotated refresh token must
    be committed (its own transaction) while the refresh still excludes other workers. A
    session lock survives commits and dies with the connection (crash or SIGKILL).
    """
    import psycopg

    lock_id = _lock_id(name)
    conn.execute("SELECT pg_advisory_lock(%s)", (lock_id,))
    try:
        yield
    finally:
        with contextlib.suppress(psycopg.Error):  # a dead connection has released it already
            conn.execute("SELECT pg_advisory_unlock(%s)", (lock_id,))


_ENSURED: set[tuple[str, str]] = set()
_ENSURE_LOCK = threading.Lock()


class PostgresTokenStore:
    """Shared store: ``wechat_tokens.access_token_cache`` and ``.authorizer_refresh_token``.

    One schema (:data:`TOKEN_SCHEMA`) per database, whatever the accounts' data schemas:
    a cache per data schema let two accounts with one AppID invalidate each other's
    classic tokens and rotated refresh tokens. Accounts whose data lives in different
    *databases* still have one cache each: point their ``postgres_conn_id`` at one database.

    The tables are a migration track of the storage package
    (:mod:`wechat_datacube.storage.token_tables`: created, or upgraded from any earlier
    release, under the migration lock; checked with one statement once per process).
    Refresh tokens of the tables' former places (``<data schema>``) are carried over,
    newest first. Tokens are Fernet-encrypted when a key is configured.

    ``access_token_cache`` is keyed (appid, mode, credential); a table of an earlier
    release, keyed (appid, mode), is re-keyed by that migration and its tokens are simply
    fetched again. An AppID has one AppSecret at a time, so when a classic or stable
    token is stored, the rows other credentials hold for that AppID and mode (a reset
    AppSecret's) are deleted: the old secret then fails at once too. Authorizer rows are
    kept: one account may have authorised two third-party platforms.

    Round trips: one SELECT on the fast path; a refresh takes a session advisory lock per
    (appid, mode) — per AppID, not per credential, so a classic AppID never gets two new
    tokens at once — re-reads the row (whoever refreshed while we waited is seen here), calls
    WeChat, commits a rotated refresh token at once (authorizer mode), upserts the token
    and unlocks. A connection is opened per operation: the memo makes operations rare, and
    nothing leaks across forked workers.
    """

    def __init__(self, postgres_conn_id: str, *, schema: str = TOKEN_SCHEMA) -> None:
        from wechat_datacube.storage import validate_schema_name

        self.postgres_conn_id = postgres_conn_id
        self.schema = validate_schema_name(schema)

    # -- plumbing --
    def _connect(self) -> Any:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        conn = PostgresHook(postgres_conn_id=self.postgres_conn_id).get_conn()
        conn.autocommit = True
        return conn

    def _ensure(self, conn: Any) -> None:
        """Once per process and database: the token tables exist (a storage migration); old refresh tokens follow."""
        from wechat_datacube.storage import ensure_token_schema

        # Keyed by the database actually reached (a conn id can be re-pointed), not the id.
        marker = (f"{conn.info.host}:{conn.info.port}/{conn.info.dbname}", self.schema)
        with _ENSURE_LOCK:
            if marker in _ENSURED:
                return
        ensure_token_schema(conn, self.schema)
        with conn.transaction():
            self._carry_over_refresh_tokens(conn)
        with _ENSURE_LOCK:
            _ENSURED.add(marker)

    def _carry_over_refresh_tokens(self, conn: Any) -> None:
        """Merge every former ``<schema>.authorizer_refresh_token`` in: the newest row wins.

        Before the token tables had their own schema they lived in each account's data
        schema. Losing a refresh token there means a person must re-authorise the account,
        so each is copied (as stored: still encrypted) unless the shared row is newer; a
        row it replaces becomes the fallback. Cheap and idempotent, so it runs whenever the
        tables are ensured (once per process and database): rows written meanwhile by a not
        yet upgraded worker follow.
        """
        import psycopg
        from psycopg import sql

        legacy = conn.execute(
            """SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relname = 'authorizer_refresh_token' AND c.relkind IN ('r', 'p')
                  AND n.nspname <> %s AND has_table_privilege(c.oid, 'SELECT') ORDER BY 1""",
            (self.schema,),
        ).fetchall()
        for (old_schema,) in legacy:
            merge = sql.SQL(
                """INSERT INTO {shared} AS t (authorizer_appid, refresh_token, encrypted, updated_at)
                   SELECT authorizer_appid, refresh_token, encrypted, updated_at FROM {old}
                   ON CONFLICT (authorizer_appid) DO UPDATE SET
                       previous_refresh_token = t.refresh_token, previous_encrypted = t.encrypted,
                       refresh_token = EXCLUDED.refresh_token, encrypted = EXCLUDED.encrypted,
                       updated_at = EXCLUDED.updated_at
                   WHERE EXCLUDED.updated_at > t.updated_at"""
            ).format(
                shared=sql.Identifier(self.schema, "authorizer_refresh_token"),
                old=sql.Identifier(old_schema, "authorizer_refresh_token"),
            )
            try:
                with conn.transaction():  # a savepoint: a foreign table of that name must not stop us
                    conn.execute(merge)
            except psycopg.Error as exc:  # its text may quote a row: log only the kind of error
                log.warning(
                    "could not carry over refresh tokens from %s.authorizer_refresh_token (%s, SQLSTATE %s)",
                    old_schema,
                    type(exc).__name__,
                    exc.sqlstate,
                )

    def _select_token(self, conn: Any, key: TokenKey) -> CachedToken | None:
        row = conn.execute(
            f'SELECT token, encrypted, expires_at, refresh_at FROM "{self.schema}".access_token_cache '
            "WHERE appid = %s AND mode = %s AND credential = %s",
            (key.appid, key.mode, key.credential),
        ).fetchone()
        if row is None or row[0] is None:
            return None
        value = _readable(row[0], row[1], f"the cached {key.mode} access token of {key.appid}", "fetching a new one")
        return None if value is None else CachedToken(value, row[2], row[3])

    def _refresh_tokens(self, conn: Any, key: TokenKey) -> RefreshTokens:
        if key.mode != "authorizer":
            return RefreshTokens()
        row = conn.execute(
            f"SELECT refresh_token, encrypted, previous_refresh_token, previous_encrypted "
            f'FROM "{self.schema}".authorizer_refresh_token WHERE authorizer_appid = %s',
            (key.appid,),
        ).fetchone()
        if row is None:
            return RefreshTokens()
        current = _readable(
            row[0],
            row[1],
            f"the stored authorizer refresh token of {key.appid}",
            "falling back to the connection's authorizer_refresh_token",
        )
        previous = _readable(row[2], row[3], f"the previous authorizer refresh token of {key.appid}", "ignoring it")
        mask_value(current)
        mask_value(previous)
        return RefreshTokens(current, previous)

    def _save_refresh(self, conn: Any, appid: str, new: str, previous: str | None) -> None:
        """Commit a refresh token on its own (autocommit), before anything else can fail."""
        enc_new, new_is_enc = encrypt(new)
        enc_prev, prev_is_enc = encrypt(previous) if previous else (None, False)
        conn.execute(
            f'INSERT INTO "{self.schema}".authorizer_refresh_token '
            "(authorizer_appid, refresh_token, encrypted, previous_refresh_token, previous_encrypted) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (authorizer_appid) DO UPDATE SET "
            "refresh_token = EXCLUDED.refresh_token, encrypted = EXCLUDED.encrypted, "
            "previous_refresh_token = EXCLUDED.previous_refresh_token, "
            "previous_encrypted = EXCLUDED.previous_encrypted, updated_at = now()",
            (appid, enc_new, new_is_enc, enc_prev, prev_is_enc),
        )

    def _write_token(self, conn: Any, key: TokenKey, cached: CachedToken) -> None:
        enc, is_enc = encrypt(cached.value)
        if key.mode in ONE_SECRET_MODES:  # WeChat just accepted this secret: any other one is dead
            conn.execute(
                f'DELETE FROM "{self.schema}".access_token_cache WHERE appid = %s AND mode = %s AND credential <> %s',
                (key.appid, key.mode, key.credential),
            )
        conn.execute(
            f'INSERT INTO "{self.schema}".access_token_cache '
            "(appid, mode, credential, token, encrypted, expires_at, refresh_at) VALUES (%s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (appid, mode, credential) DO UPDATE SET token = EXCLUDED.token, "
            "encrypted = EXCLUDED.encrypted, expires_at = EXCLUDED.expires_at, refresh_at = EXCLUDED.refresh_at, "
            "updated_at = now()",
            (key.appid, key.mode, key.credential, enc, is_enc, cached.expires_at, cached.refresh_at),
        )

    # -- API --
    def read(self, key: TokenKey) -> CachedToken | None:
        with self._connect() as conn:
            self._ensure(conn)
            return self._select_token(conn, key)

    def refresh(self, key: TokenKey, still_good: StillGood, fetch: FetchToken, make: MakeToken) -> CachedToken:
        with self._connect() as conn:
            self._ensure(conn)
            with _session_lock(conn, f"wechat_token:{self.schema}:{key.appid}:{key.mode}"):
                current = self._select_token(conn, key)  # the latest committed row: the re-check
                if still_good(current):
                    assert current is not None
                    return current
                save = functools.partial(self._save_refresh, conn, key.appid)
                cached = make(fetch(self._refresh_tokens(conn, key), save))
                self._write_token(conn, key, cached)
                return cached


# --- the manager: memo + protocol ------------------------------------------------

#: In-process memo: (wechat conn id, appid, mode, credential) -> token. Saves a DB round trip per call.
#: The credential is in it too: a connection edited in the UI meanwhile must not find the old token.
_MEMO: dict[tuple[str, str, str, str], CachedToken] = {}
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
        self.key = TokenKey(appid, source.mode, source.credential)
        self.memo_key = (conn_id, appid, source.mode, source.credential)
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

        def fetch(refresh: RefreshTokens, save_refresh: SaveRefresh) -> IssuedToken:
            return self.source.fetch(failed=failed, force=force, refresh=refresh, save_refresh=save_refresh)

        def make(issued: IssuedToken) -> CachedToken:
            return CachedToken.from_issued(issued, self.clock(), self.margin)

        cached = self.store.refresh(self.key, (lambda tok: False) if force else good, fetch, make)
        self._remember(cached)
        return cached.value

    def _remember(self, tok: CachedToken) -> None:
        mask_value(tok.value)
        with _MEMO_LOCK:
            _MEMO[self.memo_key] = tok
