"""The accounts file: which Official Accounts to pull, with which connections and endpoints.

Parsed at DAG-parse time, so it must be cheap (one small YAML file, no network, no DB) and
forgiving: one broken account yields an :class:`AccountConfigError` for that account only
(naming the account, the field and the problem), and the DAG file turns it into a DAG of
its own that says so, while the other accounts' DAGs still load.

"Any value of one account" includes values YAML itself cannot build: a plain
``start_date: 2026-02-30`` is a YAML timestamp, and PyYAML builds timestamps (and
``!!binary``, ``!!int``... values) while loading, so one impossible date used to fail the
whole file with a traceback naming no account. The file is therefore only *composed*
into YAML nodes (syntax) in one go; each account's fields are then built one by one, and
a value that cannot be built is that account's error. Only a file that is not YAML, or
not a mapping with an ``accounts`` list, is one error for the whole file.

An entry's fields are checked by a table (:data:`_FIELDS`: each field's rule, one small
function per kind of value) that :func:`parse_account` applies in one loop; which fields are
required and what the others default to is :class:`AccountConfig`'s own declaration.
"""

import datetime as dt
import os
import string
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from wechat_datacube.endpoints import (
    ARTICLE_GENERATIONS,
    FAMILIES,
    HISTORY_START,
    REPLACEMENT_START,
    UnknownEndpointError,
    expand_endpoints,
)
from wechat_datacube.errors import ConfigError

if TYPE_CHECKING:  # imported when an account has alert settings: most parses need none of it
    from wechat_datacube.alerts.targets import AlertTargets, NotifierSpec  # noqa: F401

#: libyaml's safe loader when the wheel has it: parsing runs at every DAG-file parse.
#: Used to compose the file into nodes; values are built by :class:`_ValueBuilder`.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NULL_TAG = "tag:yaml.org,2002:null"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"
#: Names the accounts file; when unset, :func:`default_accounts_file` is used.
ACCOUNTS_ENV = "WECHAT_DATACUBE_ACCOUNTS"
#: What a field's rule gets for a field the entry leaves out, when the rule judges that itself.
_UNWRITTEN = object()

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


class AccountConfigError(ConfigError):
    """One account (or the file) is misconfigured; the message names the account and the field.

    The same facts as attributes, for the DAG file (which gives each broken entry a DAG of
    its own) and tests: ``account`` is the entry's name when it is a usable one (else
    None), ``field`` the field at fault, ``entry`` the 1-based position in the
    ``accounts`` list. All three are None for an error of the file as a whole.
    """

    def __init__(
        self, message: str, *, account: str | None = None, field: str | None = None, entry: int | None = None
    ) -> None:
        super().__init__(message)
        # Set after the message is rendered: the message names them already, in its own words.
        self.account = account
        self.field = field
        self.entry = entry


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
    #: Airflow connections (type ``wecom_robot``) of the WeCom group robots that get this account's alerts.
    alert_conn_ids: tuple[str, ...] = ()
    #: Other Airflow notifiers (Slack, SMTP, ...) that get the same alerts.
    #: (NotifierSpec items; typed loosely so that parsing imports no alert module)
    alert_notifiers: tuple[Any, ...] = ()
    #: Beijing hour by which the daily run must have finished, else an alert (None: no deadline alert).
    alert_deadline_hour: int | None = 12
    #: After each daily run, one message with the day's headline figures and freshness.
    daily_report: bool = False

    @property
    def alert_targets(self) -> "AlertTargets":
        """Where this account's alerts go; the outbox (robot rate limit) lives in its data database."""
        from wechat_datacube.alerts.targets import AlertTargets

        return AlertTargets(self.alert_conn_ids, self.alert_notifiers, self.postgres_conn_id)

    def active_range(self, endpoint: str) -> tuple[dt.date | None, dt.date | None]:
        """Dates (inclusive) for which ``endpoint`` is used for this account: (from, until)."""
        if self.cutover_date is None:
            return None, None
        if endpoint in FAMILIES["legacy"]:
            return None, self.cutover_date - dt.timedelta(days=1)
        if endpoint in FAMILIES["replacement"]:
            return self.cutover_date, None
        return None, None  # user, message, interface: not part of the article cutover


def _err(account: str, field_name: str, message: str, entry: int | None = None) -> AccountConfigError:
    """An error of one entry; ``account`` is its name, or ``#<n>`` when it has no usable one."""
    return AccountConfigError(
        f"accounts file: account {account!r}, field {field_name!r}: {message}",
        account=account if _is_identifier(account) else None,
        field=field_name,
        entry=entry,
    )


class _Invalid(Exception):
    """A field's value breaks its rule; the message is the problem (the loop adds account and field)."""


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            reason = str(exc)
            if not reason.startswith("Invalid isoformat string"):  # e.g. "day is out of range for month"
                raise _Invalid(f"{value!r} is not a valid date ({reason})") from None
    raise _Invalid(f"expected a YYYY-MM-DD date, got {value!r}")


# --- the rules, one per kind of field: (value as written, fields read before it) -> value ---


def _conn_id(value: Any, _read: Mapping[str, Any]) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 200 or not _CONN_ID_CHARS.issuperset(value):
        raise _Invalid(f"expected a connection id, got {value!r}")
    return value


def _start_date(value: Any, _read: Mapping[str, Any]) -> dt.date:
    start = _as_date(value)
    if start < HISTORY_START:
        raise _Invalid(f"WeChat keeps no data before {HISTORY_START.isoformat()}")
    return start


def _endpoints(value: Any, _read: Mapping[str, Any]) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(e, str) for e in names):
        raise _Invalid(f"expected a non-empty list of endpoint names or family keywords ({', '.join(FAMILIES)})")
    try:
        return expand_endpoints(names)
    except UnknownEndpointError as exc:
        raise _Invalid(str(exc.args[0])) from None


def _cutover_date(value: Any, read: Mapping[str, Any]) -> dt.date | None:
    """Required exactly when both families are configured (legacy before it, replacement from it)."""
    both = all(set(FAMILIES[family]) & set(read["endpoints"]) for family in ARTICLE_GENERATIONS)
    if value is _UNWRITTEN:
        if both:
            raise _Invalid("is required when both legacy and replacement endpoints are configured")
        return None
    cutover = _as_date(value)
    if not both:
        raise _Invalid("only makes sense with both legacy and replacement endpoints")
    if cutover < REPLACEMENT_START:
        raise _Invalid(f"replacement endpoints have no data before {REPLACEMENT_START}")
    return cutover


def _schema(value: Any, _read: Mapping[str, Any]) -> str:
    if not _is_identifier(value, first=_SQL_IDENT_FIRST):
        raise _Invalid(f"must be a lower-case SQL identifier, got {value!r}")
    return value


def _int_between(low: int, high: int, what: str) -> Callable[[Any, Mapping[str, Any]], int]:
    """A rule for a whole number in ``low..high`` (a YAML ``true`` is no number)."""

    def rule(value: Any, _read: Mapping[str, Any]) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise _Invalid(f"must be {what} {low}..{high}, got {value!r}")
        return value

    return rule


def _conn_ids(value: Any, read: Mapping[str, Any]) -> tuple[str, ...]:
    """A list of connection ids (one id alone is accepted as a list of one), each named once."""
    ids = [value] if isinstance(value, str) else value
    if not isinstance(ids, list | tuple):
        raise _Invalid(f"expected a list of connection ids, got {value!r}")
    checked = tuple(_conn_id(conn_id, read) for conn_id in ids)
    if len(set(checked)) < len(checked):
        raise _Invalid(f"names a connection more than once: {list(checked)}")
    return checked


def _notifiers(value: Any, _read: Mapping[str, Any]) -> "tuple[NotifierSpec, ...]":
    """Other Airflow notifiers: ``{notifier: <dotted class path>, message_field: text, kwargs: {...}}`` each.

    Only the shape is checked here (DAG parsing imports no notifier); a class that cannot be
    imported is reported in the task log when an alert is sent.
    """
    if value == ():  # the default: no notifier, nothing to import
        return ()
    from wechat_datacube.alerts.targets import NotifierSpec

    if not isinstance(value, list | tuple):
        raise _Invalid(f"expected a list of notifiers ({{notifier: dotted.path.Class, ...}}), got {value!r}")
    specs = []
    for index, item in enumerate(value, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("notifier"), str):
            raise _Invalid(f"notifier #{index} must be a mapping with 'notifier: <dotted class path>'")
        unknown = sorted(set(item) - {"notifier", "message_field", "kwargs"})
        if unknown:
            raise _Invalid(f"notifier #{index}: unknown key {unknown[0]!r} (known: notifier, message_field, kwargs)")
        path, field, kwargs = item["notifier"], item.get("message_field", "text"), item.get("kwargs") or {}
        parts = path.split(".")
        if len(parts) < 2 or not all(part.isidentifier() for part in parts):
            raise _Invalid(f"notifier #{index}: {path!r} is not a dotted class path (package.module.Class)")
        if not isinstance(field, str) or not field.isidentifier():
            raise _Invalid(f"notifier #{index}: message_field must be a keyword name, got {field!r}")
        if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            raise _Invalid(f"notifier #{index}: kwargs must be a mapping of keyword arguments")
        specs.append(NotifierSpec(path, field, kwargs))
    return tuple(specs)


def _optional_hour(value: Any, read: Mapping[str, Any]) -> int | None:
    return None if value is None else _int_between(0, 23, "an hour (or null for none)")(value, read)


def _flag(value: Any, _read: Mapping[str, Any]) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"must be true or false, got {value!r}")
    return value


def _daily_report(value: Any, read: Mapping[str, Any]) -> bool:
    """A flag; true needs somewhere to send the report."""
    wanted = _flag(value, read)
    if wanted and not (read["alert_conn_ids"] or read["alert_notifiers"]):
        raise _Invalid("needs alert_conn_ids or alert_notifiers: the report is a message sent there")
    return wanted


def _text(value: Any, _read: Mapping[str, Any]) -> str:
    if not isinstance(value, str):
        raise _Invalid("must be text")
    return value


class _Field(NamedTuple):
    """One row of the table: a field and the rule its value must pass."""

    name: str
    #: (value as written, the fields read before it) -> the AccountConfig value; raises _Invalid.
    rule: Callable[[Any, Mapping[str, Any]], Any]
    #: Whether the rule also judges the field's absence (it gets _UNWRITTEN) rather than
    #: checking AccountConfig's default in its place.
    judges_absence: bool = False


#: AccountConfig is the other half of the table: a field it gives no default must be written
#: (a missing one is reported, in its order, before any value is read); the others default to its
#: defaults, which their rules check like written values.
_DEFAULTS: dict[str, Any] = AccountConfig._field_defaults
_REQUIRED_FIELDS = tuple(name for name in AccountConfig._fields if name != "name" and name not in _DEFAULTS)
#: Every field but ``name`` (which labels the errors), in the order they are checked: the first
#: broken one is the entry's error (connection ids last, as before there was a table).
_FIELDS = (
    _Field("start_date", _start_date),
    _Field("endpoints", _endpoints),
    _Field("cutover_date", _cutover_date, judges_absence=True),  # after endpoints: its rule reads them
    _Field("schema", _schema),
    _Field("max_active_runs", _int_between(1, 32, "an integer")),
    _Field("ready_deadline_hour", _int_between(0, 23, "an hour")),
    _Field("description", _text),
    _Field("wechat_conn_id", _conn_id),
    _Field("postgres_conn_id", _conn_id),
    _Field("alert_conn_ids", _conn_ids),
    _Field("alert_notifiers", _notifiers),
    _Field("alert_deadline_hour", _optional_hour),
    _Field("daily_report", _daily_report),  # after the alert targets: its rule reads them
)
_KNOWN_KEYS = frozenset({"name", *(f.name for f in _FIELDS)})


def _entry_name(raw: Any, index: int) -> str:
    """The entry's name, after checking that the entry is a mapping and the name a usable one."""
    if not isinstance(raw, dict):
        raise AccountConfigError(
            f"accounts file: entry #{index + 1} must be a mapping, got {type(raw).__name__}", entry=index + 1
        )
    name = raw.get("name")
    if not _is_identifier(name):
        label = name if isinstance(name, str) else f"#{index + 1}"
        raise _err(label, "name", "must match [a-z][a-z0-9_]* (it becomes part of the DAG id)")
    return name


def _check_keys(raw: Mapping[str, Any], name: str) -> None:
    """No field the table does not know; every required one written (before any value is read)."""
    unknown = sorted(set(raw) - _KNOWN_KEYS)
    if unknown:
        raise _err(name, unknown[0], f"unknown field; known fields: {', '.join(sorted(_KNOWN_KEYS))}")
    for field in _REQUIRED_FIELDS:
        if field not in raw:
            raise _err(name, field, "is required")


def parse_account(raw: Any, index: int = 0) -> AccountConfig:
    """Validate one entry of the ``accounts`` list: the table's rules, field by field."""
    name = _entry_name(raw, index)
    _check_keys(raw, name)
    read: dict[str, Any] = {"name": name}
    for field in _FIELDS:
        try:
            unwritten = _UNWRITTEN if field.judges_absence else _DEFAULTS.get(field.name)
            read[field.name] = field.rule(raw.get(field.name, unwritten), read)
        except _Invalid as exc:
            raise _err(name, field.name, str(exc)) from None
    return AccountConfig(**read)


class AccountsFile(NamedTuple):
    """Result of loading the accounts file: the good accounts and one error per bad one."""

    path: Path
    accounts: list[AccountConfig]
    errors: list[AccountConfigError]


def default_accounts_file() -> Path:
    """``include/accounts.yaml`` beside Airflow's DAGs folder (``[core] dags_folder``/../include).

    The layout of an Airflow project (``dags/`` and ``include/`` side by side), found through
    Airflow's configuration so that it works for an installed wheel as for this repository
    (whose tests and launcher set ``dags_folder`` to ``dags/``). Airflow's configuration is
    imported here rather than at module level: every process that reads the file under
    Airflow (DAG processor, api-server, task) has imported it already, so a DAG-file parse
    pays nothing, and this module stays importable without Airflow, where the file is
    ``$AIRFLOW_HOME/include/accounts.yaml`` (Airflow's default home: ``~/airflow``).
    """
    try:
        from airflow.configuration import conf
    except ImportError:
        home = os.environ.get("AIRFLOW_HOME") or "~/airflow"
        return Path(home).expanduser() / "include" / "accounts.yaml"
    return Path(conf.get("core", "dags_folder")).expanduser().parent / "include" / "accounts.yaml"


def accounts_path() -> Path:
    """The accounts file in use: ``$WECHAT_DATACUBE_ACCOUNTS``, else :func:`default_accounts_file`."""
    return Path(os.environ.get(ACCOUNTS_ENV) or default_accounts_file())


# --- reading the YAML: the file composed at once, each value built on its own -----------


class _ValueBuilder(SafeConstructor):
    """Builds one YAML node into a Python value (what ``yaml.safe_load`` would give for it)."""

    def build(self, node: Node) -> Any:
        try:
            return self.construct_document(node)
        finally:  # a failed build leaves half-built state behind: the next value starts clean
            self.constructed_objects = {}
            self.recursive_objects = {}
            self.state_generators = []


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _kind(node: Node) -> str:
    """What a node is, in words, for messages."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL_TAG:
        return "nothing"
    text = node.value if len(node.value) <= 60 else node.value[:57] + "..."
    return f"the value {text!r}"


def _problem(exc: BaseException) -> str:
    """A YAML (or other) error in one line: context, problem and where, without the source excerpt."""
    problem = getattr(exc, "problem", None)
    if problem:
        context = getattr(exc, "context", None)
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return f"{context + ': ' if context else ''}{problem}{where}"
    text = " ".join(str(exc).split()).replace('in "<unicode string>", ', "at ")
    return text or type(exc).__name__


def _unbuildable(node: Node, exc: Exception) -> str:
    """Why the value of ``node`` could not be built (an impossible date, a bad tag...)."""
    text = repr(node.value) if isinstance(node, ScalarNode) else _kind(node)
    if node.tag == _TIMESTAMP_TAG:
        return f"{text} (line {_line(node)}) is not a valid date ({_problem(exc)})"
    return f"YAML cannot read {text} (line {_line(node)}): {_problem(exc)}"


def _file_error(path: Path, message: str) -> AccountConfigError:
    return AccountConfigError(f"accounts file {path}: {message}")


def _account_nodes(path: Path, text: str) -> list[Node]:
    """The nodes of the ``accounts`` list; a file that is not YAML or not shaped so is one error."""
    loader = _YAML_LOADER(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _file_error(path, f"not valid YAML ({_problem(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - libyaml on pathological input: still one error naming the file
        raise _file_error(path, f"cannot be read as YAML ({type(exc).__name__}: {_problem(exc)})") from None
    finally:
        loader.dispose()
    shape = "expected a mapping with an 'accounts' list"
    if root is None:  # an empty file (or only comments): no accounts
        return []
    if not isinstance(root, MappingNode):
        raise _file_error(path, f"{shape}, got {_kind(root)}")
    keys = [k.value if isinstance(k, ScalarNode) else _kind(k) for k, _ in root.value]
    found = [value for key, value in root.value if isinstance(key, ScalarNode) and key.value == "accounts"]
    if not found:
        if not keys:
            return []
        raise _file_error(path, f"{shape}, got a mapping with the keys {', '.join(map(repr, keys))}")
    if len(found) > 1:
        raise _file_error(path, f"has {len(found)} 'accounts' keys; keep one list")
    node = found[0]
    if isinstance(node, ScalarNode) and node.tag == _NULL_TAG:  # "accounts:" with nothing yet
        return []
    if not isinstance(node, SequenceNode):
        raise _file_error(path, f"'accounts' must be a list (- name: ...), got {_kind(node)} (line {_line(node)})")
    return list(node.value)


def _entry_fields(builder: _ValueBuilder, node: Node, entry: int) -> dict[str, Any]:
    """The fields of one entry, each value built on its own; the first that cannot be is this entry's error."""
    if not isinstance(node, MappingNode):
        raise AccountConfigError(
            f"accounts file: entry #{entry} (line {_line(node)}) must be a mapping of fields (name: ..., "
            f"wechat_conn_id: ...), got {_kind(node)}",
            entry=entry,
        )
    # A key written twice is an error (YAML forbids it; PyYAML would keep the last one
    # silently); a key also brought in by a merge (<<: *defaults) overrides it, as in YAML.
    seen: set[str] = set()
    problems: list[tuple[str, str]] = []  # (field, problem), in file order
    for key_node, _ in node.value:
        if isinstance(key_node, ScalarNode) and key_node.tag != _MERGE_TAG:
            if key_node.value in seen:
                problems.append((key_node.value, f"is given more than once (again on line {_line(key_node)})"))
            seen.add(key_node.value)
    try:
        builder.flatten_mapping(node)  # merge keys, as safe_load applies them: merged fields first
    except Exception as exc:  # noqa: BLE001 - any YAML problem of this entry is this entry's error
        raise AccountConfigError(
            f"accounts file: entry #{entry} (line {_line(node)}): its merge key (<<) cannot be applied: "
            f"{_problem(exc)}",
            entry=entry,
        ) from None
    fields: dict[str, Any] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            problems.append((f"<{_kind(key_node)}>", f"a field name must be text (line {_line(key_node)})"))
            continue
        key = key_node.value
        try:
            fields[key] = builder.build(value_node)
        except Exception as exc:  # noqa: BLE001 - an unbuildable value is this field's error, whatever it is
            fields.pop(key, None)  # not a merged default in its place
            problems.append((key, _unbuildable(value_node, exc)))
    name = fields.get("name")
    label = name if _is_identifier(name) else f"#{entry}"
    for field, problem in problems:
        if field == "name" or _is_identifier(name):
            raise _err(label, field, problem, entry)
    if problems:  # the name is missing or unusable: say so first (it decides the DAG id)
        return {k: v for k, v in fields.items() if k == "name"}
    return fields


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _file_error(path, f"cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise _file_error(
            path, f"not a text (UTF-8) file (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "is it really the accounts file?"
        ) from None


def load_accounts(path: Path | str | None = None) -> AccountsFile:
    """Load and validate the accounts file; a broken account does not hide the others.

    Any value of an account that cannot be read or is not valid is an error of that
    account (naming it and the field). A file that cannot be read, is not YAML, or is not
    a mapping with an ``accounts`` list raises one :class:`AccountConfigError` naming the file.
    """
    path = Path(path) if path is not None else accounts_path()
    nodes = _account_nodes(path, _read_text(path))
    builder = _ValueBuilder()
    good: list[AccountConfig] = []
    errors: list[AccountConfigError] = []
    first_entry: dict[str, int] = {}
    for index, node in enumerate(nodes):
        entry = index + 1
        try:
            account = parse_account(_entry_fields(builder, node, entry), index)
        except AccountConfigError as exc:
            if exc.entry is None:
                exc.entry = entry
            errors.append(exc)
            continue
        except Exception as exc:  # noqa: BLE001 - a value nobody foresaw: still this entry's error only
            errors.append(
                AccountConfigError(
                    f"accounts file: entry #{entry} (line {_line(node)}) cannot be read: "
                    f"{type(exc).__name__}: {_problem(exc)}",
                    entry=entry,
                )
            )
            continue
        if account.name in first_entry:
            errors.append(
                _err(account.name, "name", f"is used by more than one account (entries #{first_entry[account.name]} "
                     f"and #{entry}); entry #{entry} is skipped", entry)
            )
            continue
        first_entry[account.name] = entry
        good.append(account)
    return AccountsFile(path=path, accounts=good, errors=errors)
