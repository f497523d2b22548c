"""What storage keeps of a failed response: enough to diagnose, never a credential."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from wechat_datacube.errors import BadPayloadError
from wechat_datacube.storage.payloads import body_json, failure_payload

TOKEN = "SECRET_TOKEN_1234567890"


@pytest.mark.parametrize(
    "raw",
    [
        f'{{"access_token":"{TOKEN}","expires_in":72',  # truncated /cgi-bin/token body: kept as text
        f'{{"access_token": "{TOKEN}", "expires_in": 7200}}',  # parsed: kept as JSON
        f'{{"access_token": "{TOKEN}", "expires_in": 7200}}'.encode(),
        {"nested": [{"component_access_token": TOKEN}]},
        {"errmsg": f"bad request for https://h/x?access_token={TOKEN}"},
    ],
)
def test_failure_payload_never_keeps_a_token(raw: object) -> None:
    kept = json.dumps(failure_payload(raw))
    assert TOKEN not in kept
    assert "***" in kept


def test_failure_payload_keeps_the_rest_for_diagnosis() -> None:
    kept = failure_payload('{"access_token": "x", "expires_in": 7200, "errcode": 0}')
    assert kept == {"access_token": "***", "expires_in": 7200, "errcode": 0}
    assert failure_payload("<html>502 Bad Gateway</html>") == "<html>502 Bad Gateway</html>"


@pytest.mark.parametrize(
    "raw",
    [
        {"access_token": TOKEN, "ratio": float("nan"), "list": []},  # a token beside a NaN
        {"errmsg": f"see https://h/x?access_token={TOKEN}", "ratio": float("inf")},
        f'{{"access_token": "{TOKEN}", "ratio": NaN}}',  # text Python's parser accepts
        {"list": [{"note": "a\x00b", "component_access_token": TOKEN}]},
    ],
)
def test_a_body_jsonb_cannot_hold_is_kept_redacted_never_as_a_repr(raw: object) -> None:
    kept = failure_payload(raw)
    text = json.dumps(kept, allow_nan=False)  # storable: no NaN, no Infinity
    assert TOKEN not in text
    assert "\\u0000" not in text
    assert not isinstance(kept, str)  # the structure, not a repr of it


def test_non_finite_numbers_and_nul_stay_visible_as_text() -> None:
    kept = failure_payload({"a": float("nan"), "b": [float("inf"), -float("inf")], "c\x00": "x\x00y", "d": 1.5})
    assert kept == {"a": "NaN", "b": ["Infinity", "-Infinity"], "c\ufffd": "x\ufffdy", "d": 1.5}


def test_a_value_of_no_json_type_is_kept_as_its_redacted_text() -> None:
    kept = failure_payload({"when": dt.date(2025, 3, 10), "url": (f"https://h/?access_token={TOKEN}",)})
    assert kept == {"when": "2025-03-10", "url": ["https://h/?access_token=***"]}


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"list": [], "sim_unknown": float("nan")}, "body['sim_unknown']"),
        ({"list": [], "is_delay": True, "ratio": float("-inf")}, "body['ratio']"),
        ({"list": [{"ref_date": "2025-03-10", "extra": {"note": "a\x00"}}]}, "body['list'][0]['extra']['note']"),
        ({"list": [], "key\x00": 1}, "body['key\\x00']"),
    ],
)
def test_body_json_refuses_what_jsonb_cannot_hold_naming_the_place_and_window(body: object, where: str) -> None:
    with pytest.raises(BadPayloadError) as caught:
        body_json(body, account="acme", endpoint="getusershare", begin_date="2025-03-10", end_date="2025-03-16")
    message = str(caught.value)
    assert where in message
    assert "account=acme" in message and "endpoint=getusershare" in message
    assert "dates=2025-03-10..2025-03-16" in message


def test_body_json_keeps_a_literal_backslash_u0000_and_returns_the_text() -> None:
    body = {"list": [], "note": "\\u0000 is how JSON writes NUL"}
    text = body_json(body, account="acme", endpoint="getusershare", begin_date="2025-03-10", end_date="2025-03-10")
    assert json.loads(text) == body
