"""What a manual run may ask for: a wrong ask fails the run instead of skipping every task."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from wechat_datacube.accounts import parse_account
from wechat_datacube.dag_factory import CONF_ENDPOINTS, MAX_MANUAL_DAYS, build_daily_dag
from wechat_datacube.dag_settings import BACKFILL_DAG_ID
from wechat_datacube.dates import DateRange
from wechat_datacube.endpoints import LEGACY, REPLACEMENT
from wechat_datacube.errors import ConfigError, DateRangeError
from wechat_datacube.run_conf import check_manual_window, endpoint_names, requested_dates, selected_endpoints

BEGIN = dt.date(2026, 1, 1)
CTX = {"account": "acme", "endpoint": "getusershare", "begin_date": BEGIN, "end_date": BEGIN}


@pytest.mark.parametrize(
    ("value", "names"),
    [
        (None, []),
        ("", []),
        ([], []),
        ("getusershare", ["getusershare"]),  # one name, never its letters
        ("getusershare, getuserread", ["getusershare", "getuserread"]),
        (["getusershare", " legacy "], ["getusershare", "legacy"]),
        ('"getusershare"', ["getusershare"]),  # the daily DAG's template renders JSON
        ('["getusershare", "getuserread"]', ["getusershare", "getuserread"]),
        ("null", []),
    ],
)
def test_endpoints_are_a_list_or_one_name(value: Any, names: list[str]) -> None:
    assert endpoint_names(value) == names


@pytest.mark.parametrize("value", [5, {"getusershare": True}, ["getusershare", 3], "7", '{"a": 1}'])
def test_endpoints_of_another_type_are_refused(value: Any) -> None:
    with pytest.raises(ConfigError, match="list of endpoint names or one name"):
        endpoint_names(value, **CTX)


def test_an_unknown_name_fails_listing_every_known_name_and_where() -> None:
    with pytest.raises(ConfigError) as err:
        selected_endpoints(["getusershare", "getusershre"], **CTX)
    message = str(err.value)
    assert "'getusershre'" in message and "'getusershare'" not in message
    assert "families legacy, replacement" in message
    assert all(name in message for name in (*LEGACY, *REPLACEMENT))
    assert "account=acme" in message and "endpoint=getusershare" in message and "dates=2026-01-01..2026-01-01" in message


def test_family_keywords_select_their_endpoints() -> None:
    assert selected_endpoints("legacy", LEGACY) == LEGACY
    assert selected_endpoints(["replacement", "getusershare"]) == (*REPLACEMENT, "getusershare")


@pytest.mark.parametrize("value", ["replacement", ["getusershare", "getarticleread"]])
def test_a_name_that_selects_nothing_this_dag_loads_fails(value: Any) -> None:
    with pytest.raises(ConfigError, match="does not load") as err:
        selected_endpoints(value, LEGACY, **CTX)
    assert "getuserreadhour" in str(err.value)  # what the DAG does load


def test_a_manual_window_longer_than_the_limit_points_to_the_backfill_dag() -> None:
    check_manual_window(DateRange(BEGIN, BEGIN + dt.timedelta(days=MAX_MANUAL_DAYS - 1)), MAX_MANUAL_DAYS, **CTX)
    end = BEGIN + dt.timedelta(days=MAX_MANUAL_DAYS)
    with pytest.raises(ConfigError, match=f"at most 31 days.*{BACKFILL_DAG_ID}") as err:
        check_manual_window(DateRange(BEGIN, end), MAX_MANUAL_DAYS, **{**CTX, "end_date": end})
    assert "is 32" in str(err.value) and "account=acme" in str(err.value)


# --- the dates a run asks for ----------------------------------------------------------------


def test_no_dates_mean_the_runs_data_interval_and_one_date_is_one_day() -> None:
    assert requested_dates("", None, max_days=31, account="acme", endpoint="getusershare") is None
    one_day = DateRange(dt.date(2026, 1, 5), dt.date(2026, 1, 5))
    assert requested_dates("2026-01-05", "", max_days=31, account="acme", endpoint="getusershare") == one_day
    assert requested_dates(None, "2026-01-05", max_days=None, account="acme", endpoint="getusershare") == one_day


def test_a_bad_conf_range_is_a_date_range_error_naming_account_endpoint_dates_and_the_conf() -> None:
    with pytest.raises(DateRangeError) as err:
        requested_dates("2026-01-05", "2026-01-01", max_days=31, account="acme", endpoint="getusershare")
    message = str(err.value)
    assert message.startswith("begin_date 2026-01-05 is after end_date 2026-01-01: ") and "run's conf" in message
    assert "account=acme, endpoint=getusershare, dates=2026-01-05..2026-01-01" in message


# --- through the daily DAG's tasks ----------------------------------------------------------


@pytest.fixture
def daily_dag() -> Any:
    account = parse_account(
        {"name": "acme", "wechat_conn_id": "nope", "postgres_conn_id": "nope", "start_date": "2026-01-01",
         "endpoints": ["legacy"]}
    )
    return build_daily_dag(account)


@pytest.mark.parametrize(
    ("conf", "selected"),
    [
        ({"endpoints": "getusershare"}, ("getusershare",)),
        ({"endpoints": ["getusershare", "getuserread"]}, ("getusershare", "getuserread")),
        ({"endpoints": "legacy"}, LEGACY),
        ({}, ()),
        (None, ()),
    ],
)
def test_the_daily_template_keeps_what_the_conf_held(daily_dag: Any, conf: Any, selected: tuple[str, ...]) -> None:
    task = daily_dag.get_task("getusershare")
    rendered = task.render_template(CONF_ENDPOINTS, {"dag_run": SimpleNamespace(conf=conf)})
    assert selected_endpoints(rendered, LEGACY) == selected


def test_a_daily_task_refuses_an_unknown_name_before_it_could_skip(daily_dag: Any) -> None:
    task = daily_dag.get_task("getuserread")  # not asked for: it skipped, and so did every other task
    task.selected_endpoints = '["getusershre"]'
    task.date_from = task.date_to = "2026-01-05"
    with pytest.raises(ConfigError, match="unknown endpoint name.*getusershre.*account=acme, endpoint=getuserread"):
        task.execute({})


def test_a_daily_task_refuses_a_manual_window_longer_than_a_month(daily_dag: Any) -> None:
    task = daily_dag.get_task("getusershare")
    task.selected_endpoints = "null"
    task.date_from, task.date_to = "2026-01-01", "2026-02-15"
    with pytest.raises(ConfigError, match=BACKFILL_DAG_ID):
        task.resolve_dates({})
