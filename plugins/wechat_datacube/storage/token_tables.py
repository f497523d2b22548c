"""The token schema (``wechat_tokens``): its tables as a migration track of their own.

:mod:`wechat_datacube.tokens` owns what the tables hold (the shared access-token cache and
the authorizer refresh tokens); this module owns their DDL, run by the same machinery as
the data schema (:mod:`.versions`): a ledger (``token_migrations``, not
``schema_migrations``, so a data schema that shares the name cannot be mistaken for it),
the advisory lock, and the one-statement check of :func:`ensure_token_schema`.

Step 1 creates the tables as this release uses them and upgrades, in place, the tables
earlier releases created without a ledger (``CREATE ... IF NOT EXISTS``, ``ADD COLUMN IF
NOT EXISTS``, the cache re-keyed by credential): a deployment of any earlier release
reaches the same layout, and its rows are kept (but those of the cache keyed without a
credential, which no key can match).
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import sql

from wechat_datacube.storage.catalog import live_primary_key, primary_key_name
from wechat_datacube.storage.versions import Migration, Track, ensure

log = logging.getLogger(__name__)

_TABLES = """
CREATE TABLE IF NOT EXISTS {s}.access_token_cache (
  appid text NOT NULL,
  mode text NOT NULL,
  credential text NOT NULL DEFAULT '',
  token text,
  encrypted boolean NOT NULL DEFAULT false,
  expires_at timestamptz,
  refresh_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (appid, mode, credential)
);
CREATE TABLE IF NOT EXISTS {s}.authorizer_refresh_token (
  authorizer_appid text PRIMARY KEY,
  refresh_token text NOT NULL,
  encrypted boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE {s}.authorizer_refresh_token
  ADD COLUMN IF NOT EXISTS previous_refresh_token text,
  ADD COLUMN IF NOT EXISTS previous_encrypted boolean NOT NULL DEFAULT false;
ALTER TABLE {s}.access_token_cache ADD COLUMN IF NOT EXISTS credential text NOT NULL DEFAULT '';
"""

_COMMENTS = """
COMMENT ON TABLE {s}.access_token_cache IS
  'Current WeChat access token per (appid, mode, credential fingerprint), shared by all '
  'workers and accounts; token is Fernet-encrypted when encrypted is true. '
  'Owned by wechat_datacube.tokens.';
COMMENT ON COLUMN {s}.access_token_cache.credential IS
  'Fingerprint (truncated HMAC-SHA256) of the credential that obtained the token, '
  'e.g. AppID + AppSecret: a token is only used with the credential that obtained it. '
  'Never the secret itself.';
COMMENT ON TABLE {s}.authorizer_refresh_token IS
  'Latest authorizer refresh token per account and the one it replaced (a fallback), '
  'committed as soon as WeChat rotates it; Fernet-encrypted when encrypted is true.';
"""


def _key_by_credential(cur: psycopg.Cursor[Any], schema: str) -> None:
    """Re-key an ``access_token_cache`` of an earlier release, keyed (appid, mode).

    Its rows were obtained with a credential nobody recorded (the new column's default
    ``''``), so no key can match them: they are deleted and simply fetched again. Workers
    still running that release cannot write to the re-keyed table (their upsert names the
    old key): upgrade them together. Does nothing once the key holds ``credential``.
    """
    if "credential" in live_primary_key(cur, schema, "access_token_cache"):
        return
    table = sql.Identifier(schema, "access_token_cache")
    cur.execute(sql.SQL("DELETE FROM {} WHERE credential = ''").format(table))
    old = primary_key_name(cur, schema, "access_token_cache")
    drop = sql.SQL("DROP CONSTRAINT {}, ").format(sql.Identifier(old)) if old else sql.SQL("")
    cur.execute(sql.SQL("ALTER TABLE {} {}ADD PRIMARY KEY (appid, mode, credential)").format(table, drop))
    log.info("upgraded %s.access_token_cache to one row per credential; cached tokens are fetched again", schema)


def _t1_token_tables(cur: psycopg.Cursor[Any], schema: str) -> None:
    """access_token_cache and authorizer_refresh_token, created or upgraded from any earlier release."""
    s = sql.Identifier(schema)
    cur.execute(sql.SQL(_TABLES).format(s=s))
    _key_by_credential(cur, schema)
    cur.execute(sql.SQL(_COMMENTS).format(s=s))


#: Append-only. Released steps are never edited.
TOKEN_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "access_token_cache and authorizer_refresh_token", _t1_token_tables),
)


def _relations(schema: str) -> list[str]:
    return ["access_token_cache", "authorizer_refresh_token"]


def _definition(schema: str) -> str:
    return _TABLES + _COMMENTS


TOKEN_TRACK = Track("token", "token_migrations", TOKEN_MIGRATIONS, _relations, _definition)


def ensure_token_schema(conn: psycopg.Connection[Any], schema: str) -> bool:
    """Make sure the token tables exist in ``schema`` as this code expects: ONE statement when they do.

    Returns whether it had to migrate. ``conn`` has no transaction open.
    """
    return ensure(conn, schema, TOKEN_TRACK)
