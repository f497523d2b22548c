"""DailyReportOperator's own rules: which day it reports, what it keeps, and a cheap import for DAG parsing."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wechat_datacube.alerts.dispatch import AlertTargets, NotifierSpec
from wechat_datacube.alerts.report_operator import DailyReportOperator
from wechat_datacube.errors import ConfigError

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"


def operator(**kwargs: object) -> DailyReportOperator:
    return DailyReportOperator(task_id="daily_report", account="demo", **kwargs)  # type: ignore[arg-type]


def test_business_day_is_the_data_interval_start_in_beijing() -> None:
    # 2026-06-18 16:30 UTC is 2026-06-19 00:30 in Beijing.
    start = dt.datetime(2026, 6, 18, 16, 30, tzinfo=dt.UTC)
    assert operator().business_day({"data_interval_start": start}) == dt.date(2026, 6, 19)
    # The daily DAGs' interval starts at D 10:00 Beijing (02:00 UTC): day D.
    assert operator().business_day({"data_interval_start": dt.datetime(2026, 6, 18, 2, tzinfo=dt.UTC)}) == dt.date(
        2026, 6, 18)


def test_business_day_falls_back_to_the_logical_date() -> None:
    moment = dt.datetime(2026, 6, 18, 23, tzinfo=dt.UTC)
    assert operator().business_day({"data_interval_start": None, "logical_date": moment}) == dt.date(2026, 6, 19)


def test_a_run_without_any_date_is_a_config_error_naming_the_account() -> None:
    with pytest.raises(ConfigError, match=r"business day \[account=demo\]"):
        operator().business_day({})


def test_targets_are_kept_as_json_data_whether_given_as_json_or_as_alert_targets() -> None:
    targets = AlertTargets(robots=("wecom_ops",), notifiers=(NotifierSpec("pkg.mod.Notifier", "text", {"a": 1}),),
                           outbox_conn_id="pg")
    assert operator(alert_targets=targets).alert_targets == targets.as_json()
    assert operator(alert_targets=targets.as_json()).alert_targets == targets.as_json()
    assert operator().alert_targets == {}
    assert not AlertTargets.from_json(operator().alert_targets)  # nothing configured: nothing sent


def test_importing_the_operator_pulls_in_nothing_of_the_package_but_itself() -> None:
    """DAG files build this task at every parse: the figures, queries and psycopg load only in execute."""
    code = (
        "import sys; import airflow.sdk; before = set(sys.modules);"
        "import wechat_datacube.alerts.report_operator;"
        "import json; print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(PLUGINS)}, check=True)
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert not [m for m in loaded if m.startswith(("psycopg", "wechat_datacube.dashboard", "wechat_datacube.storage"))]
    assert "wechat_datacube.alerts.daily_report" not in loaded
    assert "wechat_datacube.alerts.report_operator" in loaded
