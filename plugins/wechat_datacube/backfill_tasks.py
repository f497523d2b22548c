"""The bulk backfill DAG's two non-API tasks: plan the windows, report what is left.

Small operators instead of ``@task`` functions: ``airflow.sdk.task`` pulls Airflow's
Python-operator machinery into every parse of the DAG file (~15 ms, more than the rest of
the file), while these need only ``BaseOperator``. The planner itself runs inside
``execute``, never at parse time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from wechat_datacube.backfill_plan import BackfillPlan


def _plan(context: Context, **kwargs: Any) -> BackfillPlan:
    from wechat_datacube.accounts import load_accounts
    from wechat_datacube.backfill_plan import plan_from_params

    return plan_from_params(context["params"], all_accounts=load_accounts().accounts, **kwargs)


class BackfillPlanOperator(BaseOperator):
    """Plan the run from its params and load_log; return the mapped tasks' operator kwargs."""

    ui_color = "#d9f2e3"

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from airflow.sdk.configuration import conf

        plan = _plan(context, max_tasks=conf.getint("core", "max_map_length"))
        self.log.info("%s", plan.summary())
        replace = bool(context["params"].get("replace_shrinking"))
        return [
            t.operator_kwargs(skip_loaded=plan.reprocess == "missing", replace_shrinking=replace) for t in plan.tasks
        ]


class BackfillReportOperator(BaseOperator):
    """After the loads: log (and return) how many windows are still missing."""

    ui_color = "#d9f2e3"

    def execute(self, context: Context) -> dict[str, Any]:
        left = _plan(context, reprocess="missing", max_tasks=10**9)
        if left.calls:
            self.log.warning(
                "INCOMPLETE: %d window(s) still missing (daily quota or failures); trigger again to resume", left.calls
            )
        else:
            self.log.info("complete: every window of %s..%s is loaded", left.begin, left.end)
        self.log.info("%s", left.summary())
        return {"missing_windows": left.calls, "begin": left.begin.isoformat(), "end": left.end.isoformat()}
