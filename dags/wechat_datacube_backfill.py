"""Bulk backfill Airflow DAG `wechat_datacube_backfill`: history of many accounts and endpoints.

Manual only (schedule=None). Params: ``accounts`` (names from the accounts file; empty =
all), ``begin_date`` / ``end_date`` (Beijing dates; end defaults to and is capped at
yesterday), ``endpoints`` (names or the family keywords ``legacy``, ``replacement``, ``user``,
``message``, ``interface``, as a
list or one as a string; empty = each account's configured endpoints; an unknown name
fails the run), ``reprocess`` (``missing``: skip windows whose dates are all
loaded/empty/kept in load_log; ``all``: fetch everything again),
``replace_shrinking`` (replace a stored day even when the new answer holds fewer rows; by
default such a day keeps its rows and is marked ``kept``) and ``windows_per_task``.

Tasks: ``plan`` (reads the accounts file and load_log — at run time, never at parse
time) → ``load``, the ordinary ``WeChatDatacubeToPostgresOperator`` mapped over the plan
with ``expand_kwargs`` in the ``wechat_api`` pool, one mapped task per (account,
endpoint, batch of consecutive windows), labelled e.g. ``acme getusershare
2026-01-01..2026-01-21`` → ``report`` (per endpoint: loaded, failed with errcode and advice,
when to resume; it fails the run when a load failed).

Why batches, not one task per window: Airflow caps a mapped task at ``[core]
max_map_length`` (1024) instances and every instance costs scheduler/metadata work; a
decade of six endpoints is ~16,000 windows. Each batch holds ``windows_per_task`` windows
(default 15) and the planner widens batches when the count would pass the configured cap
(it never raises the limit, nor drops work); see ``wechat_datacube.backfill_plan``.

Daily quota (45009): the window loader records a quota block in Postgres; the mapped
tasks run with ``on_quota="skip"``, so the task that hit it and every later task of that
(account, endpoint) — which sees the block and does not call — end as *skipped* with the
reset time in their message instead of failing and retrying in a loop. Trigger the DAG
again after midnight Beijing time: finished windows are skipped, the rest is fetched.
The mapped tasks emit no asset events (their table set is only known at run time).

Alerts: a load task of an account with alert targets (``alert_conn_ids`` /
``alert_notifiers``) reports a failure for good, a 45009 that stopped it (with the reset
time) and the days it kept against a shorter answer; see README "Alerts".
"""

from __future__ import annotations

import datetime as dt
from typing import Any

# Pre-imported by the DAG processor (the retry policy; the modules expand_kwargs imports at
# every parse): docs/benchmarks.md#b3-parse-time
import airflow.providers.standard.operators.empty  # noqa: F401
import airflow.sdk.bases.sensor  # noqa: F401
import airflow.sdk.bases.skipmixin  # noqa: F401
import airflow.sdk.definitions.retry_policy  # noqa: F401
from airflow.sdk import DAG, Param

from wechat_datacube.alerts.callbacks import task_failure_callback
from wechat_datacube.backfill_params import DEFAULT_WINDOWS_PER_TASK, REPROCESS_MODES
from wechat_datacube.backfill_tasks import BackfillPlanOperator, BackfillReportOperator
from wechat_datacube.dag_settings import API_POOL, BACKFILL_DAG_ID, DEFAULT_TASK_ARGS
from wechat_datacube.endpoints import ENDPOINTS, FAMILIES
from wechat_datacube.operators import WeChatDatacubeToPostgresOperator
from wechat_datacube.retry_policy import WeChatRetryPolicy

DAG_ID = BACKFILL_DAG_ID
_ENDPOINT_NAMES = [*FAMILIES, *ENDPOINTS]
MAP_INDEX_TEMPLATE = "{{ task.account }} {{ task.endpoint }} {{ task.date_from }}..{{ task.date_to }}"


def _params() -> dict[str, Param]:
    """The trigger form's params (see the module docstring)."""
    return {
        # Free text, not a pick list (docs/benchmarks.md#b3-parse-time); the plan task checks the names.
        # "null" in each optional param's type: Airflow's trigger form marks a param
        # required unless its type allows null (and refuses to submit it empty).
        "accounts": Param([], type=["null", "array"], items={"type": "string"},
                          description="Account names from the accounts file; empty = all of them."),
        "begin_date": Param(None, type=["null", "string"], format="date", description="First Beijing date."),
        "end_date": Param(None, type=["null", "string"], format="date",
                          description="Last Beijing date; empty or later = yesterday in Beijing."),
        # A list, or one name as a string (a string is a name, never its letters); the
        # plan task refuses unknown names in either. ``examples`` makes the form a pick list.
        "endpoints": Param([], type=["null", "array", "string"], items={"type": "string", "enum": _ENDPOINT_NAMES},
                           examples=_ENDPOINT_NAMES,
                           description="Endpoints or families (a list, or one name); empty = each account's "
                           "configured endpoints."),
        "reprocess": Param("missing", type="string", enum=list(REPROCESS_MODES),
                           description="missing: skip windows already loaded; all: fetch everything again."),
        "replace_shrinking": Param(False, type="boolean",
                                   description="Replace stored days even when the new answer has fewer rows "
                                   "(default: keep them and mark the day 'kept'). Use with reprocess=all."),
        "windows_per_task": Param(DEFAULT_WINDOWS_PER_TASK, type="integer", minimum=1,
                                  description="API calls (windows) per mapped task; widened to fit max_map_length."),
    }


def build_backfill_dag(**overrides: Any) -> DAG:
    """The backfill DAG; ``default_args`` in ``overrides`` are merged over the project's defaults."""
    task_args = {**DEFAULT_TASK_ARGS, **overrides.pop("default_args", {})}
    dag = DAG(
        dag_id=DAG_ID,
        schedule=None,
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        max_active_runs=1,
        default_args=task_args,
        tags=["wechat", "datacube", "backfill"],
        doc_md=__doc__,
        params=_params(),
        **overrides,
    )
    with dag:
        plan = BackfillPlanOperator(task_id="plan", retries=0, pool="default_pool").output
        load = WeChatDatacubeToPostgresOperator.partial(
            task_id="load",
            pool=API_POOL,
            on_quota="skip",
            outlets=[],
            retry_policy=WeChatRetryPolicy(),
            map_index_template=MAP_INDEX_TEMPLATE,
            # Reads the task's own alert_targets: one callback for every account of the run.
            on_failure_callback=task_failure_callback,
        ).expand_kwargs(plan)
        report = BackfillReportOperator(task_id="report", retries=0, pool="default_pool", trigger_rule="all_done")
        load >> report
    return dag


globals()[DAG_ID] = build_backfill_dag()
