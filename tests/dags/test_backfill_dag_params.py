"""The bulk backfill DAG's trigger form, as Airflow 3.3 builds it from the serialized params.

The form (``airflow/ui``, ``FlexibleForm``) marks a param *required* — an asterisk, and an
empty field refuses to submit — when its schema has a ``type`` that is not a list holding
``"null"``; the widget is chosen by the first type that is not ``"null"``. These tests apply
that rule to what the REST API hands the form: the DAG serialized, deserialized and dumped
per param (``DAGDetailsResponse.params``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "wechat_datacube_backfill.py"
OPTIONAL = ("accounts", "begin_date", "end_date", "endpoints")


def _form_required(schema: dict[str, Any]) -> bool:
    """The UI's rule (``isRequired`` in the 3.3 bundle): a type, and not a list allowing null."""
    kind = schema.get("type")
    return bool(kind) and (not isinstance(kind, list) or "null" not in kind)


def _form_widget_type(schema: dict[str, Any]) -> str:
    """The UI's widget choice: the first type that is not null."""
    kind = schema.get("type") or "string"
    return next((t for t in kind if t != "null"), "string") if isinstance(kind, list) else kind


@pytest.fixture(scope="module")
def serialized() -> Any:
    from airflow.serialization.serialized_objects import DagSerialization

    spec = importlib.util.spec_from_file_location("wechat_datacube_backfill_params_under_test", DAG_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return DagSerialization.from_dict(DagSerialization.to_dict(module.build_backfill_dag()))


@pytest.fixture(scope="module")
def form(serialized: Any) -> dict[str, dict[str, Any]]:
    """What ``GET /api/v2/dags/wechat_datacube_backfill/details`` gives the form per param."""
    return {name: param.dump() for name, param in serialized.params.items()}


def test_optional_params_are_not_marked_required(form: dict[str, dict[str, Any]]) -> None:
    assert {name: _form_required(form[name]["schema"]) for name in OPTIONAL} == dict.fromkeys(OPTIONAL, False)


def test_params_keep_their_widgets_and_defaults(form: dict[str, dict[str, Any]]) -> None:
    assert _form_widget_type(form["accounts"]["schema"]) == "array"
    assert _form_widget_type(form["endpoints"]["schema"]) == "array"
    assert form["endpoints"]["schema"]["examples"][:2] == ["legacy", "replacement"]  # the pick list
    assert _form_widget_type(form["begin_date"]["schema"]) == "string" and form["begin_date"]["schema"]["format"] == "date"
    assert {name: form[name]["value"] for name in OPTIONAL} == {
        "accounts": [], "begin_date": None, "end_date": None, "endpoints": [],
    }  # fmt: skip


@pytest.mark.parametrize("value", [None, [], ["demo"]])
def test_an_emptied_accounts_field_is_valid(serialized: Any, value: Any) -> None:
    merged = serialized.params.deep_merge({"accounts": value})
    assert merged.get_param("accounts").resolve(raises=True) == value


@pytest.mark.parametrize("value", [None, [], ["legacy", "getusershare"], "getusershare"])
def test_an_emptied_endpoints_field_is_valid(serialized: Any, value: Any) -> None:
    merged = serialized.params.deep_merge({"endpoints": value})
    assert merged.get_param("endpoints").resolve(raises=True) == value


def test_an_unknown_endpoint_in_the_list_is_still_refused(serialized: Any) -> None:
    merged = serialized.params.deep_merge({"endpoints": ["getuserreed"]})
    with pytest.raises(Exception, match="getuserreed"):
        merged.get_param("endpoints").resolve(raises=True)


def test_the_planner_reads_null_as_empty() -> None:
    """A form that sends null (a cleared field) means what [] means: all accounts, configured endpoints."""
    from wechat_datacube.backfill_plan import resolve_accounts
    from wechat_datacube.run_conf import endpoint_names

    everyone = [object(), object()]
    assert resolve_accounts(everyone, None) == everyone  # type: ignore[arg-type]
    assert endpoint_names(None) == [] == endpoint_names([])
