"""Daily WeChat datacube Airflow DAGs: one per account in the accounts file.

Thin on purpose: reads the accounts file (WECHAT_DATACUBE_ACCOUNTS or include/accounts.yaml)
and builds `wechat_datacube_daily__<name>` for each valid account. No network or database
access happens here.

A broken entry never hides the other accounts, and shows in the Airflow UI as a DAG of
its own: `wechat_datacube_daily__<name>` (or `wechat_datacube_daily__invalid-entry-<n>`
when the entry has no usable name, `-<n>` being its position in the list), tagged
`config-error`, unscheduled, whose description and docs name the account, the field and
the problem, and whose one task fails with that message when triggered. A file that
cannot be used at all (unreadable, not YAML, not a mapping with an `accounts` list) is one
such DAG, `wechat_datacube_daily__accounts-file-error`: there are no accounts to build.

Why not an import error or a warning (Airflow 3.3, airflow/dag_processing/):
* the DAG processor marks *every* DAG of a file that has an import error stale
  (collection.py, ``_update_import_errors``: ``has_import_errors=True, is_stale=True``):
  the good accounts' DAGs would leave the UI and stop being scheduled;
* warnings raised while parsing reach ``DagBag.captured_warnings`` and the processor's
  log, but the processor sends only its own stability-check warnings to the database
  (processor.py, ``_parse_file``): nothing shows them in the UI or the REST API.
"""

from __future__ import annotations

# Pre-imported by the DAG processor for the tasks' retry policy: docs/benchmarks.md#b3-parse-time
import airflow.sdk.definitions.retry_policy  # noqa: F401
from airflow.sdk import DAG, BaseOperator

from wechat_datacube.accounts import AccountConfigError, accounts_path, load_accounts
from wechat_datacube.dag_factory import build_daily_dag
from wechat_datacube.dag_settings import DAILY_DAG_PREFIX

CONFIG_ERROR_TAG = "config-error"
#: The DAG of an accounts file that cannot be used at all. The suffixes of these DAG ids
#: hold a '-', which account names cannot: they never collide with an account's DAG.
FILE_ERROR_DAG_ID = f"{DAILY_DAG_PREFIX}accounts-file-error"


class AccountsFileErrorOperator(BaseOperator):
    """Fails with the accounts file's message: what a broken entry's DAG runs when triggered."""

    ui_color = "#fa5151"  # WeChat's warning red

    def __init__(self, *, message: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.message = message

    def execute(self, context: object) -> None:
        raise AccountConfigError(f"{self.message} (fix the accounts file; this DAG only reports the problem)")


def _broken_dag(dag_id: str, error: AccountConfigError, path: object) -> DAG:
    """An unscheduled DAG whose description, docs and one failing task say what is wrong."""
    if error.entry is None:
        what, after = "the accounts file", "no account's DAG can be built until it is fixed."
    else:
        what = f"account `{error.account}`" if error.account else f"entry #{error.entry}"
        after = (
            "every other account's DAG still loads. Once the entry is fixed, this DAG becomes the "
            "account's daily DAG again at the next parse (or disappears)."
        )
    own_tag = error.account is not None and dag_id == f"{DAILY_DAG_PREFIX}{error.account}"
    dag = DAG(
        dag_id=dag_id,
        schedule=None,
        description=f"NOT LOADED: {error}",
        doc_md="\n".join(
            [
                f"### WeChat datacube — {what} is not loaded",
                "",
                f"The accounts file `{path}` has a problem, so this DAG only reports it:",
                "",
                f"> {error}",
                "",
                f"Fix it in the file; {after} Triggering this DAG fails with the message above.",
            ]
        ),
        tags=["wechat", "datacube", CONFIG_ERROR_TAG, *([f"account:{error.account}"] if own_tag else [])],
    )
    with dag:
        AccountsFileErrorOperator(task_id="accounts_file_error", message=str(error), retries=0)
    return dag


def _build_all() -> dict[str, DAG]:
    try:
        loaded = load_accounts()
    except AccountConfigError as exc:  # the whole file: nothing else can be built
        return {FILE_ERROR_DAG_ID: _broken_dag(FILE_ERROR_DAG_ID, exc, accounts_path())}
    dags: dict[str, DAG] = {}
    for account in loaded.accounts:
        dag = build_daily_dag(account)
        dags[dag.dag_id] = dag
    for error in loaded.errors:
        dag_id = f"{DAILY_DAG_PREFIX}{error.account}"
        if not error.account or dag_id in dags:  # no usable name, or it is another entry's
            dag_id = f"{DAILY_DAG_PREFIX}invalid-entry-{error.entry}"
        dags[dag_id] = _broken_dag(dag_id, error, loaded.path)
    return dags


globals().update(_build_all())
