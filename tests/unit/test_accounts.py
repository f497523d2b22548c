"""The accounts file: validation names the account and field; one bad account spares the rest."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from wechat_datacube.accounts import AccountConfigError, load_accounts, parse_account
from wechat_datacube.endpoints import LEGACY, REPLACEMENT

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
