"""Which Celery worker ran a task, when several workers share one machine.

Airflow records a task instance's ``hostname`` from ``[core] hostname_callable``. Two
workers on one host would both report the machine's name, and nobody could tell from the
task instances which worker ran what — the question a two-worker test, and a person
reading the UI after a worker was killed, must answer. A local Celery cluster therefore
points ``hostname_callable`` here and gives each worker (and so each task process it
starts) its own name in :data:`WORKER_NAME_ENV`. Processes without that variable (the
scheduler, the api-server) report the machine's name as usual.
"""

from __future__ import annotations

import os
import socket

WORKER_NAME_ENV = "WECHAT_DATACUBE_WORKER_HOSTNAME"
#: The dotted path for ``AIRFLOW__CORE__HOSTNAME_CALLABLE``.
HOSTNAME_CALLABLE = f"{__name__}.hostname"


def hostname() -> str:
    """This worker's name if it has one, else the machine's fully qualified name (Airflow's default)."""
    return os.environ.get(WORKER_NAME_ENV) or socket.getfqdn()
