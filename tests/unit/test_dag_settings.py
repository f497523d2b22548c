"""The shared task defaults (dag_settings): the first retry delay, which the test suites shorten.

WECHAT_DATACUBE_RETRY_DELAY_SECONDS is read when dag_settings is imported, and validated.
(The DAGs the factory builds are tested in tests/dags/test_dag_integrity.py.)
"""

from __future__ import annotations

import datetime as dt

import pytest

from wechat_datacube.dag_settings import RETRY_DELAY_ENV, retry_delay_from_env


def test_default_first_retry_delay_is_two_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RETRY_DELAY_ENV, raising=False)
    assert retry_delay_from_env() == dt.timedelta(minutes=2)


def test_env_overrides_the_first_retry_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RETRY_DELAY_ENV, "2.5")
    assert retry_delay_from_env() == dt.timedelta(seconds=2.5)


@pytest.mark.parametrize("value", ["soon", "0", "-3"])
def test_bad_value_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(RETRY_DELAY_ENV, value)
    with pytest.raises(ValueError, match=RETRY_DELAY_ENV):
        retry_delay_from_env()
