"""Run the pipeline locally: ``make run`` / ``make demo`` (``python -m wechat_datacube_dev.localrun``).

One command brings up everything a data engineer needs to see the pipeline work, with no
WeChat credentials, no Docker and no PostgreSQL server: a PostgreSQL (the one named by
``WECHAT_DATACUBE_PG_URL``, else an embedded server under ``.local/``), the WeChat API
simulator, and Airflow (api-server, scheduler, dag-processor, triggerer) running this
repository's DAGs for a demo account that catches up the last 14 days.

Modules, one job each: :mod:`.processes` (child processes in their own process groups),
:mod:`.airflow_cluster` (Airflow components + CLI + REST, also used by the tests),
:mod:`.postgres` (external or embedded server, databases, connection strings),
:mod:`.state` (what ``.local/`` keeps between runs), :mod:`.stack` (puts it together),
:mod:`.report` (catchup progress and row counts), :mod:`.__main__` (the command line).
"""

from __future__ import annotations

from pathlib import Path

#: The repository checkout this (editable-installed) package lives in.
REPO_ROOT = Path(__file__).resolve().parents[3]
