"""Row normalisation: flattening, typing, unknown fields, and clear errors for bad payloads."""

from __future__ import annotations

import datetime as dt

import pytest

from wechat_datacube.endpoints import ENDPOINTS, get_endpoint
from wechat_datacube.errors import BadPayloadError, DateRangeError, MalformedResponseError, SchemaDriftError
from wechat_datacube.storage.rows import normalize_rows, rows_from_body

D = dt.date(2025, 3, 10)
CTX = {"account": "wx_acc", "begin_date": D, "end_date": D}


def share_row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {"ref_date": "2025-03-10", "share_scene": 1, "share_user": 3, "share_count": 7}
    row.update(overrides)
    return row


def article_total_row(details: object) -> dict[str, object]:
    return {"ref_date": "2025-03-10", "msgid": "1000_1", "title": "Hello", "details": details}


def normalize(endpoint: str, rows: object, **ctx: object) -> list[dict[str, object]]:
    return normalize_rows(get_endpoint(endpoint), rows, **{**CTX, **ctx})  # type: ignore[arg-type]


def assert_names_context(exc: BadPayloadError, endpoint: str) -> None:
    text = str(exc)
    assert "account=wx_acc" in text
    assert f"endpoint={endpoint}" in text
    assert "dates=2025-03-10..2025-03-10" in text


# --- typing ----------------------------------------------------------------------


def test_integers_sent_as_strings_are_coerced() -> None:
    [row] = normalize("getusershare", [share_row(share_scene="2", share_user="123")])
    assert row["share_scene"] == 2
    assert row["share_user"] == 123


def test_dates_become_date_objects_and_account_is_added() -> None:
    [row] = normalize("getusershare", [share_row()])
    assert row["ref_date"] == D
    assert row["account"] == "wx_acc"


def test_every_registry_column_is_present_and_missing_metrics_are_none() -> None:
    spec = get_endpoint("getuserread")
    [row] = normalize("getuserread", [{"ref_date": "2025-03-10", "user_source": 0, "int_page_read_user": 5}])
    assert set(row) == {"account", *spec.column_names, "extra"}
    assert row["ori_page_read_user"] is None


def test_float_columns_accept_numbers_and_numeric_strings() -> None:
    rows = normalize(
        "getarticletotaldetail",
        [
            {
                "ref_date": "2025-03-10",
                "msgid": "9_1",
                "publish_type": 0,
                "detail_list": [{"stat_date": "2025-03-10", "read_finish_rate": "0.25", "read_avg_activetime": 12}],
            }
        ],
    )
    assert rows[0]["read_finish_rate"] == 0.25
    assert rows[0]["read_avg_activetime"] == 12.0


def test_jsonb_columns_keep_python_objects() -> None:
    source = [{"scene_desc": "chat", "user_count": 4}]
    [row] = normalize(
        "getarticleread",
        [{"ref_date": "2025-03-10", "msgid": "9_1", "detail": {"read_user": 4, "read_user_source": source}}],
    )
    assert row["read_user_source"] == source


def test_unknown_fields_go_to_extra() -> None:
    [row] = normalize("getusershare", [share_row(new_metric=5, nested={"a": [1]})])
    assert row["extra"] == {"new_metric": 5, "nested": {"a": [1]}}


def test_integer_msgid_is_kept_as_text() -> None:
    [row] = normalize("getarticleshare", [{"ref_date": "2025-03-10", "msgid": 12345, "detail": {"share_user": 1}}])
    assert row["msgid"] == "12345"


# --- flattening --------------------------------------------------------------------


def test_getarticletotal_details_are_flattened_with_parent_columns() -> None:
    details = [
        {"stat_date": "2025-03-10", "int_page_read_user": 10, "target_user": 100},
        {"stat_date": "2025-03-11", "int_page_read_user": 15, "target_user": 100},
    ]
    rows = normalize("getarticletotal", [article_total_row(details)])
    assert [(r["msgid"], r["title"], r["ref_date"], r["stat_date"], r["int_page_read_user"]) for r in rows] == [
        ("1000_1", "Hello", D, dt.date(2025, 3, 10), 10),
        ("1000_1", "Hello", D, dt.date(2025, 3, 11), 15),
    ]


def test_getarticletotaldetail_detail_list_is_flattened_with_publish_type() -> None:
    parent = {"ref_date": "2025-03-10", "msgid": "7_2", "publish_type": "1", "surprise": True}
    parent["detail_list"] = [{"stat_date": "2025-03-10", "read_user": "8", "brand_new": 1}]
    [row] = normalize("getarticletotaldetail", [parent])
    assert row["publish_type"] == 1
    assert row["read_user"] == 8
    assert row["extra"] == {"surprise": True, "brand_new": 1}


def test_article_with_empty_details_gives_no_rows() -> None:
    assert normalize("getarticletotal", [article_total_row([])]) == []


def test_missing_nested_list_is_a_bad_payload() -> None:
    with pytest.raises(BadPayloadError, match="no 'details' list") as err:
        normalize("getarticletotal", [{"ref_date": "2025-03-10", "msgid": "1_1", "title": "x"}])
    assert_names_context(err.value, "getarticletotal")


def test_nested_element_that_is_not_an_object_is_a_bad_payload() -> None:
    with pytest.raises(BadPayloadError, match=r"details\[0\] is a int"):
        normalize("getarticletotal", [article_total_row([5])])


# --- window and duplicates ---------------------------------------------------------


def test_rows_dated_outside_the_window_are_dropped() -> None:
    rows = normalize("getusershare", [share_row(), share_row(ref_date="2019-01-01"), share_row(ref_date="2025-03-11")])
    assert [r["ref_date"] for r in rows] == [D]


def test_a_padded_date_outside_the_window_is_dropped_not_stored() -> None:
    """The stray rule reads a date as the typing does: ' 2019-01-01 ' is typed 2019-01-01, so it is a stray."""
    rows = normalize("getusershare", [share_row(), share_row(ref_date=" 2019-01-01 ")])
    assert [r["ref_date"] for r in rows] == [D]


def test_a_row_dated_only_by_its_nested_element_is_judged_by_that_date() -> None:
    """Strays are judged on the rows as stored: a child that brings its own date outside the window is dropped."""
    stray = {"msgid": "2_1", "title": "old", "details": [{"ref_date": "2019-01-01", "stat_date": "2019-01-01"}]}
    rows = normalize("getarticletotal", [article_total_row([{"stat_date": "2025-03-10"}]), stray])
    assert [(r["msgid"], r["ref_date"]) for r in rows] == [("1000_1", D)]


def test_a_window_whose_begin_is_after_its_end_is_refused_by_date_range() -> None:
    with pytest.raises(DateRangeError, match="is after end_date") as err:
        normalize("getusershare", [share_row()], begin_date=D, end_date=D - dt.timedelta(days=1))
    assert "account=wx_acc" in str(err.value) and "endpoint=getusershare" in str(err.value)


def test_identical_duplicate_rows_are_collapsed() -> None:
    assert len(normalize("getusershare", [share_row(), share_row()])) == 1


def test_conflicting_duplicate_keys_are_a_bad_payload() -> None:
    with pytest.raises(BadPayloadError, match="appears twice"):
        normalize("getusershare", [share_row(share_user=1), share_row(share_user=2)])


# --- bad payloads: each kind has its own clear message -------------------------------


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (share_row(share_user="abc"), r"'share_user' \(bigint\) not an integer: 'abc'"),
        (share_row(share_user=[1, 2]), r"'share_user' holds a list where a bigint belongs: \[1, 2\]"),
        (share_row(share_user=True), "a boolean where an integer belongs"),
        (share_row(share_scene=2**40), r"out of range for int"),
        (share_row(ref_date="10/03/2025"), r"'ref_date' \(date\) not a YYYY-MM-DD date"),
        (share_row(ref_date="2025-02-30"), r"'ref_date' \(date\) not a YYYY-MM-DD date"),
        ({"share_scene": 1, "share_user": 1}, r"missing key field\(s\) ref_date"),
        (share_row(share_scene=None), r"missing key field\(s\) share_scene"),
        ("not a row", "row 0 is a str, not an object"),
    ],
    ids=[
        "text-for-int",
        "list-for-int",
        "bool-for-int",
        "int-overflow",
        "bad-date-format",
        "impossible-date",
        "missing-key",
        "null-key",
        "non-dict-row",
    ],
)
def test_bad_rows_raise_bad_payload_naming_account_endpoint_and_dates(row: object, message: str) -> None:
    with pytest.raises(BadPayloadError, match=message) as err:
        normalize("getusershare", [row])
    assert_names_context(err.value, "getusershare")


def test_float_column_rejects_text() -> None:
    with pytest.raises(BadPayloadError, match=r"'read_finish_rate' \(float\) not a number"):
        normalize(
            "getarticletotaldetail",
            [
                {
                    "ref_date": "2025-03-10",
                    "msgid": "1_1",
                    "detail_list": [{"stat_date": "2025-03-10", "read_finish_rate": "high"}],
                }
            ],
        )


def test_text_with_nul_character_is_a_bad_payload() -> None:
    with pytest.raises(BadPayloadError, match="NUL"):
        normalize("getarticleshare", [{"ref_date": "2025-03-10", "msgid": "1\x00_1", "detail": {"share_user": 1}}])


def test_rows_that_are_not_a_list_are_a_bad_payload() -> None:
    with pytest.raises(BadPayloadError, match="rows are a dict"):
        normalize("getusershare", {"ref_date": "2025-03-10"})


# --- rows_from_body ------------------------------------------------------------------


def test_rows_from_body_returns_the_list() -> None:
    body = {"list": [share_row()], "is_delay": False}
    assert rows_from_body(get_endpoint("getusershare"), body, **CTX) == [share_row()]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"errcode": 0}, "has no 'list'"),
        ({"list": {"a": 1}}, "has a 'list' that is a dict"),
        ({"list": None}, "has no 'list' array"),
        ([1, 2], "body is a list, not a JSON object"),
    ],
    ids=["absent", "object", "null", "body-not-object"],
)
def test_rows_from_body_rejects_a_body_without_a_list(body: object, message: str) -> None:
    """The same rule as the hook's: malformed (retried, raw kept), never an empty day."""
    with pytest.raises(MalformedResponseError, match=message) as err:
        rows_from_body(get_endpoint("getusershare"), body, **CTX)
    assert_names_context(err.value, "getusershare")


# --- every registry endpoint normalises a minimal row ------------------------------------


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_minimal_row_of_every_endpoint_normalises(name: str) -> None:
    spec = get_endpoint(name)
    sample = {"date": "2025-03-10", "int": 0, "bigint": 1, "text": "x", "float": 0.5, "jsonb": [], "bool": True}
    fields = {c.name: sample[c.type] for c in spec.columns}
    keys = {k: fields.pop(k) for k in (spec.parent_columns if spec.nested else spec.key)}
    if spec.detail:
        fields = {**{k: fields.pop(k) for k in spec.key if k in fields}, spec.detail: fields}
    raw = [{**keys, spec.nested: [fields]}] if spec.nested else [{**keys, **fields}]
    [row] = normalize(name, raw)
    assert row["ref_date"] == D
    assert row["extra"] == {}


def test_unknown_field_with_nan_is_a_bad_payload() -> None:
    with pytest.raises(BadPayloadError, match="an unknown field contains NaN or Infinity"):
        normalize("getusershare", [share_row(ratio=float("nan"))])


def test_jsonb_column_with_nul_character_is_a_bad_payload() -> None:
    source = [{"scene_desc": "a\x00b", "user_count": 1}]
    with pytest.raises(BadPayloadError, match=r"'read_user_source' \(jsonb\) contains a NUL character"):
        normalize(
            "getarticleread", [{"ref_date": "2025-03-10", "msgid": "1_1", "detail": {"read_user_source": source}}]
        )


# --- official shapes and schema drift ------------------------------------------------------


def test_detail_object_is_opened_so_its_numbers_land_in_typed_columns() -> None:
    item = {"ref_date": "2025-03-10", "detail": {"read_user": 41, "share_user": 3, "zaikan_user": 2, "new_one": 9}}
    [row] = normalize("getbizsummary", [item])
    assert (row["read_user"], row["share_user"], row["zaikan_user"]) == (41, 3, 2)
    assert row["extra"] == {"new_one": 9}


def test_rows_that_lost_every_metric_but_carry_unknown_keys_are_schema_drift() -> None:
    """The defect this guards against: a nested shape read flat stored NULL metrics and succeeded."""
    item = {"ref_date": "2025-03-10", "msgid": "1_1", "stats": {"read_user": 4}}
    with pytest.raises(SchemaDriftError, match="none of the documented metrics") as err:
        normalize("getarticleread", [item])
    assert err.value.unknown == ["stats"]
    assert err.value.missing == ["read_user", "read_user_source"]
    assert_names_context(err.value, "getarticleread")


def test_renamed_legacy_metrics_are_schema_drift() -> None:
    with pytest.raises(SchemaDriftError, match="unknown sharers, shares"):
        normalize("getusershare", [{"ref_date": "2025-03-10", "share_scene": 1, "sharers": 3, "shares": 7}])


def test_an_object_where_a_number_belongs_is_schema_drift() -> None:
    item = {"ref_date": "2025-03-10", "msgid": "1_1", "detail": {"share_user": {"total": 5, "fans": 2}}}
    with pytest.raises(SchemaDriftError, match="'share_user' holds an object where a bigint belongs") as err:
        normalize("getarticleshare", [item])
    assert err.value.unknown == ["fans", "total"]


def test_a_detail_that_is_not_an_object_is_schema_drift() -> None:
    with pytest.raises(SchemaDriftError, match="'detail' is a list, not an object"):
        normalize("getarticleshare", [{"ref_date": "2025-03-10", "msgid": "1_1", "detail": [1]}])


def test_sparse_rows_without_unknown_keys_are_not_drift() -> None:
    [row] = normalize("getarticleshare", [{"ref_date": "2025-03-10", "msgid": "1_1", "detail": {}}])
    assert row["share_user"] is None


def test_an_answer_whose_rows_all_lie_outside_the_window_is_malformed_not_empty() -> None:
    with pytest.raises(MalformedResponseError, match="all 2 row"):
        normalize("getusershare", [share_row(ref_date="2019-01-01"), share_row(ref_date="2019-01-02")])
