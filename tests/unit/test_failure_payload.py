"""What storage keeps of a failed response: enough to diagnose, never a credential."""

from __future__ import annotations

import json

import pytest

from wechat_datacube.storage import failure_payload

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
