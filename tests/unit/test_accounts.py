"""The accounts file: validation names the account and field; one bad account spares the rest."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from wechat_datacube.accounts import (
    ACCOUNTS_ENV,
    AccountConfig,
    AccountConfigError,
    accounts_path,
    default_accounts_file,
    load_accounts,
    parse_account,
)
from wechat_datacube.endpoints import LEGACY, REPLACEMENT

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"

GOOD = {
    "name": "shop",
    "wechat_conn_id": "wechat_shop",
    "postgres_conn_id": "wechat_pg",
    "start_date": "2024-01-01",
    "endpoints": ["legacy"],
}


def test_family_keyword_expands_to_the_registry_family() -> None:
    account = parse_account(GOOD)
    assert account.endpoints == LEGACY
    assert account.start_date == dt.date(2024, 1, 1)


def test_explicit_endpoint_list_keeps_order_and_drops_repeats() -> None:
    account = parse_account({**GOOD, "endpoints": ["getusershare", "getuserread", "getusershare"]})
    assert account.endpoints == ("getusershare", "getuserread")


def test_start_date_before_history_is_refused_naming_account_and_field() -> None:
    with pytest.raises(AccountConfigError, match=r"'shop'.*'start_date'.*2014-12-01"):
        parse_account({**GOOD, "start_date": "2014-11-30"})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoints": ["getnothing"]}, "endpoints"),
        ({"endpoints": []}, "endpoints"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"schema": "Drop Table"}, "schema"),
        ({"max_active_runs": 0}, "max_active_runs"),
        ({"colour": "green"}, "colour"),
        ({"wechat_conn_id": "has space"}, "wechat_conn_id"),
        ({"wechat_conn_id": "x" * 201}, "wechat_conn_id"),
        ({"postgres_conn_id": ""}, "postgres_conn_id"),
        ({"schema": "9stats"}, "schema"),
        ({"schema": ""}, "schema"),
    ],
)
def test_bad_field_error_names_account_and_field(change: dict, field: str) -> None:
    with pytest.raises(AccountConfigError, match=rf"'shop'.*'{field}'"):
        parse_account({**GOOD, **change})


@pytest.mark.parametrize("name", ["Shop", "9shop", "shop\n", "shop-1", "s" * 64, "", 7])
def test_bad_account_name_is_refused_naming_the_field(name: object) -> None:
    with pytest.raises(AccountConfigError, match=r"field 'name': must match"):
        parse_account({**GOOD, "name": name})


@pytest.mark.parametrize(
    "change",
    [
        {"name": "s" * 63},
        {"name": "shop_2"},
        {"schema": "_stats"},
        {"wechat_conn_id": "WeChat.main-1"},
        {"postgres_conn_id": "x" * 200},
    ],
)
def test_names_at_the_edges_of_the_rules_are_accepted(change: dict) -> None:
    account = parse_account({**GOOD, **change})
    for key, value in change.items():
        assert getattr(account, key) == value


def test_missing_required_field_is_named() -> None:
    raw = dict(GOOD)
    del raw["postgres_conn_id"]
    with pytest.raises(AccountConfigError, match=r"'postgres_conn_id'.*required"):
        parse_account(raw)


def test_both_families_need_a_cutover_and_split_dates_at_it() -> None:
    with pytest.raises(AccountConfigError, match="cutover_date"):
        parse_account({**GOOD, "endpoints": ["legacy", "replacement"]})
    account = parse_account({**GOOD, "endpoints": ["legacy", "replacement"], "cutover_date": "2026-01-01"})
    assert set(account.endpoints) == set(LEGACY) | set(REPLACEMENT)
    assert account.active_range("getusershare") == (None, dt.date(2025, 12, 31))
    assert account.active_range("getarticleread") == (dt.date(2026, 1, 1), None)


def test_the_user_message_and_interface_families_stand_beside_the_article_cutover() -> None:
    """They need no cutover of their own, and a cutover between legacy and replacement does not clip them."""
    alone = parse_account({**GOOD, "endpoints": ["user", "message", "interface"]})
    assert alone.cutover_date is None and len(alone.endpoints) == 11
    with pytest.raises(AccountConfigError, match="only makes sense with both legacy and replacement"):
        parse_account({**GOOD, "endpoints": ["legacy", "user"], "cutover_date": "2026-01-01"})
    with pytest.raises(AccountConfigError, match="is required when both"):
        parse_account({**GOOD, "endpoints": ["legacy", "replacement", "user"]})
    account = parse_account(
        {**GOOD, "endpoints": ["legacy", "replacement", "user", "interface"], "cutover_date": "2026-01-01"}
    )
    assert account.active_range("getusersummary") == (None, None)
    assert account.active_range("getinterfacesummaryhour") == (None, None)
    assert account.active_range("getusershare") == (None, dt.date(2025, 12, 31))


def test_one_broken_account_does_not_hide_the_others(tmp_path: Path) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text(
        "accounts:\n"
        "  - {name: good, wechat_conn_id: a, postgres_conn_id: b, start_date: 2020-01-01, endpoints: [legacy]}\n"
        "  - {name: broken, wechat_conn_id: a, postgres_conn_id: b, start_date: 2010-01-01, endpoints: [legacy]}\n"
        "  - {name: good, wechat_conn_id: a, postgres_conn_id: b, start_date: 2020-01-01, endpoints: [legacy]}\n"
    )
    loaded = load_accounts(path)
    assert [a.name for a in loaded.accounts] == ["good"]
    messages = [str(e) for e in loaded.errors]
    assert any("'broken'" in m and "start_date" in m for m in messages)
    assert any("more than one account" in m for m in messages)


def test_unparseable_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text("accounts: [unclosed\n")
    with pytest.raises(AccountConfigError, match="not valid YAML"):
        load_accounts(path)
    with pytest.raises(AccountConfigError, match="cannot read"):
        load_accounts(tmp_path / "missing.yaml")


# --- any value of one account is that account's error; the file as a whole is one error ---

GOOD_LINE = "  - {name: good, wechat_conn_id: a, postgres_conn_id: b, start_date: 2020-01-01, endpoints: [legacy]}\n"
CONNS = "wechat_conn_id: a, postgres_conn_id: b"
REST = f"{CONNS}, endpoints: [legacy]"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "accounts.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("fields", "field", "problem"),
    [
        # YAML's timestamp resolver builds this date while loading: it used to fail the whole file.
        (f"start_date: 2026-02-30, {REST}", "start_date", "day is out of range for month"),
        (f"start_date: 2026-02-30 10:00:00, {REST}", "start_date", "not a valid date"),
        (f"start_date: '2026-02-30', {REST}", "start_date", "day is out of range for month"),
        (f"start_date: !!timestamp soon, {REST}", "start_date", "not a valid date"),
        (
            f"start_date: 2025-01-01, cutover_date: 2026-13-01, {CONNS}, endpoints: [legacy, replacement]",
            "cutover_date",
            "not a valid date",
        ),
        (f"start_date: 2020-01-01, max_active_runs: !!int many, {REST}", "max_active_runs", "'many'"),
        (f"start_date: 2020-01-01, schema: !!float x, {REST}", "schema", "YAML cannot read"),
        (f"start_date: 2020-01-01, description: !!python/name:os.system '', {REST}", "description", "constructor"),
        (f"start_date: 2020-01-01, description: !!binary 'x y', {REST}", "description", "base64"),
        (f"start_date: 2020-01-01, description: !!binary aGk=, {REST}", "description", "must be text"),
        (f"start_date: 2020-01-01, endpoints: !!set {{legacy}}, {CONNS}", "endpoints", "non-empty list"),
        (f"start_date: 2020-01-01, start_date: 2020-01-02, {REST}", "start_date", "more than once"),
    ],
)
def test_any_value_of_one_account_is_an_error_of_that_account_and_field_only(
    tmp_path: Path, fields: str, field: str, problem: str
) -> None:
    text = "accounts:\n" + GOOD_LINE + f"  - {{name: bad, {fields}}}\n" + GOOD_LINE.replace("good", "also_good")
    loaded = load_accounts(write(tmp_path, text))
    assert [a.name for a in loaded.accounts] == ["good", "also_good"]
    (error,) = loaded.errors
    assert (error.account, error.field, error.entry) == ("bad", field, 2)
    message = str(error)
    assert f"account 'bad', field '{field}'" in message and problem in message, message
    assert "\n" not in message


def test_an_entry_without_a_usable_name_is_named_by_its_position(tmp_path: Path) -> None:
    loaded = load_accounts(
        write(
            tmp_path,
            "accounts:\n" + GOOD_LINE
            + f"  - {{name: 2026-02-30, start_date: 2020-01-01, {REST}}}\n"  # a "date" that is no date
            + f"  - {{name: Shop, start_date: 2026-02-30, {REST}}}\n"
            + "  - just a line of text\n"
            + f"  - {{name: good, start_date: 2021-01-01, {REST}}}\n",
        )
    )
    assert [a.name for a in loaded.accounts] == ["good"]
    by_entry = {e.entry: e for e in loaded.errors}
    assert sorted(by_entry) == [2, 3, 4, 5]
    assert (by_entry[2].account, by_entry[2].field) == (None, "name")
    assert "day is out of range for month" in str(by_entry[2])
    assert (by_entry[3].account, by_entry[3].field) == (None, "name")  # the name is reported before the date
    assert "entry #4" in str(by_entry[4]) and "must be a mapping" in str(by_entry[4])
    assert (by_entry[5].account, by_entry[5].field) == ("good", "name")
    assert "entries #1 and #5" in str(by_entry[5])


def test_merge_keys_supply_defaults_and_fields_override_them(tmp_path: Path) -> None:
    loaded = load_accounts(
        write(
            tmp_path,
            "defaults: &defaults {wechat_conn_id: a, postgres_conn_id: b, start_date: 2020-01-01, endpoints: [legacy]}\n"
            "accounts:\n"
            "  - {<<: *defaults, name: one}\n"
            "  - {<<: *defaults, name: two, start_date: 2021-05-01, max_active_runs: 1}\n",
        )
    )
    assert loaded.errors == []
    assert [(a.name, a.start_date, a.max_active_runs) for a in loaded.accounts] == [
        ("one", dt.date(2020, 1, 1), 3),
        ("two", dt.date(2021, 5, 1), 1),
    ]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\xff\xfe\x00\x01 a binary file", "not a text (UTF-8) file"),
        (b"accounts: [unclosed\n", "not valid YAML"),
        (b"accounts:\n  - {name: a\n\tb: c}\n", "not valid YAML"),
        (b"a\x00b\n", "not valid YAML"),
        (b"[" * 20000, "not valid YAML"),
        (b"accounts: []\n---\naccounts: []\n", "not valid YAML"),
        (b"accounts: *nowhere\n", "not valid YAML"),
        (b"just some text\n", "expected a mapping with an 'accounts' list"),
        (b"- name: shop\n", "expected a mapping with an 'accounts' list, got a list"),
        (b"acounts:\n  - name: shop\n", "got a mapping with the keys 'acounts'"),
        (b"accounts:\n  shop: {start_date: 2026-01-01}\n", "'accounts' must be a list"),
        (b"accounts: 2026-02-30\n", "'accounts' must be a list"),
    ],
)
def test_a_file_that_is_no_accounts_file_is_one_error_naming_it(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_bytes(content)
    with pytest.raises(AccountConfigError) as caught:
        load_accounts(path)
    message = str(caught.value)
    assert message.startswith(f"accounts file {path}: ") and problem in message, message
    assert "\n" not in message and "Traceback" not in message
    assert (caught.value.account, caught.value.field, caught.value.entry) == (None, None, None)


@pytest.mark.parametrize("content", ["", "# only a comment\n", "accounts:\n", "accounts: []\n"])
def test_a_file_without_accounts_yet_is_no_error(tmp_path: Path, content: str) -> None:
    loaded = load_accounts(write(tmp_path, content))
    assert (loaded.accounts, loaded.errors) == ([], [])


# --- the table of fields: each kind of rule, and what it says when tripped -----------------

BOTH = {"endpoints": ["legacy", "replacement"]}


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"wechat_conn_id": 7}, "wechat_conn_id", "expected a connection id, got 7"),
        ({"postgres_conn_id": "pg db"}, "postgres_conn_id", "expected a connection id, got 'pg db'"),
        ({"start_date": "2026-02-30"}, "start_date", "'2026-02-30' is not a valid date (day is out of range for month)"),
        ({"start_date": 20240101}, "start_date", "expected a YYYY-MM-DD date, got 20240101"),
        ({"start_date": "2014-11-30"}, "start_date", "WeChat keeps no data before 2014-12-01"),
        ({"endpoints": [1]}, "endpoints", "expected a non-empty list of endpoint names or family keywords (legacy, replacement, user, message, interface)"),
        ({"endpoints": ["getnothing"]}, "endpoints", "unknown datacube endpoint 'getnothing'; known: "),
        (BOTH, "cutover_date", "is required when both legacy and replacement endpoints are configured"),
        ({"cutover_date": "2026-01-01"}, "cutover_date", "only makes sense with both legacy and replacement endpoints"),
        ({**BOTH, "cutover_date": "2025-01-01"}, "cutover_date", "replacement endpoints have no data before 2025-11-01"),
        ({**BOTH, "cutover_date": None}, "cutover_date", "expected a YYYY-MM-DD date, got None"),
        ({"schema": "Drop Table"}, "schema", "must be a lower-case SQL identifier, got 'Drop Table'"),
        ({"max_active_runs": 33}, "max_active_runs", "must be an integer 1..32, got 33"),
        ({"max_active_runs": True}, "max_active_runs", "must be an integer 1..32, got True"),
        ({"ready_deadline_hour": 24}, "ready_deadline_hour", "must be an hour 0..23, got 24"),
        ({"ready_deadline_hour": -1}, "ready_deadline_hour", "must be an hour 0..23, got -1"),
        ({"description": 5}, "description", "must be text"),
        ({"alert_conn_ids": {"a": 1}}, "alert_conn_ids", "expected a list of connection ids, got {'a': 1}"),
        ({"alert_conn_ids": ["ok", "not ok"]}, "alert_conn_ids", "expected a connection id, got 'not ok'"),
        ({"alert_conn_ids": ["robot", "robot"]}, "alert_conn_ids", "names a connection more than once"),
        ({"alert_notifiers": "slack"}, "alert_notifiers", "expected a list of notifiers"),
        ({"alert_notifiers": [{"kwargs": {}}]}, "alert_notifiers", "notifier #1 must be a mapping with 'notifier: "),
        ({"alert_notifiers": [{"notifier": "Slack"}]}, "alert_notifiers", "notifier #1: 'Slack' is not a dotted"),
        ({"alert_notifiers": [{"notifier": "a.B", "channel": "#x"}]}, "alert_notifiers",
         "notifier #1: unknown key 'channel'"),
        ({"alert_notifiers": [{"notifier": "a.B", "message_field": "the text"}]}, "alert_notifiers",
         "notifier #1: message_field must be a keyword name"),
        ({"alert_notifiers": [{"notifier": "a.B", "kwargs": ["x"]}]}, "alert_notifiers",
         "notifier #1: kwargs must be a mapping"),
        ({"alert_deadline_hour": 24}, "alert_deadline_hour", "must be an hour (or null for none) 0..23, got 24"),
        ({"daily_report": "yes"}, "daily_report", "must be true or false, got 'yes'"),
        ({"daily_report": True}, "daily_report", "needs alert_conn_ids or alert_notifiers"),
    ],
)
def test_each_rule_of_the_table_names_the_field_and_the_problem(change: dict, field: str, problem: str) -> None:
    with pytest.raises(AccountConfigError) as caught:
        parse_account({**GOOD, **change})
    assert str(caught.value).startswith(f"accounts file: account 'shop', field '{field}': {problem}")
    assert (caught.value.account, caught.value.field) == ("shop", field)


def test_an_entry_that_is_no_mapping_is_named_by_its_position() -> None:
    with pytest.raises(AccountConfigError, match=r"^accounts file: entry #3 must be a mapping, got list$") as caught:
        parse_account(["shop"], index=2)
    assert caught.value.entry == 3


def test_a_missing_field_is_reported_before_a_bad_value_and_values_in_the_tables_order() -> None:
    raw = {**GOOD, "schema": "Bad", "wechat_conn_id": "has space"}
    del raw["endpoints"], raw["postgres_conn_id"]
    with pytest.raises(AccountConfigError, match=r"field 'postgres_conn_id': is required"):
        parse_account(raw)
    with pytest.raises(AccountConfigError, match=r"field 'schema'"):  # connection ids are checked last
        parse_account({**GOOD, "schema": "Bad", "wechat_conn_id": "has space"})


def test_fields_left_out_take_account_configs_defaults() -> None:
    account = parse_account({**GOOD, "endpoints": "legacy"})  # one name or family may be written as a string
    assert account == AccountConfig(
        name="shop", wechat_conn_id="wechat_shop", postgres_conn_id="wechat_pg", start_date=dt.date(2024, 1, 1),
        endpoints=LEGACY,
    )
    assert (account.cutover_date, account.schema, account.max_active_runs, account.ready_deadline_hour) == (
        None, "wechat", 3, 12)


def test_alert_settings_are_read_into_the_accounts_targets() -> None:
    account = parse_account({
        **GOOD, "alert_conn_ids": "wecom_ops", "alert_deadline_hour": None, "daily_report": True,
        "alert_notifiers": [{"notifier": "airflow.providers.slack.notifications.slack_webhook.SlackWebhookNotifier",
                             "kwargs": {"slack_webhook_conn_id": "slack_data"}}],
    })  # fmt: skip
    assert account.alert_conn_ids == ("wecom_ops",) and account.alert_deadline_hour is None and account.daily_report
    targets = account.alert_targets
    assert targets.robots == ("wecom_ops",) and targets.outbox_conn_id == "wechat_pg"
    assert targets.as_json()["notifiers"] == [{
        "notifier": "airflow.providers.slack.notifications.slack_webhook.SlackWebhookNotifier",
        "message_field": "text", "kwargs": {"slack_webhook_conn_id": "slack_data"},
    }]  # fmt: skip
    assert type(targets).from_json(targets.as_json()) == targets


def test_an_account_without_alert_settings_sends_no_alert() -> None:
    account = parse_account(GOOD)
    assert not account.alert_targets
    assert (account.alert_conn_ids, account.alert_notifiers, account.alert_deadline_hour, account.daily_report) == (
        (), (), 12, False)


def test_the_table_has_a_rule_for_every_field_of_account_config() -> None:
    from wechat_datacube.accounts import _FIELDS

    assert {"name", *(f.name for f in _FIELDS)} == set(AccountConfig._fields)


# --- where the accounts file is found --------------------------------------------------------


def test_the_environment_variable_names_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ACCOUNTS_ENV, str(tmp_path / "mine.yaml"))
    assert accounts_path() == tmp_path / "mine.yaml"


def test_by_default_the_file_is_include_beside_airflows_dags_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An installed wheel knows nothing of this repository: the Airflow project's layout decides."""
    monkeypatch.delenv(ACCOUNTS_ENV, raising=False)
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(tmp_path / "project" / "dags"))
    assert accounts_path() == default_accounts_file() == tmp_path / "project" / "include" / "accounts.yaml"


def test_without_airflow_the_file_is_include_in_airflow_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ACCOUNTS_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "airflow.configuration", None)  # import fails as if Airflow were missing
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert accounts_path() == tmp_path / "include" / "accounts.yaml"


def test_reading_the_accounts_module_imports_no_airflow() -> None:
    """The DAG file imports it at every parse: finding the default file must not cost an Airflow import."""
    code = "import sys, wechat_datacube.accounts; print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PLUGINS)
    assert out.stdout.strip() == "[]"
