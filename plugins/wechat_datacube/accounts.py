"""The accounts file: which Official Accounts to pull, with which connections and endpoints.

Parsed at DAG-parse time, so it must be cheap (one small YAML file, no network, no DB) and
forgiving: one broken account yields an :class:`AccountConfigError` for that account only,
and the DAG file turns it into a visible import problem while the other accounts' DAGs
still load.
"""

import datetime as dt
import os
import string
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from wechat_datacube.endpoints import FAMILIES, HISTORY_START, REPLACEMENT_START, UnknownEndpointError, expand_endpoints
from wechat_datacube.errors import ConfigError

#: libyaml's safe loader when the wheel has it: parsing runs at every DAG-file parse.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
ACCOUNTS_ENV = "WECHAT_DATACUBE_ACCOUNTS"
DEFAULT_ACCOUNTS_FILE = Path(__file__).parents[2] / "include" / "accounts.yaml"

# Names are checked with character sets rather than regular expressions: compiling the
# three patterns took ~0.2 ms of every DAG-file parse (bench/parse_time.py).
_LOWER = frozenset(string.ascii_lowercase)
_IDENT_CHARS = _LOWER | frozenset(string.digits + "_")
_CONN_ID_CHARS = _IDENT_CHARS | frozenset(string.ascii_uppercase + ".-")
_SQL_IDENT_FIRST = _LOWER | {"_"}


def _is_identifier(value: object, first: frozenset[str] = _LOWER, max_len: int = 63) -> bool:
    """``[first][a-z0-9_]*``, at most ``max_len`` characters (a DAG-id part or a SQL identifier)."""
    return (
        isinstance(value, str) and 0 < len(value) <= max_len and value[0] in first and _IDENT_CHARS.issuperset(value)
    )
_KNOWN_KEYS = {
    "name",
    "wechat_conn_id",
    "postgres_conn_id",
    "start_date",
    "endpoints",
    "cutover_date",
    "schema",
    "max_active_runs",
    "ready_deadline_hour",
    "description",
}


class AccountConfigError(ConfigError):
    """One account (or the file) is misconfigured; names the account and the field."""


class AccountConfig(NamedTuple):
    """A validated account entry (a NamedTuple, not a dataclass: cheaper to define at every parse)."""

    name: str
    wechat_conn_id: str
    postgres_conn_id: str
    start_date: dt.date
    endpoints: tuple[str, ...]
    #: With both families configured: legacy endpoints serve dates before it, replacement ones from it on.
    cutover_date: dt.date | None = None
    schema: str = "wechat"
    max_active_runs: int = 3
    #: Hour (Beijing, on the day after the business date) until which an empty answer means "not ready".
    ready_deadline_hour: int = 12
    description: str = ""

    def active_range(self, endpoint: str) -> tuple[dt.date | None, dt.date | None]:
        """Dates (inclusive) for which ``endpoint`` is used for this account: (from, until)."""
        if self.cutover_date is None:
            return None, None
        if endpoint in FAMILIES["legacy"]:
            return None, self.cutover_date - dt.timedelta(days=1)
        return self.cutover_date, None


def _err(account: str, field_name: str, message: str) -> AccountConfigError:
    return AccountConfigError(f"accounts file: account {account!r}, field {field_name!r}: {message}")


def _as_date(account: str, field_name: str, value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise _err(account, field_name, f"expected a YYYY-MM-DD date, got {value!r}")


def _as_conn_id(account: str, field_name: str, value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 200 or not _CONN_ID_CHARS.issuperset(value):
        raise _err(account, field_name, f"expected a connection id, got {value!r}")
    return value


def parse_account(raw: Any, index: int = 0) -> AccountConfig:
    """Validate one entry of the ``accounts`` list."""
    if not isinstance(raw, dict):
        raise AccountConfigError(f"accounts file: entry #{index + 1} must be a mapping, got {type(raw).__name__}")
    name = raw.get("name")
    label = name if isinstance(name, str) else f"#{index + 1}"
    if not _is_identifier(name):
        raise _err(label, "name", "must match [a-z][a-z0-9_]* (it becomes part of the DAG id)")
    unknown = sorted(set(raw) - _KNOWN_KEYS)
    if unknown:
        raise _err(name, unknown[0], f"unknown field; known fields: {', '.join(sorted(_KNOWN_KEYS))}")
    for required in ("wechat_conn_id", "postgres_conn_id", "start_date", "endpoints"):
        if required not in raw:
            raise _err(name, required, "is required")

    start_date = _as_date(name, "start_date", raw["start_date"])
    if start_date < HISTORY_START:
        raise _err(name, "start_date", f"WeChat keeps no data before {HISTORY_START.isoformat()}")

    endpoints_raw = raw["endpoints"]
    if isinstance(endpoints_raw, str):
        endpoints_raw = [endpoints_raw]
    if not isinstance(endpoints_raw, list) or not endpoints_raw or not all(isinstance(e, str) for e in endpoints_raw):
        raise _err(name, "endpoints", "expected a non-empty list of endpoint names or 'legacy' / 'replacement'")
    try:
        endpoints = expand_endpoints(endpoints_raw)
    except UnknownEndpointError as exc:
        raise _err(name, "endpoints", str(exc.args[0])) from None

    cutover = None
    families = {f for f, names in FAMILIES.items() if set(names) & set(endpoints)}
    if "cutover_date" in raw:
        cutover = _as_date(name, "cutover_date", raw["cutover_date"])
        if families != {"legacy", "replacement"}:
            raise _err(name, "cutover_date", "only makes sense with both legacy and replacement endpoints")
        if cutover < REPLACEMENT_START:
            raise _err(name, "cutover_date", f"replacement endpoints have no data before {REPLACEMENT_START}")
    elif families == {"legacy", "replacement"}:
        raise _err(name, "cutover_date", "is required when both legacy and replacement endpoints are configured")

    schema = raw.get("schema", "wechat")
    if not _is_identifier(schema, first=_SQL_IDENT_FIRST):
        raise _err(name, "schema", f"must be a lower-case SQL identifier, got {schema!r}")
    max_active_runs = raw.get("max_active_runs", 3)
    if not isinstance(max_active_runs, int) or isinstance(max_active_runs, bool) or not 1 <= max_active_runs <= 32:
        raise _err(name, "max_active_runs", f"must be an integer 1..32, got {max_active_runs!r}")
    deadline = raw.get("ready_deadline_hour", 12)
    if not isinstance(deadline, int) or isinstance(deadline, bool) or not 0 <= deadline <= 23:
        raise _err(name, "ready_deadline_hour", f"must be an hour 0..23, got {deadline!r}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise _err(name, "description", "must be text")

    return AccountConfig(
        name=name,
        wechat_conn_id=_as_conn_id(name, "wechat_conn_id", raw["wechat_conn_id"]),
        postgres_conn_id=_as_conn_id(name, "postgres_conn_id", raw["postgres_conn_id"]),
        start_date=start_date,
        endpoints=endpoints,
        cutover_date=cutover,
        schema=schema,
        max_active_runs=max_active_runs,
        ready_deadline_hour=deadline,
        description=description,
    )


class AccountsFile(NamedTuple):
    """Result of loading the accounts file: the good accounts and one error per bad one."""

    path: Path
    accounts: list[AccountConfig]
    errors: list[AccountConfigError]


def accounts_path() -> Path:
    return Path(os.environ.get(ACCOUNTS_ENV) or DEFAULT_ACCOUNTS_FILE)


def load_accounts(path: Path | str | None = None) -> AccountsFile:
    """Load and validate the accounts file; a broken account does not hide the others.

    A file that cannot be read or parsed at all raises :class:`AccountConfigError`.
    """
    path = Path(path) if path is not None else accounts_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AccountConfigError(f"accounts file {path}: cannot read it ({exc.strerror})") from None
    try:
        data = yaml.load(text, Loader=_YAML_LOADER) or {}
    except yaml.YAMLError as exc:
        raise AccountConfigError(f"accounts file {path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("accounts", []), list):
        raise AccountConfigError(f"accounts file {path}: expected a mapping with an 'accounts' list")

    good: list[AccountConfig] = []
    errors: list[AccountConfigError] = []
    seen: set[str] = set()
    for index, raw in enumerate(data.get("accounts") or []):
        try:
            account = parse_account(raw, index)
        except AccountConfigError as exc:
            errors.append(exc)
            continue
        if account.name in seen:
            errors.append(_err(account.name, "name", "is used by more than one account"))
            continue
        seen.add(account.name)
        good.append(account)
    return AccountsFile(path=path, accounts=good, errors=errors)
