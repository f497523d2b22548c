"""Property: whatever JSON WeChat sends, normalisation gives typed rows or one of our errors.

Never a crash (KeyError, TypeError, RecursionError ...) and never a value that PostgreSQL
would refuse later (NaN, Infinity, U+0000, an integer out of range): those would surface as
a database error with no account, endpoint or dates, after the API call was spent.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wechat_datacube.endpoints import ENDPOINTS, EndpointSpec
from wechat_datacube.errors import WeChatDatacubeError
from wechat_datacube.storage.columns import ACCOUNT_COLUMN, EXTRA_COLUMN
from wechat_datacube.storage.rows import normalize_rows, rows_from_body

DAY = dt.date(2025, 11, 3)
INT_RANGES = {"int": (-(2**31), 2**31 - 1), "bigint": (-(2**63), 2**63 - 1)}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["2025-11-03", "2025-11-04", "2019-01-01", "2025-02-30", "12", " 7 ", "1e3", "\x00", "NaN"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12,
)


SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "wechat_samples"


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value: dict keys and list indexes down to the leaves."""
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy = list(value) if isinstance(value, list) else dict(value)
    copy[head] = _replace(value[head], rest, new)
    return copy


#: Values that have broken pipelines like this one: PostgreSQL refuses them, or they pass typing wrongly.
NASTY = st.sampled_from(
    [math.nan, math.inf, -math.inf, 2**31, 2**63, -(2**63) - 1, 1.5, True, "", "\x00", "１２", "0x1F", {}, [], {"a": 1}]
)


@st.composite
def mutated_samples(draw: st.DrawFn, name: str) -> Any:
    """The official sample of ``name`` with a few places replaced by arbitrary JSON (often still valid).

    Leaves are picked more often than containers, and the new value is often one of NASTY,
    so that each typed column meets the values most likely to slip through.
    """
    body = json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        places = [p for p in _paths(body) if len(p) > 1 and p[0] == "list"]
        leaves = [p for p in places if not isinstance(_get(body, p), (dict, list))]
        path = draw(st.sampled_from(leaves or places)) if draw(st.booleans()) or not places else draw(
            st.sampled_from(places)
        )
        body = _replace(body, path, draw(st.one_of(NASTY, json_values)))
    return body


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _sample_dates(name: str) -> tuple[dt.date, dt.date]:
    body = json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    days = sorted({dt.date.fromisoformat(item["ref_date"]) for item in body["list"]})
    return days[0], days[-1]


def _field_names(spec: EndpointSpec) -> list[str]:
    names = [*spec.column_names, "detail", "details", "detail_list", "title", "surprise"]
    return sorted(set(names))


@st.composite
def bodies(draw: st.DrawFn, spec: EndpointSpec) -> Any:
    """Bodies shaped roughly like the endpoint's (so the deep paths are reached) or any JSON at all."""
    field = st.sampled_from(_field_names(spec))
    value = st.one_of(json_values, st.just(DAY.isoformat()))
    item = st.dictionaries(field, st.one_of(value, st.dictionaries(field, value, max_size=6),
                                            st.lists(st.dictionaries(field, value, max_size=6), max_size=3)),
                           max_size=8)
    shaped = st.fixed_dictionaries({"list": st.lists(item, max_size=4)},
                                   optional={"is_delay": json_values, "errcode": json_values})
    return draw(st.one_of(shaped, json_values))


def _assert_storable(spec: EndpointSpec, row: dict[str, Any], begin: dt.date = DAY, end: dt.date = DAY) -> None:
    types = {c.name: c.type for c in spec.columns}
    assert set(row) == {ACCOUNT_COLUMN, EXTRA_COLUMN, *types}
    for name, type_ in types.items():
        value = row[name]
        if value is None:
            assert name not in spec.key, f"key column {name} is NULL"
            continue
        if type_ in INT_RANGES:
            low, high = INT_RANGES[type_]
            assert type(value) is int and low <= value <= high
        elif type_ == "float":
            assert type(value) is float and math.isfinite(value)
        elif type_ == "text":
            assert isinstance(value, str) and "\x00" not in value
        elif type_ == "date":
            assert type(value) is dt.date and (name != spec.date_column or begin <= value <= end)
        elif type_ == "jsonb":
            _assert_jsonb_storable(value)
    _assert_jsonb_storable(row[EXTRA_COLUMN])


def _assert_jsonb_storable(value: Any) -> None:
    """No NaN/Infinity (json.dumps refuses them) and no U+0000 in any string, keys included."""
    json.dumps(value, allow_nan=False)
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            assert "\x00" not in item
        elif isinstance(item, dict):
            stack.extend([*item.keys(), *item.values()])
        elif isinstance(item, list):
            stack.extend(item)


def _check(spec: EndpointSpec, body: Any, begin: dt.date = DAY, end: dt.date = DAY) -> list[dict[str, Any]]:
    """Normalise ``body``: typed rows that PostgreSQL will take, or our error naming where; [] on error."""
    try:
        raw = rows_from_body(spec, body, account="acc", begin_date=begin, end_date=end)
        rows = normalize_rows(spec, raw, account="acc", begin_date=begin, end_date=end)
    except WeChatDatacubeError as exc:
        text = str(exc)
        assert "account=acc" in text and f"endpoint={spec.name}" in text and f"dates={begin}..{end}" in text
        return []
    for row in rows:
        _assert_storable(spec, row, begin, end)
    return rows


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), name=st.sampled_from(sorted(ENDPOINTS)))
def test_any_body_gives_storable_typed_rows_or_one_of_our_errors(data: st.DataObject, name: str) -> None:
    spec = ENDPOINTS[name]
    _check(spec, data.draw(bodies(spec)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), name=st.sampled_from(sorted(ENDPOINTS)))
def test_official_samples_with_arbitrary_values_give_storable_rows_or_our_errors(data: st.DataObject, name: str) -> None:
    """Mutations of the documented bodies reach the typing of every field, where a wild value is likeliest."""
    _check(ENDPOINTS[name], data.draw(mutated_samples(name)), *_sample_dates(name))


def _field_places(name: str) -> dict[str, list[tuple[Any, ...]]]:
    """Field name -> every path in the sample where a field of that name holds a value."""
    body = json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    out: dict[str, list[tuple[Any, ...]]] = {}
    for path in _paths(body):
        if len(path) > 2 and path[0] == "list" and isinstance(path[-1], str):
            out.setdefault(path[-1], []).append(path)
    return out


FIELD_CASES = [(name, field) for name in sorted(ENDPOINTS) for field in sorted(_field_places(name))]


@pytest.mark.parametrize(("name", "field"), FIELD_CASES, ids=[f"{n}.{f}" for n, f in FIELD_CASES])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_documented_field_meets_wild_values_safely(data: st.DataObject, name: str, field: str) -> None:
    """Each field of each sample, one at a time, set to a value drawn from NASTY or any JSON."""
    body = json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    path = data.draw(st.sampled_from(_field_places(name)[field]))
    body = _replace(body, path, data.draw(st.one_of(NASTY, NASTY, json_values)))
    _check(ENDPOINTS[name], body, *_sample_dates(name))


def test_the_unmutated_samples_give_rows() -> None:
    """The mutation test above starts from bodies that normalise: otherwise it would prove little."""
    for name, spec in ENDPOINTS.items():
        assert _check(spec, json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8")), *_sample_dates(name))
