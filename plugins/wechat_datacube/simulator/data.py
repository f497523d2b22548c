"""Deterministic synthetic datacube data per (seed, appid, date).

Nothing is stored: every value is derived from a hash of (seed, appid, date, ...), so the
same seed always gives the same numbers, another appid gives other numbers, and any date
can be answered in microseconds (a 365-day backfill is ~2000 calls). Per-day building
blocks are memoised.

The story behind the numbers: an account with a follower base that grows slowly sends
1-3 articles on about 60% of days. Each article's daily readers decay over 30 days;
its shares, favourites, likes ... are fractions of its readers. Account-wide rows are
a background of reads of old articles plus the recent articles of that day. Field names
come from the endpoint registry; only the magnitudes live here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from wechat_datacube.endpoints import ALL_SOURCES, HISTORY_START, LEGACY_METRICS, EndpointSpec

#: From this date on getuserread / getuserreadhour rows are split by user_source.
USER_SOURCE_SPLIT_START = dt.date(2020, 2, 28)
#: Channel user_source -> share of the day's readers (they overlap: sum > 1 on purpose).
CHANNEL_SOURCE_SHARE: dict[int, float] = {0: 0.38, 1: 0.08, 2: 0.18, 4: 0.12, 5: 0.07, 6: 0.10, 7: 0.15}
#: share_scene -> share of the day's sharers.
SHARE_SCENE_SHARE: dict[int, float] = {1: 0.62, 2: 0.33, 255: 0.05}
#: Relative activity per hour of the Beijing day (0..23).
HOUR_PROFILE: tuple[float, ...] = (
    0.020, 0.010, 0.006, 0.004, 0.004, 0.008, 0.020, 0.045, 0.060, 0.055, 0.050, 0.050,
    0.065, 0.055, 0.045, 0.045, 0.045, 0.050, 0.060, 0.065, 0.075, 0.080, 0.070, 0.045,
)
#: How an article's readers arrive over the days after sending (day 0 = send day).
READ_DECAY: tuple[float, ...] = tuple(0.5 * 0.6**k + 0.002 for k in range(30))
#: Channel slug (as in the registry's int_page_from_<slug>_read_* names) -> share of readers.
ARTICLE_CHANNEL_SHARE: dict[str, float] = {
    "session": 0.42, "hist_msg": 0.08, "feed": 0.18, "friends": 0.10, "other": 0.04, "kanyikan": 0.06, "souyisou": 0.07,
}
#: Moments-share source slug (feed_share_from_<slug>_*) -> share of sharers.
FEED_SHARE_SHARE: dict[str, float] = {"session": 0.5, "feed": 0.3, "other": 0.1}
#: scene_desc of read_user_source in the replacement endpoints -> share of readers.
READ_SCENES: dict[str, float] = {
    "公众号消息": 0.45, "聊天会话": 0.22, "朋友圈": 0.12, "推荐": 0.08, "搜一搜": 0.07, "公众号主页": 0.04, "其它": 0.02,
}

_TOPICS = (
    "人工智能", "城市生活", "理财规划", "健康饮食", "亲子教育", "职场成长", "旅行攻略", "科技前沿",
    "读书笔记", "运动健身", "数据分析", "产品设计", "春节出行", "咖啡文化", "新能源车", "家居收纳",
)
_PATTERNS = (
    "{t}：你需要知道的{n}件事", "深度解读｜{t}的新变化", "{t}入门指南（第{n}期）", "周末聊聊{t}",
    "关于{t}，我们做了一次调查", "{t}实用清单：{n}个建议", "一图看懂{t}", "{t} weekly #{n}",
)

_LEGACY_METRIC_NAMES = tuple(c.name for c in LEGACY_METRICS)
_CHANNEL_METRICS = ("int_page_read_user", "int_page_read_count", "share_user", "share_count")
_EXTRA_METRICS = ("zaikan_user", "like_user", "comment_count")
_DAY_FIELDS = _LEGACY_METRIC_NAMES + _EXTRA_METRICS
_READ_FROM = re.compile(r"^int_page_from_(\w+?)_read_(user|count)$")
_FEED_SHARE_FROM = re.compile(r"^feed_share_from_(\w+?)_(user|cnt)$")


def _rng(seed: int, appid: str, *parts: object) -> random.Random:
    """A private RNG for one (seed, appid, ...) tuple: cheap and stable across runs."""
    key = "|".join([str(seed), appid, *map(str, parts)]).encode()
    return random.Random(int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big"))


def _num(value: float) -> int:
    return max(0, int(round(value)))


@lru_cache(maxsize=4096)
def _account_profile(seed: int, appid: str) -> tuple[int, float, int]:
    """(followers on HISTORY_START, daily growth rate, msg_data_id base) of an account."""
    rng = _rng(seed, appid, "profile")
    return rng.randint(3_000, 120_000), rng.uniform(0.00005, 0.0003), rng.randint(2_247_480_000, 2_650_000_000)


def followers(seed: int, appid: str, day: dt.date) -> int:
    base, growth, _ = _account_profile(seed, appid)
    return _num(base * (1 + growth * max(0, (day - HISTORY_START).days)))


@dataclass(frozen=True)
class Article:
    """One article of a mass send: identity plus its day-by-day (non-cumulative) metrics."""

    send_date: dt.date
    msgid: str
    title: str
    publish_type: int
    target_user: int
    read_finish_rate: float
    read_avg_activetime: float
    #: daily[k] = values on send_date + k, ordered as _DAY_FIELDS.
    daily: tuple[tuple[int, ...], ...]

    def day(self, k: int) -> dict[str, int]:
        return dict(zip(_DAY_FIELDS, self.daily[k], strict=True))

    def cumulative(self, k: int) -> dict[str, int]:
        """Values summed from the send day to send_date + k (non-decreasing in k)."""
        sums = [sum(col) for col in zip(*self.daily[: k + 1], strict=True)]
        return dict(zip(_DAY_FIELDS, sums, strict=True))


@lru_cache(maxsize=65536)
def articles_sent(seed: int, appid: str, day: dt.date) -> tuple[Article, ...]:
    """Articles the account mass-sent on ``day`` (none on about 40% of days)."""
    rng = _rng(seed, appid, day, "articles")
    if rng.random() >= 0.6:
        return ()
    count = rng.choice((1, 1, 1, 2, 2, 3))
    target = followers(seed, appid, day)
    msg_data_id = _account_profile(seed, appid)[2] + (day - HISTORY_START).days
    publish_type = 1 if rng.random() < 0.8 else 2
    out = []
    for index in range(1, count + 1):
        reach = target * rng.uniform(0.03, 0.10) * (1.0, 0.45, 0.3)[index - 1]
        title = rng.choice(_PATTERNS).format(t=rng.choice(_TOPICS), n=rng.randint(3, 12))
        daily = []
        for k in range(30):
            users = _num(reach * READ_DECAY[k] * rng.uniform(0.8, 1.2))
            ori = _num(users * rng.uniform(0.01, 0.04))
            share = _num(users * rng.uniform(0.02, 0.06))
            fav = _num(users * rng.uniform(0.01, 0.03))
            daily.append((
                users, max(users, _num(users * rng.uniform(1.1, 1.4))),
                ori, max(ori, _num(ori * 1.1)),
                share, max(share, _num(share * rng.uniform(1.1, 1.5))),
                fav, max(fav, _num(fav * 1.05)),
                _num(users * rng.uniform(0.005, 0.02)), _num(users * rng.uniform(0.01, 0.04)),
                _num(users * rng.uniform(0.001, 0.006)),
            ))
        out.append(Article(
            send_date=day,
            msgid=f"{msg_data_id}_{index}",
            title=title,
            publish_type=publish_type,
            target_user=target,
            read_finish_rate=round(rng.uniform(0.25, 0.65), 4),
            read_avg_activetime=round(rng.uniform(35.0, 180.0), 1),
            daily=tuple(daily),
        ))
    return tuple(out)


def articles_active(seed: int, appid: str, day: dt.date, window: int) -> list[tuple[Article, int]]:
    """(article, days since sending) for articles sent in [day - window + 1, day]."""
    out = []
    for k in range(window - 1, -1, -1):
        for article in articles_sent(seed, appid, day - dt.timedelta(days=k)):
            out.append((article, k))
    return out


@lru_cache(maxsize=16384)
def account_day(seed: int, appid: str, day: dt.date) -> dict[str, Any]:
    """Account-wide totals of ``day``: background reads plus the last 7 days' articles."""
    rng = _rng(seed, appid, day, "account")
    weekday = 0.85 if day.weekday() >= 5 else 1.0
    bg_users = max(60, _num(followers(seed, appid, day) * rng.uniform(0.006, 0.012) * weekday))
    totals = {
        "int_page_read_user": bg_users,
        "int_page_read_count": _num(bg_users * rng.uniform(1.2, 1.5)),
        "ori_page_read_user": _num(bg_users * 0.02),
        "ori_page_read_count": _num(bg_users * 0.025),
        "share_user": max(10, _num(bg_users * rng.uniform(0.02, 0.05))),
        "share_count": 0,
        "add_to_fav_user": _num(bg_users * 0.015),
        "add_to_fav_count": _num(bg_users * 0.016),
        "zaikan_user": _num(bg_users * 0.01),
        "like_user": _num(bg_users * 0.02),
        "comment_count": _num(bg_users * 0.003),
    }
    totals["share_count"] = _num(totals["share_user"] * rng.uniform(1.1, 1.4))
    for article, k in articles_active(seed, appid, day, 7):
        for name, value in article.day(k).items():
            totals[name] += value
    noise = {
        "sources": {s: share * rng.uniform(0.85, 1.15) for s, share in CHANNEL_SOURCE_SHARE.items()},
        "hours": [w * rng.uniform(0.8, 1.2) for w in HOUR_PROFILE],
        "scenes": {s: share * rng.uniform(0.9, 1.1) for s, share in SHARE_SCENE_SHARE.items()},
        "read_scenes": {s: share * rng.uniform(0.8, 1.2) for s, share in READ_SCENES.items()},
        "collection_user": totals["add_to_fav_user"],
    }
    # Channel rows overlap: make their sum exceed the total by a clear margin.
    scale = 1.12 / sum(noise["sources"].values())
    noise["sources"] = {s: v * scale for s, v in noise["sources"].items()}
    hour_sum = sum(noise["hours"])
    noise["hours"] = [1.1 * w / hour_sum for w in noise["hours"]]
    return {"totals": totals, **noise}


# --- rows per endpoint -------------------------------------------------------------------


def _pick(spec: EndpointSpec, values: dict[str, Any], names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Keep the registry's fields (in registry order) that this row has a value for."""
    return {n: values[n] for n in (names or spec.column_names) if n in values}


def _read_scene_list(day_info: dict[str, Any], read_user: int) -> list[dict[str, Any]]:
    return [{"scene_desc": s, "user_count": _num(read_user * f)} for s, f in day_info["read_scenes"].items()]


def _summary_rows(spec: EndpointSpec, seed: int, appid: str, day: dt.date) -> list[dict[str, Any]]:
    rows = []
    for article, k in articles_active(seed, appid, day, 7):
        values = article.day(k)
        if values["int_page_read_count"] + values["share_count"] + values["add_to_fav_count"] < 3:
            continue
        rows.append(_pick(spec, {"ref_date": day.isoformat(), "msgid": article.msgid, "title": article.title,
                                 "user_source": 0, **values}))
    return rows


def _article_total_detail(article: Article, k: int) -> dict[str, Any]:
    values: dict[str, Any] = {
        "stat_date": (article.send_date + dt.timedelta(days=k)).isoformat(),
        "target_user": article.target_user,
        **article.cumulative(k),
    }
    return values


def _channel_values(spec: EndpointSpec, cumulative: dict[str, Any]) -> dict[str, int]:
    """Fill the registry's channel-split fields from cumulative readers and sharers."""
    out = {}
    for name in spec.column_names:
        m = _READ_FROM.match(name)
        if m:
            base = cumulative["int_page_read_user" if m.group(2) == "user" else "int_page_read_count"]
            out[name] = _num(base * ARTICLE_CHANNEL_SHARE.get(m.group(1), 0.03))
            continue
        m = _FEED_SHARE_FROM.match(name)
        if m:
            base = cumulative["share_user" if m.group(2) == "user" else "share_count"]
            out[name] = _num(base * FEED_SHARE_SHARE.get(m.group(1), 0.05))
    return out


def _nested_row(spec: EndpointSpec, parent: dict[str, Any], details: list[dict[str, Any]]) -> dict[str, Any]:
    assert spec.nested is not None
    detail_names = tuple(n for n in spec.column_names if n not in spec.parent_columns)
    row = _pick(spec, parent, spec.parent_columns)
    row[spec.nested] = [_pick(spec, d, detail_names) for d in details]
    return row


def _total_rows(spec: EndpointSpec, seed: int, appid: str, day: dt.date, last_stat: dt.date) -> list[dict[str, Any]]:
    rows = []
    days = min(spec.maturity_days, (last_stat - day).days + 1)
    for article in articles_sent(seed, appid, day):
        details = []
        for k in range(days):
            detail = _article_total_detail(article, k)
            detail.update(_channel_values(spec, detail))
            details.append(detail)
        parent = {"ref_date": day.isoformat(), "msgid": article.msgid, "title": article.title}
        rows.append(_nested_row(spec, parent, details))
    return rows


def _user_read_rows(spec: EndpointSpec, seed: int, appid: str, day: dt.date, hourly: bool) -> list[dict[str, Any]]:
    info = account_day(seed, appid, day)
    totals = {n: info["totals"][n] for n in _LEGACY_METRIC_NAMES}
    sources: list[tuple[int, dict[str, int]]] = [(ALL_SOURCES, totals)]
    if day >= USER_SOURCE_SPLIT_START:
        for source, share in info["sources"].items():
            sources.append((source, {n: _num(totals[n] * share) for n in _CHANNEL_METRICS}))
    rows = []
    for source, values in sources:
        if not hourly:
            rows.append(_pick(spec, {"ref_date": day.isoformat(), "user_source": source, **values}))
            continue
        for hour, weight in enumerate(info["hours"]):
            hour_values = {n: _num(v * weight) for n, v in values.items()}
            rows.append(_pick(spec, {"ref_date": day.isoformat(), "ref_hour": hour * 100, "user_source": source,
                                     **hour_values}))
    return rows


def _user_share_rows(spec: EndpointSpec, seed: int, appid: str, day: dt.date, hourly: bool) -> list[dict[str, Any]]:
    info = account_day(seed, appid, day)
    rows = []
    for scene, share in info["scenes"].items():
        users = _num(info["totals"]["share_user"] * share)
        count = max(users, _num(info["totals"]["share_count"] * share))
        if not hourly:
            rows.append(_pick(spec, {"ref_date": day.isoformat(), "share_scene": scene,
                                     "share_user": users, "share_count": count}))
            continue
        for hour, weight in enumerate(info["hours"]):
            rows.append(_pick(spec, {"ref_date": day.isoformat(), "ref_hour": hour * 100, "share_scene": scene,
                                     "share_user": _num(users * weight), "share_count": _num(count * weight)}))
    return rows


def _article_read_rows(spec: EndpointSpec, seed: int, appid: str, day: dt.date, share: bool) -> list[dict[str, Any]]:
    info = account_day(seed, appid, day)
    rows = []
    for article, k in articles_active(seed, appid, day, 30):
        values = article.day(k)
        key = "share_user" if share else "int_page_read_user"
        if values[key] <= 0:
            continue  # the list only holds articles that changed that day
        row = {"ref_date": day.isoformat(), "msgid": article.msgid, "title": article.title}
        if share:
            row["share_user"] = values["share_user"]
        else:
            row["read_user"] = values["int_page_read_user"]
            row["read_user_source"] = _read_scene_list(info, values["int_page_read_user"])
        rows.append(_pick(spec, row))
    return rows


def _biz_summary_rows(spec: EndpointSpec, seed: int, appid: str, day: dt.date) -> list[dict[str, Any]]:
    info = account_day(seed, appid, day)
    totals = info["totals"]
    return [_pick(spec, {
        "ref_date": day.isoformat(),
        "read_user": totals["int_page_read_user"],
        "read_user_source": _read_scene_list(info, totals["int_page_read_user"]),
        "share_user": totals["share_user"],
        "zaikan_user": totals["zaikan_user"],
        "like_user": totals["like_user"],
        "comment_count": totals["comment_count"],
        "collection_user": info["collection_user"],
    })]


def _total_detail_rows(spec: EndpointSpec, seed: int, appid: str, day: dt.date,
                       last_stat: dt.date) -> list[dict[str, Any]]:
    rows = []
    days = min(spec.maturity_days, (last_stat - day).days + 1)
    for article in articles_sent(seed, appid, day):
        details = []
        for k in range(days):
            cum = article.cumulative(k)
            subscribe = _num(cum["int_page_read_user"] * 0.7)
            details.append({
                "stat_date": (day + dt.timedelta(days=k)).isoformat(),
                "read_user": cum["int_page_read_user"],
                "share_user": cum["share_user"],
                "read_subscribe_user": subscribe,
                "read_delivery_rate": round(subscribe / max(1, article.target_user), 4),
                "read_finish_rate": article.read_finish_rate,
                "read_avg_activetime": article.read_avg_activetime,
                "zaikan_user": cum["zaikan_user"],
                "like_user": cum["like_user"],
                "comment_count": cum["comment_count"],
                "collection_user": cum["add_to_fav_user"],
            })
        parent = {"ref_date": day.isoformat(), "msgid": article.msgid, "title": article.title,
                  "publish_type": article.publish_type}
        rows.append(_nested_row(spec, parent, details))
    return rows


def rows_for_day(spec: EndpointSpec, seed: int, appid: str, day: dt.date, last_ready: dt.date) -> list[dict[str, Any]]:
    """The rows ``spec`` returns for ref_date ``day`` when ``last_ready`` is the newest published day.

    Availability (first date, readiness) is the caller's job; this only needs
    ``last_ready`` to cut cumulative series at the newest published stat day.
    """
    name = spec.name
    if name == "getarticlesummary":
        return _summary_rows(spec, seed, appid, day)
    if name == "getarticletotal":
        return _total_rows(spec, seed, appid, day, last_ready)
    if name in ("getuserread", "getuserreadhour"):
        return _user_read_rows(spec, seed, appid, day, hourly=name.endswith("hour"))
    if name in ("getusershare", "getusersharehour"):
        return _user_share_rows(spec, seed, appid, day, hourly=name.endswith("hour"))
    if name in ("getarticleread", "getarticleshare"):
        return _article_read_rows(spec, seed, appid, day, share=name == "getarticleshare")
    if name == "getbizsummary":
        return _biz_summary_rows(spec, seed, appid, day)
    if name == "getarticletotaldetail":
        return _total_detail_rows(spec, seed, appid, day, last_ready)
    raise KeyError(f"the simulator has no data generator for {name!r}")
