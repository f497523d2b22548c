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

#: What a checkout of the repository has at its root and the launcher and doc generator use.
CHECKOUT_MARKERS = ("dags", "plugins", "README.md")
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


class CheckoutNotFoundError(RuntimeError):
    """The development package is not running from a checkout of the repository."""


def repo_root(package_dir: Path = _PACKAGE_DIR) -> Path:
    """The repository checkout this package is installed from: the DAGs, plugins and docs it runs on.

    Works only in an editable install from a checkout (``pip install -e devtools``, what
    ``make install`` does): ``make run`` serves the checkout's ``dags/`` and ``plugins/``,
    ``make docs`` rewrites its README. That is acceptable for a development tool, which is
    never installed anywhere else; installed elsewhere (``package_dir`` not at
    ``<checkout>/devtools/wechat_datacube_dev``) this raises :class:`CheckoutNotFoundError`
    naming what is missing, rather than letting Airflow start on a DAG folder that does
    not exist.
    """
    root = package_dir.resolve().parents[1]
    missing = [name for name in CHECKOUT_MARKERS if not (root / name).exists()]
    if missing:
        raise CheckoutNotFoundError(
            f"the development tools need the repository checkout they are installed from, but {root} has no "
            f"{', '.join(missing)}: install them from a checkout with `make install` (pip install -e devtools)"
        )
    return root
