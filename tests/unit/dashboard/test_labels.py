"""Code values as charted: the documented follow sources and message types, and codes nobody documented yet."""

from __future__ import annotations

import pytest

from wechat_datacube.dashboard.labels import (
    FOLLOW_SOURCE_LABELS,
    follow_source_label,
    msg_type_label,
    user_source_label,
)


@pytest.mark.parametrize(
    ("code", "label"),
    [(0, "other sources"), (1, "Official Account search"), (17, "business card"), (30, "QR code scan"),
     (57, "account name in an article"), (100, "WeChat ads"), (149, "Mini Program"), (161, "reposted by others"),
     (200, "Channels (视频号)"), (201, "live")],
)
def test_every_documented_follow_source_has_its_name(code: int, label: str) -> None:
    assert follow_source_label(code) == label


def test_follow_source_0_is_one_source_not_a_total_and_differs_from_the_read_source_0() -> None:
    assert "total" not in follow_source_label(0) and "all" not in follow_source_label(0)
    assert user_source_label(0) == "chat session"  # the same column name means something else for reads


@pytest.mark.parametrize("code", [43, 51, 999, -1, 2**31 - 1])
def test_a_follow_source_without_a_name_is_shown_by_its_code(code: int) -> None:
    assert code not in FOLLOW_SOURCE_LABELS
    assert follow_source_label(code) == f"source {code}"


@pytest.mark.parametrize(
    ("code", "label"), [(1, "text"), (2, "image"), (3, "voice"), (4, "video"), (6, "link (third-party app message)"),
                        (5, "type 5"), (9, "type 9")],
)
def test_message_types_are_named_and_unknown_ones_shown_by_code(code: int, label: str) -> None:
    assert msg_type_label(code) == label
