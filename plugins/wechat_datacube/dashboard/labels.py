"""Human labels of WeChat's code values, as the API reference defines them.

The registry documents these codes in column comments (prose for people reading the
tables); charts need them as data, so they live here once for the dashboard.
"""

from __future__ import annotations

from wechat_datacube.endpoints import ALL_SOURCES

#: ``scene_desc`` of the total entry of a replacement-family ``read_user_source`` list.
ALL_SCENE = "全部"

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

#: getarticletotaldetail ``publish_type`` (2 is seen in the wild and undocumented).
PUBLISH_TYPE_LABELS: dict[int, str] = {
    0: "followers notified",
    1: "no notification",
}

#: getusersummary ``user_source``: where followers came from. 0 is "all other sources", one
#: source among the others, not a total (a day's total is the sum of its rows). Codes that
#: only older history carries (43, 51, 75, 78, 176) and new ones WeChat adds without notice
#: fall back to "source <code>".
FOLLOW_SOURCE_LABELS: dict[int, str] = {
    0: "other sources",
    1: "Official Account search",
    17: "business card",
    30: "QR code scan",
    57: "account name in an article",
    100: "WeChat ads",
    149: "Mini Program",
    161: "reposted by others",
    200: "Channels (视频号)",
    201: "live",
}

#: Message analysis ``msg_type``: what users sent the account (no 5 is documented).
MSG_TYPE_LABELS: dict[int, str] = {
    1: "text",
    2: "image",
    3: "voice",
    4: "video",
    6: "link (third-party app message)",
}

SHARE_SCENE_LABELS: dict[int, str] = {
    1: "friend forward",
    2: "Moments",
    3: "Tencent Weibo",
    255: "other",
}


def user_source_label(code: int) -> str:
    return "all sources" if code == ALL_SOURCES else USER_SOURCE_LABELS.get(code, f"source {code}")


def follow_source_label(code: int) -> str:
    """A follow source's name; a code the table does not know is shown, never an error (new ones appear)."""
    return FOLLOW_SOURCE_LABELS.get(code, f"source {code}")


def msg_type_label(code: int) -> str:
    return MSG_TYPE_LABELS.get(code, f"type {code}")


def share_scene_label(code: int) -> str:
    return SHARE_SCENE_LABELS.get(code, f"scene {code}")


def scene_label(scene_desc: str | None) -> str:
    """A ``read_user_source`` scene as charted: WeChat's own Chinese name, the total marked as such.

    Scene names are WeChat's and new ones appear without notice, so they are shown as sent
    (escaped by the page), not translated through a table that would fall behind.
    """
    if scene_desc == ALL_SCENE:
        return f"{ALL_SCENE} · all readers (total)"
    return scene_desc if scene_desc else "(unnamed scene)"


def publish_type_label(code: int | None) -> str:
    if code is None:
        return "–"
    return PUBLISH_TYPE_LABELS.get(code, f"type {code}")
