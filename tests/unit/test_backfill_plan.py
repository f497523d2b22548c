"""The bulk backfill planner: windows, skipping what is done, reprocess, active ranges, batching, counts."""

from __future__ import annotations

import datetime as dt

import pytest

from wechat_datacube.accounts import AccountConfig
from wechat_datacube.backfill_plan import (
    BackfillTask,
    choose_batch_size,
    contiguous_runs,
    endpoint_windows,
    plan_backfill,
    resolve_accounts,
    resolve_dates,
    resolve_endpoints,
    resolve_params,
    tasks_needed,
    window_done,
)
from wechat_datacube.dates import BEIJING, DateRange
from wechat_datacube.endpoints import FAMILIES, LEGACY, REPLACEMENT, REPLACEMENT_START, get_endpoint
from wechat_datacube.errors import ConfigError, DateRangeError
from wechat_datacube.windows import Window, calls_needed

BEGIN = dt.date(2025, 1, 1)
END = dt.date(2025, 3, 31)  # 90 days


def account(name: str = "acme", endpoints: tuple[str, ...] = LEGACY, **kwargs: object) -> AccountConfig:
    return AccountConfig(
        name=name,
        wechat_conn_id=f"wechat_{name}",
        postgres_conn_id="wechat_pg",
        start_date=dt.date(2025, 1, 1),
        endpoints=endpoints,
        **kwargs,  # type: ignore[arg-type]
    )


def days(begin: dt.date, end: dt.date) -> set[dt.date]:
    return set(DateRange(begin, end))


def plan(accounts: list[AccountConfig], begin: dt.date = BEGIN, end: dt.date = END, **kwargs: object):  # noqa: ANN201
    kwargs.setdefault("done", {})
    return plan_backfill(accounts, {a.name: a.endpoints for a in accounts}, DateRange(begin, end), **kwargs)  # type: ignore[arg-type]


def covered(tasks: list[BackfillTask], endpoint: str) -> set[dt.date]:
    return {d for t in tasks if t.endpoint == endpoint for d in t.dates}


# --- counts -----------------------------------------------------------------------------


def test_ninety_days_of_the_six_legacy_endpoints_cost_403_calls() -> None:
    result = plan([account()])
    assert result.calls == 90 + 90 + 30 + 90 + 13 + 90 == 403
    assert result.calls == sum(calls_needed(90, get_endpoint(e).max_span) for e in LEGACY)


def test_every_date_of_the_range_is_covered_once_per_endpoint() -> None:
    result = plan([account()])
    for endpoint in LEGACY:
        tasks = [t for t in result.tasks if t.endpoint == endpoint]
        assert sum(t.dates.days for t in tasks) == 90
        assert covered(tasks, endpoint) == days(BEGIN, END)


def test_each_task_holds_at_most_windows_per_task_windows() -> None:
    result = plan([account()], windows_per_task=15)
    assert max(t.windows for t in result.tasks) == 15
    # 90 single-day windows -> 6 tasks; getuserread 30 -> 2; getusershare 13 -> 1
    assert len(result.tasks) == 4 * 6 + 2 + 1


def test_batches_keep_the_endpoints_window_alignment() -> None:
    """A task's range re-chunked by the operator gives the planner's windows (full spans, short last)."""
    result = plan([account(endpoints=("getusershare",))], windows_per_task=4)
    assert [(t.dates.begin, t.dates.end, t.windows) for t in result.tasks] == [
        (dt.date(2025, 1, 1), dt.date(2025, 1, 28), 4),
        (dt.date(2025, 1, 29), dt.date(2025, 2, 25), 4),
        (dt.date(2025, 2, 26), dt.date(2025, 3, 25), 4),
        (dt.date(2025, 3, 26), dt.date(2025, 3, 31), 1),
    ]


def test_every_task_of_every_endpoint_replans_exactly_its_windows() -> None:
    """What a mapped task hands the operator (its date range) gives back the planner's windows,
    for daily, lookback (getusersummary), week and month endpoints alike, with a range starting mid-week."""
    names = ("user", "message", "interface")
    acct = account(endpoints=tuple(e for f in names for e in FAMILIES[f]))
    result = plan([acct], dt.date(2025, 1, 8), END, windows_per_task=3)
    for name in acct.endpoints:
        planned = endpoint_windows(acct, name, DateRange(dt.date(2025, 1, 8), END))
        replanned = [w for t in result.tasks if t.endpoint == name for w in endpoint_windows(acct, name, t.dates)]
        assert replanned == planned, name
        assert sum(t.windows for t in result.tasks if t.endpoint == name) == len(planned), name
    assert result.windows_total[("acme", "getupstreammsgweek")] == 12  # Sundays 2025-01-12 .. 2025-03-30
    assert result.windows_total[("acme", "getupstreammsgmonth")] == 3
    assert result.windows_total[("acme", "getupstreammsgdistweek")] == 4  # three Mondays per 15-day call


def test_a_rerun_of_week_and_month_endpoints_plans_nothing() -> None:
    """Done dates are the labels: a week starting before the range counts when it was loaded."""
    acct = account(endpoints=("getupstreammsgweek", "getupstreammsgmonth"))
    first = plan([acct], dt.date(2025, 1, 8), END)
    done = {("acme", t.endpoint): {w.begin for w in endpoint_windows(acct, t.endpoint, t.dates)} for t in first.tasks}
    assert dt.date(2025, 1, 6) in done[("acme", "getupstreammsgweek")]  # labelled before the range began
    again = plan([acct], dt.date(2025, 1, 8), END, done=done)
    assert again.tasks == [] and again.skipped == first.calls


# --- skipping what is done ----------------------------------------------------------------


def test_windows_already_loaded_are_not_planned() -> None:
    done = {("acme", "getarticlesummary"): days(BEGIN, dt.date(2025, 2, 14))}  # first 45 days
    result = plan([account(endpoints=("getarticlesummary",))], done=done)
    assert result.calls == 45
    assert covered(result.tasks, "getarticlesummary") == days(dt.date(2025, 2, 15), END)
    assert result.skipped == 45


def test_second_run_after_a_complete_one_plans_nothing() -> None:
    done = {("acme", e): days(BEGIN, END) for e in LEGACY}
    result = plan([account()], done=done)
    assert result.tasks == [] and result.calls == 0 and result.skipped == 403


def test_a_window_with_one_missing_date_is_fetched_whole() -> None:
    done = {("acme", "getusershare"): days(BEGIN, END) - {dt.date(2025, 1, 10)}}
    result = plan([account(endpoints=("getusershare",))], done=done)
    assert [t.dates for t in result.tasks] == [DateRange(dt.date(2025, 1, 8), dt.date(2025, 1, 14))]


def test_holes_split_into_separate_contiguous_tasks() -> None:
    done = {("acme", "getuserreadhour"): days(BEGIN, END) - {dt.date(2025, 1, 5), dt.date(2025, 1, 6), dt.date(2025, 3, 1)}}
    result = plan([account(endpoints=("getuserreadhour",))], done=done)
    assert [(t.dates.begin, t.dates.end, t.windows) for t in result.tasks] == [
        (dt.date(2025, 1, 5), dt.date(2025, 1, 6), 2),
        (dt.date(2025, 3, 1), dt.date(2025, 3, 1), 1),
    ]


def test_reprocess_all_ignores_what_is_loaded() -> None:
    done = {("acme", e): days(BEGIN, END) for e in LEGACY}
    result = plan([account()], done=done, reprocess="all")
    assert result.calls == 403 and result.skipped == 0


def test_unknown_reprocess_mode_is_refused() -> None:
    with pytest.raises(ConfigError, match="reprocess"):
        plan([account()], reprocess="failed")


def test_done_dates_of_another_account_do_not_count() -> None:
    done = {("other", "getusershare"): days(BEGIN, END)}
    result = plan([account(endpoints=("getusershare",))], done=done)
    assert result.calls == 13


# --- active ranges and first dates ---------------------------------------------------------


def test_cutover_account_uses_legacy_before_and_replacement_from_the_cutover() -> None:
    cutover = dt.date(2025, 12, 1)
    both = account(endpoints=(*LEGACY, *REPLACEMENT), cutover_date=cutover)
    result = plan([both], dt.date(2025, 11, 21), dt.date(2025, 12, 10))
    assert covered(result.tasks, "getusershare") == days(dt.date(2025, 11, 21), dt.date(2025, 11, 30))
    assert covered(result.tasks, "getarticleread") == days(cutover, dt.date(2025, 12, 10))
    assert result.calls == 4 * 10 + calls_needed(10, 3) + calls_needed(10, 7) + 3 * 10 + calls_needed(10, 30)


def test_replacement_endpoints_are_not_asked_before_their_first_date() -> None:
    result = plan([account(endpoints=REPLACEMENT)], dt.date(2025, 10, 1), dt.date(2025, 11, 5))
    assert all(t.dates.begin >= REPLACEMENT_START for t in result.tasks)
    assert result.calls == 3 * 5 + 1  # getbizsummary: the five days in one 30-day window


def test_range_entirely_outside_an_endpoints_dates_plans_no_task_for_it() -> None:
    result = plan([account(endpoints=("getarticleread", "getusershare"))], dt.date(2025, 1, 1), dt.date(2025, 1, 7))
    assert {t.endpoint for t in result.tasks} == {"getusershare"}
    assert result.windows_total[("acme", "getarticleread")] == 0


# --- the mapped-task cap ---------------------------------------------------------------------


def test_batches_widen_until_the_task_count_fits_max_map_length() -> None:
    ten_years = plan([account()], dt.date(2015, 1, 1), dt.date(2024, 12, 31), windows_per_task=1, max_tasks=1024)
    assert len(ten_years.tasks) <= 1024
    assert ten_years.calls == sum(calls_needed(3653, get_endpoint(e).max_span) for e in LEGACY)
    # runs of 3653 days (4 daily endpoints), 1218 (3-day span) and 522 (7-day span) windows:
    # batches of 16 would need 4*229 + 77 + 33 = 1026 tasks; 17 needs 963.
    assert ten_years.windows_per_task == 17
    assert len(ten_years.tasks) == 963


def test_choose_batch_size_is_the_smallest_that_fits() -> None:
    runs = [90, 90, 30, 13]
    size = choose_batch_size(runs, 1, 20)
    assert tasks_needed(runs, size) <= 20 < tasks_needed(runs, size - 1)


def test_preferred_batch_size_is_kept_when_it_fits() -> None:
    assert choose_batch_size([90, 13], 15, 1024) == 15


def test_more_separate_runs_than_the_cap_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="max_map_length"):
        choose_batch_size([1] * 5, 1, 4)


def test_contiguous_runs_break_at_gaps() -> None:
    w = [Window(dt.date(2025, 1, d), dt.date(2025, 1, d)) for d in (1, 2, 4, 5, 6, 9)]
    assert [len(r) for r in contiguous_runs(w)] == [2, 3, 1]


def test_a_window_is_done_when_every_day_is() -> None:
    window = Window(dt.date(2025, 1, 1), dt.date(2025, 1, 3))
    assert window_done(window, days(dt.date(2024, 12, 31), dt.date(2025, 1, 3)))
    assert not window_done(window, days(dt.date(2025, 1, 1), dt.date(2025, 1, 2)))


# --- params -------------------------------------------------------------------------------


def test_empty_account_list_means_every_account() -> None:
    accounts = [account("acme"), account("beta")]
    assert resolve_accounts(accounts, []) == accounts
    assert resolve_accounts(accounts, ["beta"]) == [accounts[1]]


def test_unknown_account_is_named_in_the_error() -> None:
    with pytest.raises(ConfigError, match="nope"):
        resolve_accounts([account()], ["nope"])


def test_endpoint_family_keyword_is_intersected_with_each_accounts_endpoints() -> None:
    legacy_only, replacement_only = account("old"), account("new", endpoints=REPLACEMENT)
    chosen = resolve_endpoints([legacy_only, replacement_only], ["replacement", "getusershare"])
    assert chosen == {"old": ("getusershare",), "new": REPLACEMENT}


def test_empty_endpoint_list_means_each_accounts_configured_endpoints() -> None:
    assert resolve_endpoints([account(endpoints=("getuserread",))], []) == {"acme": ("getuserread",)}


def test_endpoint_configured_for_no_selected_account_is_refused() -> None:
    with pytest.raises(ConfigError, match="getarticleread"):
        resolve_endpoints([account()], ["getarticleread"])


def test_unknown_endpoint_is_refused() -> None:
    with pytest.raises(ConfigError, match="getnothing"):
        resolve_endpoints([account()], ["getnothing"])


def test_one_endpoint_given_as_a_string_is_one_name_not_its_letters() -> None:
    assert resolve_endpoints([account()], "getusershare") == {"acme": ("getusershare",)}
    assert resolve_endpoints([account("new", endpoints=REPLACEMENT)], "replacement") == {"new": REPLACEMENT}


@pytest.mark.parametrize("requested", ["getusershre", ["getusershare", "getusershre"]])
def test_unknown_endpoint_lists_the_known_names_and_the_accounts(requested: object) -> None:
    with pytest.raises(ConfigError, match="getusershre") as err:
        resolve_endpoints([account()], requested, begin_date=BEGIN, end_date=END)  # type: ignore[arg-type]
    message = str(err.value)
    assert "legacy, replacement" in message and "getarticletotaldetail" in message
    assert "account=acme" in message and f"dates={BEGIN}..{END}" in message


def test_end_date_defaults_to_and_is_capped_at_yesterday() -> None:
    yesterday = dt.date(2026, 5, 9)
    assert resolve_dates("2026-05-01", None, yesterday=yesterday) == DateRange(dt.date(2026, 5, 1), yesterday)
    assert resolve_dates("2026-05-01", "2026-06-30", yesterday=yesterday) == DateRange(dt.date(2026, 5, 1), yesterday)


def test_begin_date_is_required_and_not_after_end() -> None:
    with pytest.raises(ConfigError, match="begin_date"):
        resolve_dates(None, "2026-05-01", yesterday=dt.date(2026, 5, 9))
    with pytest.raises(DateRangeError, match="after end_date"):
        resolve_dates("2026-05-10", None, yesterday=dt.date(2026, 5, 9))
    with pytest.raises(DateRangeError, match="after end_date 2026-05-09 .end_date is capped at yesterday"):
        resolve_dates("2026-05-10", "2026-06-30", yesterday=dt.date(2026, 5, 9))


@pytest.mark.parametrize(("begin", "end"), [("2026-05-03", "2026-05-01"), ("2026-05-32", None)])
def test_bad_backfill_params_name_the_accounts_endpoints_and_dates(begin: str, end: str | None) -> None:
    params = {"accounts": ["acme"], "begin_date": begin, "end_date": end, "endpoints": ["getusershare"]}
    now = dt.datetime(2026, 5, 10, 12, tzinfo=BEIJING)
    with pytest.raises(DateRangeError) as err:
        resolve_params(params, [account(), account("beta")], now=now)
    message = str(err.value)
    assert f"account=acme, endpoint=getusershare, dates={begin}.." in message


def test_params_resolve_to_the_accounts_dates_and_endpoints() -> None:
    params = {"begin_date": "2026-05-01", "end_date": None, "endpoints": "getusershare"}
    now = dt.datetime(2026, 5, 10, 12, tzinfo=BEIJING)
    accounts, dates, endpoints = resolve_params(params, [account()], now=now)
    assert (accounts, dates, endpoints) == (
        [account()], DateRange(dt.date(2026, 5, 1), dt.date(2026, 5, 9)), {"acme": ("getusershare",)}
    )


def test_operator_kwargs_are_json_safe_and_name_the_range() -> None:
    task = plan([account(endpoints=("getusershare",))]).tasks[0]
    kwargs = task.operator_kwargs(skip_loaded=True)
    assert kwargs["begin_date"] == "2025-01-01" and kwargs["end_date"] == task.dates.end.isoformat()
    assert kwargs["account"] == "acme" and kwargs["endpoint"] == "getusershare" and kwargs["skip_loaded"] is True
    assert all(isinstance(v, (str, int, bool)) for v in kwargs.values())
    assert task.label == f"acme getusershare 2025-01-01..{task.dates.end.isoformat()}"
