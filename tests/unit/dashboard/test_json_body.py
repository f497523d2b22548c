"""The dashboard's one-pass JSON encoding gives the document FastAPI's encoder gave."""

from __future__ import annotations

import datetime as dt
import decimal
import json

import pytest
from fastapi.encoders import jsonable_encoder

from wechat_datacube.dashboard.json_body import DashboardJSONResponse, encode

REPORT_LIKE = {
    "account": "demo 公众号",
    "range": {"begin": dt.date(2026, 1, 1), "end": dt.date(2026, 12, 31)},
    "generated_at": dt.datetime(2026, 12, 1, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    "daily": [{"ref_date": dt.date(2026, 1, 1), "int_page_read_user": 12, "share_count": decimal.Decimal("340")}],
    "ratios": [decimal.Decimal("0.25"), 1.5, None, True],
    "sources": ({"user_source": 99999999, "label": "全部"},),
}


def test_same_document_as_jsonable_encoder() -> None:
    assert json.loads(encode(REPORT_LIKE)) == json.loads(json.dumps(jsonable_encoder(REPORT_LIKE)))


def test_decimals_keep_their_kind() -> None:
    decoded = json.loads(encode([decimal.Decimal("340"), decimal.Decimal("0.25")]))
    assert decoded == [340, 0.25] and isinstance(decoded[0], int) and isinstance(decoded[1], float)


def test_unknown_types_and_nan_are_refused() -> None:
    with pytest.raises(TypeError, match="cannot send a object"):
        encode({"x": object()})
    with pytest.raises(ValueError):
        encode({"x": float("nan")})


def test_response_body_is_utf8_json() -> None:
    response = DashboardJSONResponse(REPORT_LIKE)
    assert response.media_type == "application/json"
    assert "demo 公众号".encode() in response.body
