"""Test-wide setup: an isolated AIRFLOW_HOME and the shared fixtures.

Environment is set before anything imports Airflow, so no test touches a user's
~/airflow. Fixtures live in tests/fixtures/ (one module per real service).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_home = Path(tempfile.mkdtemp(prefix="wdc-airflow-home-"))
os.environ.setdefault("AIRFLOW_HOME", str(_home))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(REPO / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(REPO / "plugins"))
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
# A fixed Fernet key so encrypted-at-rest paths are exercised in tests.
os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", "0Fz1I2XBvyHqBRRh4nRw5kxQkV5BbTUe3jC7vI6wq2c=")

if str(REPO / "plugins") not in sys.path:
    sys.path.insert(0, str(REPO / "plugins"))

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.simulator",
    "tests.fixtures.airflow",
    "tests.fixtures.wechat_conn",
    "tests.fixtures.dashboard",
    "tests.fixtures.broker",
    "tests.fixtures.wecom_robot",
]
