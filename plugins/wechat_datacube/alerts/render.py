"""Alert events as WeCom markdown, and how pending events are packed into messages.

Pure functions, no I/O. A group robot takes at most 4096 bytes of markdown (UTF-8) per
message and about 20 messages a minute, so there are two layouts:

* :func:`render_event` — one event alone: a coloured title, the ids (account, endpoint,
  dates, errcode with its meaning), the event's detail lines and a link to the task log.
  Too long for one message, its details are cut (the ids and the link never are).
* :func:`render_digest` — several events in one message, one compact line each, the
  meaning of each errcode once at the bottom. Used when events are waiting together
  (a burst, or the robot's minute is nearly used up): nothing is dropped, it is folded.

:func:`pack` splits a list of pending events into consecutive groups that each fit one
message; :func:`render_group` renders a group as it is sent. Texts are English with short
Chinese labels, in lines short enough for a phone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from wechat_datacube.alerts.events import SEVERITY, AlertEvent, AlertKind
from wechat_datacube.dates import beijing_clock
from wechat_datacube.errors import describe_errcode

#: WeCom's limit for ``markdown.content``, in UTF-8 bytes.
MAX_BYTES = 4096

#: Title of each kind: Chinese for the group, English for whoever configured it.
KIND_LABELS: Mapping[AlertKind, str] = {
    AlertKind.TASK_FAILED: "任务失败 task failed",
    AlertKind.QUOTA_HIT: "配额用尽 quota hit",
    AlertKind.SCHEMA_DRIFT: "结构变化 schema drift",
    AlertKind.DAY_KEPT: "保留旧数据 day kept",
    AlertKind.NOT_PUBLISHED: "数据未发布 not published",
    AlertKind.RUN_LATE: "运行超时 run late",
    AlertKind.DAILY_REPORT: "数据日报 daily report",
    AlertKind.CUSTOM: "通知 notice",
}

#: Loudest first: a digest takes the colour of its loudest event.
_LOUDNESS = ("warning", "info", "comment")

# Caps on single values, so the headline, ids and link of one event always fit a message
# with room to spare (about 1.9 KB at most) and only details ever need cutting.
_HEADLINE_BYTES = 600
_FIELD_BYTES = 160
_LINK_BYTES = 700
_DIGEST_HEADLINE_BYTES = 90


def utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8: what the robot's limit counts."""
    return len(text.encode("utf-8"))


def clip(text: str, limit_bytes: int, marker: str = "…") -> str:
    """``text`` cut to at most ``limit_bytes`` UTF-8 bytes at a character boundary, ``marker`` appended if cut."""
    if utf8_size(text) <= limit_bytes:
        return text
    room = max(limit_bytes - utf8_size(marker), 0)
    return text.encode("utf-8")[:room].decode("utf-8", errors="ignore") + marker


def _label(event: AlertEvent) -> str:
    return KIND_LABELS.get(event.kind, str(event.kind))


def _beijing_time(occurred_at: str) -> str | None:
    """``2024-06-15 10:00 北京时间 Beijing`` for an ISO timestamp; None when it cannot be read."""
    try:
        return f"{beijing_clock(occurred_at)} 北京时间 Beijing"
    except (TypeError, ValueError):
        return None


def _id_lines(event: AlertEvent) -> list[str]:
    lines = []
    if event.account:
        lines.append(f"> 账号 account: **{clip(event.account, _FIELD_BYTES)}**")
    if event.endpoint:
        lines.append(f"> 接口 endpoint: `{clip(event.endpoint, _FIELD_BYTES)}`")
    if event.dates:
        lines.append(f"> 日期 dates: {clip(event.dates, _FIELD_BYTES)}")
    if event.errcode is not None:
        lines.append(f"> 错误码 {describe_errcode(event.errcode)}")
    return lines


def _details_beside_ids(event: AlertEvent) -> list[str]:
    """The detail lines, but one that repeats the errcode's meaning (the id lines already give it)."""
    if event.errcode is None:
        return list(event.details)
    meaning = describe_errcode(event.errcode)
    return [line for line in event.details if meaning not in line]


def _link_line(link: str | None) -> list[str]:
    if not link or utf8_size(link) > _LINK_BYTES:
        return []
    return [f"[打开任务日志 / open task log]({link})"]


def _cut_note(count: int) -> str:
    return f'<font color="comment">… {count} more line(s) cut: message limit 4096 bytes / 已截断</font>'


def _join(lines: Sequence[str]) -> str:
    return "\n".join(lines)


def render_event(event: AlertEvent, limit_bytes: int = MAX_BYTES) -> str:
    """The whole message for one event, at most ``limit_bytes`` (details cut from the end when needed)."""
    title = f'## <font color="{SEVERITY.get(event.kind, "comment")}">{_label(event)}</font>'
    head = [title, f"**{clip(event.headline, _HEADLINE_BYTES)}**", *_id_lines(event)]
    when = _beijing_time(event.occurred_at)
    tail = [*_link_line(event.link), *([f'<font color="comment">{when}</font>'] if when else [])]
    details = _details_beside_ids(event)
    text = _join([*head, *details, *tail])
    if utf8_size(text) <= limit_bytes:
        return text
    # Keep as many details as fit beside the head, the tail and the note saying how many were cut.
    budget = limit_bytes - utf8_size(_join([*head, _cut_note(len(details)), *tail])) - 1
    kept: list[str] = []
    for line in details:
        size = utf8_size(line) + 1
        if size > budget:
            break
        kept.append(line)
        budget -= size
    text = _join([*head, *kept, _cut_note(len(details) - len(kept)), *tail])
    return clip(text, limit_bytes)  # a no-op unless limit_bytes is far below MAX_BYTES


def _digest_line(number: int, event: AlertEvent, *, link: bool) -> str:
    parts = [f"{number}. **{_label(event)}**"]
    for value in (event.account, event.endpoint, event.dates):
        if value:
            parts.append(clip(value, _FIELD_BYTES))
    if event.errcode is not None:
        parts.append(f"errcode {event.errcode}")
    if not event.endpoint and event.errcode is None:
        parts.append(clip(event.headline, _DIGEST_HEADLINE_BYTES))
    if link and event.link and utf8_size(event.link) <= _LINK_BYTES:
        parts.append(f"[日志 log]({event.link})")
    return " · ".join(parts)


def _loudest(events: Sequence[AlertEvent]) -> str:
    colours = {SEVERITY.get(e.kind, "comment") for e in events}
    return next((c for c in _LOUDNESS if c in colours), "comment")


def render_digest(events: Sequence[AlertEvent], *, links: bool = True) -> str:
    """Several events in one message: a header, one compact line per event, each errcode's meaning once.

    ``links=False`` leaves out the per-event log links (what :func:`render_group` falls back
    to when the links would not fit). No size limit is applied here: see :func:`pack`.
    """
    count = len(events)
    lines = [
        f'## <font color="{_loudest(events)}">{count} 条告警 / {count} alerts</font>',
        '<font color="comment">合并发送 coalesced into one message (robot limit: 20 a minute)</font>',
        *(_digest_line(n, event, link=links) for n, event in enumerate(events, start=1)),
    ]
    errcodes = list(dict.fromkeys(e.errcode for e in events if e.errcode is not None))
    if errcodes:
        lines.append("**错误码说明 errcodes**")
        lines.extend(f"> {describe_errcode(code)}" for code in errcodes)
    if not links and any(e.link for e in events):
        lines.append('<font color="comment">task logs: Airflow UI / 任务日志见 Airflow 界面</font>')
    return _join(lines)


def render_group(events: Sequence[AlertEvent], limit_bytes: int = MAX_BYTES) -> str:
    """The message for one group of :func:`pack`: the event's own message, or a digest (with links if they fit)."""
    if not events:
        raise ValueError("render_group needs at least one event")
    if len(events) == 1:
        return render_event(events[0], limit_bytes)
    text = render_digest(events, links=True)
    if utf8_size(text) <= limit_bytes:
        return text
    return clip(render_digest(events, links=False), limit_bytes)


def pack(events: Sequence[AlertEvent], limit_bytes: int = MAX_BYTES) -> list[list[int]]:
    """Split ``events`` into consecutive groups (lists of indexes) that each fit one message.

    Greedy, in order: a group grows while its digest (without links, the smallest form
    :func:`render_group` sends) fits ``limit_bytes``. A group of one always fits: its
    message is cut if needed (:func:`render_event`). Every index appears exactly once.
    """
    groups: list[list[int]] = []
    start = 0
    while start < len(events):
        end = start + 1
        while end < len(events) and utf8_size(render_digest(events[start : end + 1], links=False)) <= limit_bytes:
            end += 1
        groups.append(list(range(start, end)))
        start = end
    return groups
