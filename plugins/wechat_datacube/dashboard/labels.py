"""Human labels of WeChat's code values, as the API reference defines them.

The registry documents these codes in column comments (prose for people reading the
tables); charts need them as data, so they live here once for the dashboard.
"""

from __future__ import annotations

from wechat_datacube.endpoints import ALL_SOURCES

USER_SOURCE_LABELS: dict[int, str] = {
    0: "chat session",
    1: "friend forward",
    2: "Moments",
    3: "Tencent Weibo",
    4: "history page",
    5: "other",
    6: "Top Stories",
    7: "Search",
}

SHARE_SCENE_LABELS: dict[int, str] = {
    1: "friend forward",
    2: "Moments",
    3: "Tencent Weibo",
    255: "other",
}


def user_source_label(code: int) -> str:
    return "all sources" if code == ALL_SOURCES else USER_SOURCE_LABELS.get(code, f"source {code}")


def share_scene_label(code: int) -> str:
    return SHARE_SCENE_LABELS.get(code, f"scene {code}")
