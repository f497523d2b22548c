"""Conformance: WeChat's documented response bodies go through the real normaliser intact.

Each file in ``tests/fixtures/wechat_samples/`` is one success body written from the official
API page's example (see the README there). This module walks those bodies with its OWN
table of where each endpoint keeps its numbers (``SHAPES`` below), deliberately independent
of the endpoint registry: the registry was once wrong about the replacement endpoints'
nesting and its own tests agreed with it. The expected rows computed here are compared with
what ``rows_from_body`` + ``normalize_rows`` return for the registry's spec.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from wechat_datacube.endpoints import ENDPOINTS, get_endpoint
from wechat_datacube.storage.rows import normalize_rows, rows_from_body

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "wechat_samples"
ACCOUNT = "acc"
NEW_FIELD = "brand_new_metric"
NEW_VALUE = 12345


class Shape(NamedTuple):
    """Where one endpoint's list items keep their fields, as the official pages document it."""

    #: Fields that identify one flattened row.
    key: tuple[str, ...]
    #: List inside each item whose elements become one row each (None: the item is the row).
    nested: str | None = None
    #: Object (inside the item, or inside each nested element) that holds the numbers.
    detail: str | None = None
    #: Item fields copied into every row flattened from its nested list.
    parent: tuple[str, ...] = ()
    #: The body carries a top-level ``is_delay`` flag.
    is_delay: bool = False
    #: What a ref_date labels: a day, the Monday of a week or the 1st of a month.
    period: str = "day"


SHAPES: dict[str, Shape] = {
    # Legacy six: flat items; getarticletotal nests its cumulative rows in ``details``.
    "getarticlesummary": Shape(key=("ref_date", "msgid")),
    "getarticletotal": Shape(
        key=("ref_date", "msgid", "stat_date"), nested="details", parent=("ref_date", "msgid", "title")
    ),
    "getuserread": Shape(key=("ref_date", "user_source")),
    "getuserreadhour": Shape(key=("ref_date", "ref_hour", "user_source")),
    "getusershare": Shape(key=("ref_date", "share_scene")),
    "getusersharehour": Shape(key=("ref_date", "ref_hour", "share_scene")),
    # Replacement four: keys at the top of the item, numbers in ``detail`` ...
    "getarticleread": Shape(key=("ref_date", "msgid"), detail="detail", is_delay=True),
    "getarticleshare": Shape(key=("ref_date", "msgid"), detail="detail", is_delay=True),
    "getbizsummary": Shape(key=("ref_date",), detail="detail", is_delay=True),
    # ... or, for getarticletotaldetail, directly in each element of ``detail_list``.
    "getarticletotaldetail": Shape(
        key=("ref_date", "msgid", "stat_date"),
        nested="detail_list",
        parent=("ref_date", "msgid", "publish_type"),
        is_delay=True,
    ),
    # User, message and interface analysis: flat items, like the legacy six.
    "getusersummary": Shape(key=("ref_date", "user_source")),
    "getusercumulate": Shape(key=("ref_date",)),
    "getupstreammsg": Shape(key=("ref_date", "msg_type")),
    "getupstreammsghour": Shape(key=("ref_date", "ref_hour", "msg_type")),
    "getupstreammsgweek": Shape(key=("ref_date", "msg_type"), period="week"),
    "getupstreammsgmonth": Shape(key=("ref_date", "msg_type"), period="month"),
    "getupstreammsgdist": Shape(key=("ref_date", "count_interval")),
    "getupstreammsgdistweek": Shape(key=("ref_date", "count_interval"), period="week"),
    "getupstreammsgdistmonth": Shape(key=("ref_date", "count_interval"), period="month"),
    "getinterfacesummary": Shape(key=("ref_date",)),
    "getinterfacesummaryhour": Shape(key=("ref_date", "ref_hour")),
}

#: Whether a date can label a period, by the old combined page's rule "每个月/周的周期数据的数据标注日期
#: 在当月/当周的第一天(当月1日或周一)" (written out here, not taken from wechat_datacube.periods).
LABEL_RULES = {
    "day": lambda day: True,
    "week": lambda day: day.isoweekday() == 1,
    "month": lambda day: day.day == 1,
}

#: Fields real answers carry although the official page does not document them, so the samples
#: leave them out: the registry still types them (see the README's "Not included").
UNDOCUMENTED_TYPED: dict[str, dict[str, Any]] = {
    "getarticlesummary": {"user_source": 0},
    "getusercumulate": {"user_source": 0},
}

#: Fields the normaliser returns as ``datetime.date``.
DATE_FIELDS = frozenset({"ref_date", "stat_date"})
#: Fields that are lists of objects (stored as jsonb, compared as the JSON value).
SCENE_LIST_FIELD = "read_user_source"
ALL_SCENE = "全部"

SAMPLE_NAMES = sorted(path.stem for path in SAMPLES_DIR.glob("*.json"))


# --- walking a sample with the module's own shape table ---------------------------


def load_sample(endpoint: str) -> dict[str, Any]:
    return json.loads((SAMPLES_DIR / f"{endpoint}.json").read_text(encoding="utf-8"))


def metric_holders(endpoint: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects in ``body`` that hold the metrics: one per flattened row."""
    shape = SHAPES[endpoint]
    holders = []
    for item in body["list"]:
        elements = item[shape.nested] if shape.nested else [item]
        for element in elements:
            holders.append(element[shape.detail] if shape.detail else element)
    return holders


def flatten(endpoint: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict of (field -> raw JSON value) per row the sample describes, containers removed."""
    shape = SHAPES[endpoint]
    rows = []
    for item in body["list"]:
        if shape.nested:
            assert set(item) == {*shape.parent, shape.nested}, (
                f"{endpoint}: item fields {sorted(item)} are not the shape table's parent fields + {shape.nested!r}"
            )
            parent = {name: item[name] for name in shape.parent}
            elements = item[shape.nested]
        else:
            parent, elements = {}, [item]
        for element in elements:
            fields = {**parent, **{k: v for k, v in element.items() if k != shape.detail}}
            if shape.detail:
                assert isinstance(element[shape.detail], dict), f"{endpoint}: {shape.detail!r} is not an object"
                fields.update(element[shape.detail])
            rows.append(fields)
    return rows


def as_typed(fields: dict[str, Any]) -> dict[str, Any]:
    """The sample's raw values as the normaliser types them (dates become ``datetime.date``)."""
    return {name: dt.date.fromisoformat(value) if name in DATE_FIELDS else value for name, value in fields.items()}


def expected_rows(endpoint: str, body: dict[str, Any]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """key -> {field: typed value} for every row of the sample."""
    key = SHAPES[endpoint].key
    rows = [as_typed(fields) for fields in flatten(endpoint, body)]
    by_key = {tuple(row[k] for k in key): row for row in rows}
    assert len(by_key) == len(rows), f"{endpoint}: the sample repeats a key"
    return by_key


def window(body: dict[str, Any]) -> tuple[dt.date, dt.date]:
    dates = [dt.date.fromisoformat(item["ref_date"]) for item in body["list"]]
    return min(dates), max(dates)


#: Samples whose rows carry a read_user_source scene list.
SCENE_LIST_ENDPOINTS = [
    name for name in SAMPLE_NAMES if any(SCENE_LIST_FIELD in fields for fields in flatten(name, load_sample(name)))
]


# --- running a sample through the real normaliser ---------------------------------


def normalise(endpoint: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    spec = get_endpoint(endpoint)
    begin, end = window(body)
    ctx = {"account": ACCOUNT, "begin_date": begin, "end_date": end}
    return normalize_rows(spec, rows_from_body(spec, body, **ctx), **ctx)


def by_key(endpoint: str, rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(row[k] for k in SHAPES[endpoint].key): row for row in rows}


def typed_values(row: dict[str, Any]) -> dict[str, Any]:
    """The typed columns of a normalised row that hold a value."""
    return {name: value for name, value in row.items() if name not in ("account", "extra") and value is not None}


# --- the samples cover the registry ----------------------------------------------


def test_every_registry_endpoint_has_a_sample_and_a_shape() -> None:
    assert sorted(ENDPOINTS) == SAMPLE_NAMES
    assert sorted(SHAPES) == SAMPLE_NAMES


# --- the samples themselves ------------------------------------------------------


@pytest.mark.parametrize("endpoint", SAMPLE_NAMES)
def test_sample_carries_is_delay_exactly_when_documented(endpoint: str) -> None:
    body = load_sample(endpoint)
    if SHAPES[endpoint].is_delay:
        assert isinstance(body.get("is_delay"), bool)
    else:
        assert "is_delay" not in body
    assert set(body) <= {"list", "is_delay"}


@pytest.mark.parametrize("endpoint", SAMPLE_NAMES)
def test_sample_rows_hold_distinct_values_so_a_swapped_column_is_caught(endpoint: str) -> None:
    """Numbers only: a cumulative row's first stat_date is its ref_date, as the pages define it."""
    for fields in flatten(endpoint, load_sample(endpoint)):
        numbers = [value for value in fields.values() if isinstance(value, (int, float)) and not isinstance(value, bool)]
        repeated = sorted({value for value in numbers if numbers.count(value) > 1})
        assert not repeated, f"{endpoint}: row {fields} repeats {repeated}"


@pytest.mark.parametrize("endpoint", SAMPLE_NAMES)
def test_sample_ref_dates_label_their_period_and_the_registry_agrees(endpoint: str) -> None:
    period = SHAPES[endpoint].period
    assert get_endpoint(endpoint).period == period
    for item in load_sample(endpoint)["list"]:
        assert LABEL_RULES[period](dt.date.fromisoformat(item["ref_date"])), f"{endpoint}: {item['ref_date']}"


@pytest.mark.parametrize("endpoint", SCENE_LIST_ENDPOINTS)
def test_sample_scene_lists_include_the_all_scene_equal_to_read_user(endpoint: str) -> None:
    for fields in flatten(endpoint, load_sample(endpoint)):
        scenes = {scene["scene_desc"]: scene["user_count"] for scene in fields[SCENE_LIST_FIELD]}
        assert scenes[ALL_SCENE] == fields["read_user"]


# --- the normaliser keeps every documented field ----------------------------------


@pytest.mark.parametrize("endpoint", SAMPLE_NAMES)
def test_each_sample_row_becomes_exactly_one_stored_row(endpoint: str) -> None:
    body = load_sample(endpoint)
    rows = normalise(endpoint, body)
    assert len(rows) == len(flatten(endpoint, body))
    assert by_key(endpoint, rows).keys() == expected_rows(endpoint, body).keys()


@pytest.mark.parametrize("endpoint", SAMPLE_NAMES)
def test_every_documented_field_lands_in_its_typed_column(endpoint: str) -> None:
    body = load_sample(endpoint)
    actual = by_key(endpoint, normalise(endpoint, body))
    for key, fields in expected_rows(endpoint, body).items():
        assert key in actual, f"{endpoint}: no stored row for key {key}"
        assert typed_values(actual[key]) == fields, f"{endpoint} row {key}"
        assert actual[key]["account"] == ACCOUNT


@pytest.mark.parametrize("endpoint", SAMPLE_NAMES)
def test_no_documented_field_ends_up_in_extra(endpoint: str) -> None:
    rows = normalise(endpoint, load_sample(endpoint))
    assert rows
    for row in rows:
        assert row["extra"] == {}, f"{endpoint}: documented fields left untyped: {sorted(row['extra'])}"


@pytest.mark.parametrize("endpoint", SAMPLE_NAMES)
def test_undocumented_metric_is_kept_in_extra_beside_the_typed_fields(endpoint: str) -> None:
    body = copy.deepcopy(load_sample(endpoint))
    for holder in metric_holders(endpoint, body):
        holder[NEW_FIELD] = NEW_VALUE
    expected = expected_rows(endpoint, load_sample(endpoint))
    actual = by_key(endpoint, normalise(endpoint, body))
    assert actual.keys() == expected.keys()
    for key, fields in expected.items():
        assert actual[key]["extra"] == {NEW_FIELD: NEW_VALUE}, f"{endpoint} row {key}"
        assert typed_values(actual[key]) == fields, f"{endpoint} row {key}"


@pytest.mark.parametrize("endpoint", sorted(UNDOCUMENTED_TYPED))
def test_undocumented_fields_of_real_answers_are_typed_not_left_in_extra(endpoint: str) -> None:
    body = copy.deepcopy(load_sample(endpoint))
    added = UNDOCUMENTED_TYPED[endpoint]
    assert not set(added) & set(flatten(endpoint, body)[0]), f"{endpoint}: the sample documents {sorted(added)}"
    for holder in metric_holders(endpoint, body):
        holder.update(added)
    expected = expected_rows(endpoint, load_sample(endpoint))
    actual = by_key(endpoint, normalise(endpoint, body))
    assert actual.keys() == expected.keys()
    for key, fields in expected.items():
        assert actual[key]["extra"] == {}, f"{endpoint} row {key}"
        assert typed_values(actual[key]) == {**fields, **added}, f"{endpoint} row {key}"
