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
    tasks_needed,
)
from wechat_datacube.backfill_report import BackfillReport, FailureCause, RunFailure, build_report, resume_after
from wechat_datacube.dates import BEIJING, iter_days
from wechat_datacube.endpoints import LEGACY, REPLACEMENT, REPLACEMENT_START, get_endpoint
from wechat_datacube.errors import ConfigError, describe_errcode
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
    return set(iter_days(begin, end))


def plan(accounts: list[AccountConfig], begin: dt.date = BEGIN, end: dt.date = END, **kwargs: object):  # noqa: ANN201
    kwargs.setdefault("done", {})
    return plan_backfill(accounts, {a.name: a.endpoints for a in accounts}, begin, end, **kwargs)  # type: ignore[arg-type]


def covered(tasks: list[BackfillTask], endpoint: str) -> set[dt.date]:
    return {d for t in tasks if t.endpoint == endpoint for d in iter_days(t.begin, t.end)}


# --- counts -----------------------------------------------------------------------------


def test_ninety_days_of_the_six_legacy_endpoints_cost_403_calls() -> None:
    result = plan([account()])
    assert result.calls == 90 + 90 + 30 + 90 + 13 + 90 == 403
    assert result.calls == sum(calls_needed(90, get_endpoint(e).max_span) for e in LEGACY)


def test_every_date_of_the_range_is_covered_once_per_endpoint() -> None:
    result = plan([account()])
    for endpoint in LEGACY:
        tasks = [t for t in result.tasks if t.endpoint == endpoint]
        assert sum((t.end - t.begin).days + 1 for t in tasks) == 90
        assert covered(tasks, endpoint) == days(BEGIN, END)


def test_each_task_holds_at_most_windows_per_task_windows() -> None:
    result = plan([account()], windows_per_task=15)
    assert max(t.windows for t in result.tasks) == 15
    # 90 single-day windows -> 6 tasks; getuserread 30 -> 2; getusershare 13 -> 1
    assert len(result.tasks) == 4 * 6 + 2 + 1


def test_batches_keep_the_endpoints_window_alignment() -> None:
    """A task's range re-chunked by the operator gives the planner's windows (full spans, short last)."""
    result = plan([account(endpoints=("getusershare",))], windows_per_task=4)
    assert [(t.begin, t.end, t.windows) for t in result.tasks] == [
        (dt.date(2025, 1, 1), dt.date(2025, 1, 28), 4),
        (dt.date(2025, 1, 29), dt.date(2025, 2, 25), 4),
        (dt.date(2025, 2, 26), dt.date(2025, 3, 25), 4),
        (dt.date(2025, 3, 26), dt.date(2025, 3, 31), 1),
    ]


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
    assert [(t.begin, t.end) for t in result.tasks] == [(dt.date(2025, 1, 8), dt.date(2025, 1, 14))]


def test_holes_split_into_separate_contiguous_tasks() -> None:
    done = {("acme", "getuserreadhour"): days(BEGIN, END) - {dt.date(2025, 1, 5), dt.date(2025, 1, 6), dt.date(2025, 3, 1)}}
    result = plan([account(endpoints=("getuserreadhour",))], done=done)
    assert [(t.begin, t.end, t.windows) for t in result.tasks] == [
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
    assert all(t.begin >= REPLACEMENT_START for t in result.tasks)
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
    assert resolve_dates("2026-05-01", None, yesterday=yesterday) == (dt.date(2026, 5, 1), yesterday)
    assert resolve_dates("2026-05-01", "2026-06-30", yesterday=yesterday) == (dt.date(2026, 5, 1), yesterday)


def test_begin_date_is_required_and_not_after_end() -> None:
    with pytest.raises(ConfigError, match="begin_date"):
        resolve_dates(None, "2026-05-01", yesterday=dt.date(2026, 5, 9))
    with pytest.raises(ConfigError, match="after end_date"):
        resolve_dates("2026-05-10", None, yesterday=dt.date(2026, 5, 9))


def test_operator_kwargs_are_json_safe_and_name_the_range() -> None:
    task = plan([account(endpoints=("getusershare",))]).tasks[0]
    kwargs = task.operator_kwargs(skip_loaded=True)
    assert kwargs["begin_date"] == "2025-01-01" and kwargs["end_date"] == task.end.isoformat()
    assert kwargs["account"] == "acme" and kwargs["endpoint"] == "getusershare" and kwargs["skip_loaded"] is True
    assert all(isinstance(v, (str, int, bool)) for v in kwargs.values())
    assert task.label == f"acme getusershare 2025-01-01..{task.end.isoformat()}"


# --- the report: what became of a run -----------------------------------------------------

NOON = dt.datetime(2025, 4, 1, 12, 0, tzinfo=BEIJING)
RESET = dt.datetime(2025, 4, 2, 0, 0, tzinfo=BEIJING)
FIX = "fix the configuration, then trigger again"
RESUME_AFTER = "resume after 2025-04-02 00:00 Beijing: trigger again then"


def share_run(windows_per_task: int = 5) -> tuple[AccountConfig, list[dict[str, object]]]:
    """acme getusershare over BEGIN..END: 13 windows of 7 days in tasks of ``windows_per_task``."""
    acme = account(endpoints=("getusershare",))
    tasks = [t.operator_kwargs(skip_loaded=True) for t in plan([acme], windows_per_task=windows_per_task).tasks]
    return acme, tasks


def windows_of(tasks: list[dict[str, object]], index: int) -> list[Window]:
    task = tasks[index]
    return endpoint_windows(
        account(), "getusershare", dt.date.fromisoformat(str(task["begin_date"])), dt.date.fromisoformat(str(task["end_date"]))
    )


def statuses(windows: list[Window], status: str) -> dict[dt.date, str]:
    return {d: status for w in windows for d in iter_days(w.begin, w.end)}


def report(acme: AccountConfig, tasks: list[dict[str, object]], **kwargs: object) -> BackfillReport:
    kwargs.setdefault("load_status", {})
    return build_report([acme], {acme.name: acme.endpoints}, BEGIN, END, tasks=tasks, **kwargs)  # type: ignore[arg-type]


def failure(window: Window, error: str, status: str = "failed") -> RunFailure:
    return RunFailure(window.begin, window.end, status, error)


KEY = ("acme", "getusershare")
BAD_SECRET = (
    "WeChat API error: invalid AppSecret: check the connection's password "
    "[account=acme, errcode=40125, errmsg='invalid appsecret rid: 1']"
)


def test_describe_errcode_renders_the_tables_meaning_and_class() -> None:
    assert describe_errcode(40125) == "errcode 40125 (permanent): invalid AppSecret: check the connection's password"
    assert describe_errcode(-1) == "errcode -1 (transient): WeChat system busy; retried with backoff"
    assert describe_errcode(12345) == "errcode 12345 (permanent): unknown errcode, treated as permanent"


def test_every_window_loaded_or_kept_is_complete() -> None:
    acme, tasks = share_run()
    loaded = statuses(windows_of(tasks, 0) + windows_of(tasks, 1), "loaded")
    kept = statuses(windows_of(tasks, 2), "kept") | {BEGIN + dt.timedelta(days=70): "empty"}

    result = report(acme, tasks, task_states=dict.fromkeys(range(3), "success"), load_status={KEY: loaded | kept})

    assert result.state == "complete" and result.next_steps() == []
    (outcome,) = result.outcomes
    assert (outcome.windows, outcome.loaded, outcome.kept, outcome.failed, outcome.skipped) == (13, 10, 3, 0, 0)
    assert result.headline() == f"complete: every window of {BEGIN}..{END} is loaded"
    assert result.as_dict()["state"] == "complete"


def test_a_permanent_errcode_fails_the_report_and_says_fix_the_configuration_not_resume() -> None:
    acme, tasks = share_run()
    first = windows_of(tasks, 0)

    result = report(
        acme,
        tasks,
        task_states={0: "failed", 1: "failed", 2: "failed"},
        failures={KEY: [failure(first[0], BAD_SECRET)]},
    )

    assert result.state == "failed" and result.failed_tasks == 3 and result.missing_windows == 13
    assert result.next_steps() == [FIX, "read the load task's log and fix the cause, then trigger again"]
    # Tasks 1 and 2 kept no failed response (say they crashed): said so, with the generic step.
    assert result.text() == (
        f"FAILED: 3 load task(s) failed; 13 window(s) of {BEGIN}..{END} still missing: {FIX}; "
        "read the load task's log and fix the cause, then trigger again\n"
        "  acme getusershare: 13 window(s): 0 loaded, 0 kept, 13 failed, 0 skipped; "
        "1 load task(s) failed, leaving 5 window(s): errcode 40125 (permanent): invalid AppSecret: check the "
        f"connection's password -> {FIX}; 2 load task(s) failed, leaving 8 window(s): no failed response was kept: "
        "the task failed before calling WeChat or did not finish -> read the load task's log and fix the cause, "
        "then trigger again"
    )
    assert "resume" not in result.text()


def test_a_transient_errcode_says_trigger_again_to_resume() -> None:
    acme, tasks = share_run(windows_per_task=15)
    (window, *_) = windows_of(tasks, 0)
    busy = "WeChat API error: WeChat system busy; retried with backoff [account=acme, endpoint=getusershare, errcode=-1]"

    result = report(acme, tasks, task_states={0: "failed"}, failures={KEY: [failure(window, busy)]})

    assert result.state == "failed"
    assert result.next_steps() == ["trigger again to resume"]
    (outcome,) = result.outcomes
    assert outcome.as_dict()["failures"] == [
        {
            "errcode": -1,
            "error_class": "transient",
            "meaning": "errcode -1 (transient): WeChat system busy; retried with backoff",
            "next_step": "trigger again to resume",
            "tasks": 1,
            "windows": 13,
        }
    ]


def test_the_last_failed_response_of_a_task_is_its_reason() -> None:
    """An earlier try failed on a busy system; the last one on the secret: fix the secret."""
    acme, tasks = share_run(windows_per_task=15)
    (window, *_) = windows_of(tasks, 0)
    busy = failure(window, "WeChat API error: WeChat system busy [account=acme, errcode=-1]")

    result = report(acme, tasks, task_states={0: "failed"}, failures={KEY: [busy, failure(window, BAD_SECRET)]})

    assert result.next_steps() == [FIX]


def test_windows_a_failed_task_loaded_before_failing_count_as_loaded() -> None:
    acme, tasks = share_run()
    first = windows_of(tasks, 0)

    result = report(
        acme,
        tasks,
        task_states={0: "failed", 1: "success", 2: "success"},
        load_status={KEY: statuses(first[:2] + windows_of(tasks, 1) + windows_of(tasks, 2), "loaded")},
        failures={KEY: [failure(first[2], BAD_SECRET)]},
    )

    (outcome,) = result.outcomes
    assert (outcome.loaded, outcome.failed, outcome.failed_tasks) == (10, 3, 1)
    assert outcome.causes == {FailureCause(40125, "", "failed"): [1, 3]}


def test_failures_without_an_errcode_keep_their_text_without_the_context() -> None:
    acme, tasks = share_run()
    first, second = windows_of(tasks, 0)[0], windows_of(tasks, 1)[0]
    http = failure(first, "HTTP 502 from WeChat [account=acme, endpoint=getusershare, dates=2025-01-01..2025-01-07]")
    waiting = failure(second, "data not published yet (the list is empty); retrying until X [account=acme]", "not_ready")

    result = report(
        acme, tasks, task_states={0: "failed", 1: "failed", 2: "success"}, failures={KEY: [http, waiting]}
    )

    (outcome,) = result.outcomes
    assert [(c.meaning(), c.next_step(None)) for c in outcome.causes] == [
        ("no errcode: HTTP 502 from WeChat", "read the load task's log and fix the cause, then trigger again"),
        (
            "no errcode: data not published yet (the list is empty); retrying until X",
            "WeChat has not published these dates yet: trigger again to resume later",
        ),
    ]
    assert outcome.missing == 3  # task 2 succeeded yet its windows are not in load_log


def test_an_unknown_errcode_is_treated_as_permanent() -> None:
    acme, tasks = share_run(windows_per_task=15)
    (window, *_) = windows_of(tasks, 0)

    result = report(
        acme, tasks, task_states={0: "failed"}, failures={KEY: [failure(window, "WeChat API error [errcode=99999]")]}
    )

    assert result.next_steps() == [FIX]
    assert "errcode 99999 (permanent): unknown errcode, treated as permanent -> " + FIX in result.text()


def test_windows_skipped_by_the_daily_quota_do_not_fail_the_report_but_say_when_to_resume() -> None:
    acme, tasks = share_run()
    quota = "WeChat API error: daily quota reached [account=acme, endpoint=getusershare, errcode=45009]"

    result = report(
        acme,
        tasks,
        task_states={0: "success", 1: "skipped", 2: "skipped"},
        load_status={KEY: statuses(windows_of(tasks, 0), "loaded")},
        failures={KEY: [failure(windows_of(tasks, 1)[0], quota)]},
        blocked_until={KEY: RESET},
    )

    assert result.state == "incomplete" and result.failed_tasks == 0 and result.missing_windows == 8
    assert result.next_steps() == [RESUME_AFTER]
    assert result.text() == (
        f"INCOMPLETE: 8 window(s) still missing of {BEGIN}..{END}: {RESUME_AFTER}\n"
        "  acme getusershare: 13 window(s): 5 loaded, 0 kept, 0 failed, 8 skipped; "
        f"8 window(s) skipped, daily quota (45009) spent -> {RESUME_AFTER}"
    )


def test_the_resume_time_is_shown_in_beijing_time() -> None:
    assert resume_after(dt.datetime(2025, 4, 1, 16, 0, tzinfo=dt.UTC)) == RESUME_AFTER


def test_skipped_windows_whose_quota_block_expired_say_trigger_again() -> None:
    acme, tasks = share_run(windows_per_task=15)

    result = report(acme, tasks, task_states={0: "skipped"})

    assert result.state == "incomplete" and result.next_steps() == ["trigger again to resume"]


def test_a_failure_and_a_quota_skip_list_the_fix_first_then_when_to_resume() -> None:
    acme = account(endpoints=("getuserread", "getusershare"))
    tasks = [t.operator_kwargs(skip_loaded=True) for t in plan([acme], windows_per_task=15).tasks]
    index = {(t["endpoint"], t["begin_date"]): i for i, t in enumerate(tasks)}
    states = {i: "skipped" if t["endpoint"] == "getuserread" else "failed" for i, t in enumerate(tasks)}
    share = windows_of(tasks, index[("getusershare", BEGIN.isoformat())])

    result = build_report(
        [acme], {"acme": acme.endpoints}, BEGIN, END, tasks=tasks, task_states=states, load_status={},
        failures={KEY: [failure(share[0], BAD_SECRET)]}, blocked_until={("acme", "getuserread"): RESET},
    )

    assert result.state == "failed"
    assert result.next_steps() == [FIX, RESUME_AFTER]
    assert [(o.endpoint, o.failed, o.skipped) for o in result.outcomes] == [("getuserread", 0, 30), ("getusershare", 13, 0)]
