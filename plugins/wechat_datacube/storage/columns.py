"""The columns every typed table has besides the registry's, and the table's key.

Shared by the DDL (:mod:`.schema`), the row normaliser (:mod:`.rows`), the writer and the
checks: each of them names these columns, so they are defined once, here.
"""

from __future__ import annotations

from wechat_datacube.endpoints import EndpointSpec

#: The account a row belongs to (its name in the accounts file); first column of every key.
ACCOUNT_COLUMN = "account"
#: Fields WeChat sent that the registry does not know yet (jsonb).
EXTRA_COLUMN = "extra"
#: The ``api_response`` row a typed row was parsed from.
RESPONSE_COLUMN = "response_id"
#: When the row was written.
LOADED_AT_COLUMN = "loaded_at"

#: The fixed columns with their SQL and comment, in table order (account first, the rest last).
FIXED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    (ACCOUNT_COLUMN, "text NOT NULL", "Account the row belongs to: its name in the accounts file (not the AppID)."),
    (EXTRA_COLUMN, "jsonb NOT NULL DEFAULT '{}'::jsonb", "Fields WeChat sent that the registry does not know yet."),
    (LOADED_AT_COLUMN, "timestamptz NOT NULL DEFAULT now()", "When this row was written."),
    (RESPONSE_COLUMN, "bigint NOT NULL", "The api_response row this row was parsed from."),
)
#: Names a registry column may not use.
RESERVED_COLUMNS = tuple(c[0] for c in FIXED_COLUMNS)


def primary_key(spec: EndpointSpec) -> tuple[str, ...]:
    """The typed table's key: the account, then the registry's key."""
    return (ACCOUNT_COLUMN, *spec.key)


def written_columns(spec: EndpointSpec) -> tuple[str, ...]:
    """The columns a window write fills, in COPY order (``loaded_at`` keeps its default)."""
    return (ACCOUNT_COLUMN, *spec.column_names, EXTRA_COLUMN, RESPONSE_COLUMN)
