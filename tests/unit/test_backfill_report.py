"""The bulk backfill's report: what a run left per (account, endpoint), why load tasks failed, what to do.

Runs are planned by the real planner over :data:`RANGE` (90 days); what the run left is
given as the report task reads it: load tasks' Airflow states, load_log, the run's failed
responses and quota blocks.
"""

from __future__ import annotations

import datetime as dt

from wechat_datacube.accounts import AccountConfig
from wechat_datacube.backfill_plan import endpoint_windows, plan_backfill
from wechat_datacube.backfill_report import BackfillReport, FailureCause, RunFailure, build_report, resume_after
from wechat_datacube.dates import DateRange, beijing_moment
from wechat_datacube.errors import describe_errcode
from wechat_datacube.load_status import LoadStatus
from wechat_datacube.windows import Window

BEGIN = dt.date(2025, 1, 1)
END = dt.date(2025, 3, 31)  # 90 days
RANGE = DateRange(BEGIN, END)
RESET = beijing_moment(dt.date(2025, 4, 2))
FIX = "fix the configuration, then trigger again"
RESUME_AFTER = "resume after 2025-04-02 00:00 Beijing: trigger again then"


def account(endpoints: tuple[str, ...] = ("getusershare",)) -> AccountConfig:
    return AccountConfig("acme", "wechat_acme", "wechat_pg", BEGIN, endpoints)


def planned(acme: AccountConfig, windows_per_task: int) -> list[dict[str, object]]:
    """The plan task's output for ``acme`` over the range with nothing loaded yet (the report's ``tasks``)."""
    plan = plan_backfill([acme], {acme.name: acme.endpoints}, RANGE, done={}, windows_per_task=windows_per_task)
    return [t.operator_kwargs(skip_loaded=True) for t in plan.tasks]


def share_run(windows_per_task: int = 5) -> tuple[AccountConfig, list[dict[str, object]]]:
    """acme getusershare over BEGIN..END: 13 windows of 7 days in tasks of ``windows_per_task``."""
    acme = account()
    return acme, planned(acme, windows_per_task)


def windows_of(tasks: list[dict[str, object]], index: int) -> list[Window]:
    task = tasks[index]
    return endpoint_windows(account(), "getusershare", DateRange.parse(str(task["begin_date"]), str(task["end_date"])))


def statuses(windows: list[Window], status: str) -> dict[dt.date, str]:
    return {d: status for w in windows for d in w}


def report(acme: AccountConfig, tasks: list[dict[str, object]], **kwargs: object) -> BackfillReport:
    kwargs.setdefault("load_status", {})
    return build_report([acme], {acme.name: acme.endpoints}, RANGE, tasks=tasks, **kwargs)  # type: ignore[arg-type]


def failure(window: Window, error: str, status: LoadStatus = LoadStatus.FAILED) -> RunFailure:
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
    waiting = failure(second, "data not published yet (the list is empty); retrying until X [account=acme]", LoadStatus.NOT_READY)

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
    acme = account(("getuserread", "getusershare"))
    tasks = planned(acme, windows_per_task=15)
    index = {(t["endpoint"], t["begin_date"]): i for i, t in enumerate(tasks)}
    states = {i: "skipped" if t["endpoint"] == "getuserread" else "failed" for i, t in enumerate(tasks)}
    share = windows_of(tasks, index[("getusershare", BEGIN.isoformat())])

    result = build_report(
        [acme], {"acme": acme.endpoints}, RANGE, tasks=tasks, task_states=states, load_status={},
        failures={KEY: [failure(share[0], BAD_SECRET)]}, blocked_until={("acme", "getuserread"): RESET},
    )

    assert result.state == "failed"
    assert result.next_steps() == [FIX, RESUME_AFTER]
    assert [(o.endpoint, o.failed, o.skipped) for o in result.outcomes] == [("getuserread", 0, 30), ("getusershare", 13, 0)]
