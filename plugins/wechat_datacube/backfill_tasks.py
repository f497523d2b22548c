"""The bulk backfill DAG's two non-API tasks: plan the windows, report what became of them.

Small operators instead of ``@task`` functions: ``airflow.sdk.task`` pulls Airflow's
Python-operator machinery into every parse of the DAG file (~15 ms, more than the rest of
the file), while these need only ``BaseOperator``. The planner itself runs inside
``execute``, never at parse time; so is the report (``wechat_datacube.backfill_plan``).
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
    """After the loads: say per (account, endpoint) what the run loaded, what failed and why,
    and what to do; fail when a load task failed.

    Reads the load tasks' states of this run through the Task SDK (``get_task_states``), the
    plan task's output (which load task covers which dates) and, from Postgres, load_log, the
    run's failed responses (their errcode) and the quota blocks in force. A failed load task
    fails this task — and with it the run, this being its leaf — with the report as the error;
    windows skipped because the daily quota ran out only make the run incomplete (it succeeds)
    and the report says when to resume. Returns the report (also pushed as XCom ``report``).
    """

    ui_color = "#d9f2e3"

    def __init__(self, *, plan_task_id: str = "plan", load_task_id: str = "load", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan_task_id = plan_task_id
        self.load_task_id = load_task_id

    def _states(self, ti: Any) -> tuple[str | None, dict[int, str | None]]:
        """(the plan task's state, load map index -> state) in this run; an unmapped load task is index -1."""
        found = ti.get_task_states(
            dag_id=ti.dag_id, task_ids=[self.plan_task_id, self.load_task_id], run_ids=[ti.run_id]
        ).get(ti.run_id, {})
        loads: dict[int, str | None] = {}
        prefix = f"{self.load_task_id}_"
        for key, state in found.items():
            if key == self.load_task_id:
                loads[-1] = state
            elif key.startswith(prefix) and key[len(prefix) :].isdigit():
                loads[int(key[len(prefix) :])] = state
        return found.get(self.plan_task_id), loads

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from wechat_datacube.accounts import load_accounts
        from wechat_datacube.backfill_report import FAILED_TASK_STATES, report_from_params

        ti = context["ti"]
        plan_state, load_states = self._states(ti)
        if plan_state in FAILED_TASK_STATES:
            raise AirflowFailException(
                f"the {self.plan_task_id} task failed, so nothing was loaded: its log says why "
                "(fix the run's params or the configuration, then trigger again)"
            )
        tasks = ti.xcom_pull(task_ids=self.plan_task_id) or []
        report = report_from_params(
            context["params"],
            all_accounts=load_accounts().accounts,
            tasks=tasks,
            task_states=load_states,
            dag_id=ti.dag_id,
            run_id=ti.run_id,
        )
        result = report.as_dict()
        ti.xcom_push(key="report", value=result)
        text = report.text()
        if report.state == "failed":
            self.log.error("%s", text)
            raise AirflowFailException(text)
        if report.state == "incomplete":
            self.log.warning("%s", text)
        else:
            self.log.info("%s", text)
        return result
