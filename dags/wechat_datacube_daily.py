"""Daily WeChat datacube Airflow DAGs: one per account in the accounts file.

Thin on purpose: reads the accounts file (WECHAT_DATACUBE_ACCOUNTS or include/accounts.yaml)
and builds `wechat_datacube_daily__<name>` for each valid account. A broken account is
reported as a warning naming the account and field; the other accounts still load.
No network or database access happens here.
"""

from __future__ import annotations

import warnings

# Not used here by name: listed so that the DAG processor imports it once, in its
# long-lived manager process, before it forks the process that parses this file
# (``[dag_processor] parsing_pre_import_modules``), rather than at every parse. The
# tasks' retry policy subclasses it (wechat_datacube.retry_policy).
import airflow.sdk.definitions.retry_policy  # noqa: F401

from wechat_datacube.accounts import load_accounts
from wechat_datacube.dag_factory import build_daily_dag


class AccountConfigWarning(UserWarning):
    """An account in the accounts file was skipped because its config is invalid."""


_accounts = load_accounts()
for _error in _accounts.errors:
    warnings.warn(f"{_error} (DAG not built)", AccountConfigWarning, stacklevel=1)
for _account in _accounts.accounts:
    _dag = build_daily_dag(_account)
    globals()[_dag.dag_id] = _dag
