"""Deterministic synthetic account activity per (seed, appid, date).

Nothing is stored: every value is derived from a hash of (seed, appid, date, ...), so the
same seed always gives the same numbers, another appid gives other numbers, and any date
can be answered in microseconds (a 365-day backfill is ~2000 calls). Per-day building
blocks are memoised.

The story behind the numbers: an account with a follower base that grows slowly sends
1-3 articles on about 60% of days. Each article's daily readers decay over 30 days;
its shares, favourites, likes ... are fractions of its readers. Account-wide numbers are
a background of reads of old articles plus the recent articles of that day. This module
holds only that story; :mod:`.legacy_rows` and :mod:`.replacement_rows` turn it into each
endpoint's answer, with field names from :mod:`.facts`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from wechat_datacube_dev.simulator.facts import HISTORY_START, LEGACY_METRICS

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
#: Channel slug (getarticletotal's int_page_from_<slug>_read_* fields) -> share of readers.
ARTICLE_CHANNEL_SHARE: dict[str, float] = {
    "session": 0.42, "hist_msg": 0.08, "feed": 0.18, "friends": 0.10, "other": 0.04, "kanyikan": 0.06, "souyisou": 0.07,
}
#: Moments-share source slug (feed_share_from_<slug>_*) -> share of sharers.
FEED_SHARE_SHARE: dict[str, float] = {"session": 0.5, "feed": 0.3, "other": 0.1}
#: scene_desc of read_user_source in the replacement endpoints -> share of readers (before
#: the per-day rescale that makes the scenes overlap).
READ_SCENES: dict[str, float] = {
    "公众号消息": 0.45, "聊天会话": 0.22, "朋友圈": 0.12, "推荐": 0.08, "搜一搜": 0.07, "公众号主页": 0.04, "其他": 0.02,
}
#: Sum of the channel (or scene) shares of one day: > 1 because a reader can come by several.
OVERLAP = 1.12

_TOPICS = (
    "人工智能", "城市生活", "理财规划", "健康饮食", "亲子教育", "职场成长", "旅行攻略", "科技前沿",
    "读书笔记", "运动健身", "数据分析", "产品设计", "春节出行", "咖啡文化", "新能源车", "家居收纳",
)
_PATTERNS = (
    "{t}：你需要知道的{n}件事", "深度解读｜{t}的新变化", "{t}入门指南（第{n}期）", "周末聊聊{t}",
    "关于{t}，我们做了一次调查", "{t}实用清单：{n}个建议", "一图看懂{t}", "{t} weekly #{n}",
)

#: The per-day values an article keeps (Article.daily columns).
DAY_FIELDS = (*LEGACY_METRICS, "zaikan_user", "like_user", "comment_count")


def rng_for(seed: int, appid: str, *parts: object) -> random.Random:
    """A private RNG for one (seed, appid, ...) tuple: cheap and stable across runs."""
    key = "|".join([str(seed), appid, *map(str, parts)]).encode()
    return random.Random(int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big"))


def num(value: float) -> int:
    """A count: rounded, never negative."""
    return max(0, int(round(value)))


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` into counts that add up to it exactly.

    Each count is the step of the rounded running share, so per-hour or per-source rows
    sum to the day's (or the total's) number without rounding drift: the endpoints whose
    rows must reconcile rely on it. O(n), no sorting: it runs for every hour of 12 years.
    """
    if total <= 0:
        return [0] * len(weights)
    mass = sum(weights)
    if mass <= 0:
        raise ValueError(f"cannot split {total} over weights {list(weights)}")
    scale = total / mass
    counts, running, given = [], 0.0, 0
    for weight in weights:
        running += weight
        upto = min(total, int(running * scale + 0.5))
        counts.append(upto - given)
        given = upto
    counts[-1] += total - given
    return counts


@lru_cache(maxsize=4096)
def _account_profile(seed: int, appid: str) -> tuple[int, float, int]:
    """(followers on HISTORY_START, daily growth rate, msg_data_id base) of an account."""
    rng = rng_for(seed, appid, "profile")
    return rng.randint(3_000, 120_000), rng.uniform(0.00005, 0.0003), rng.randint(2_247_480_000, 2_650_000_000)


def followers(seed: int, appid: str, day: dt.date) -> int:
    base, growth, _ = _account_profile(seed, appid)
    return num(base * (1 + growth * max(0, (day - HISTORY_START).days)))


@dataclass(frozen=True)
class DayQuery:
    """What one endpoint's rows for one ref_date depend on."""

    seed: int
    appid: str
    day: dt.date
    #: The newest published ref_date: cumulative series stop there.
    last_ready: dt.date
    #: See :func:`is_quiet`.
    quiet_day_rate: float = 0.0


@dataclass(frozen=True)
class Article:
    """One article of a mass send: identity plus its day-by-day (non-cumulative) metrics."""

    send_date: dt.date
    msgid: str
    title: str
    #: 0 = followers notified, 1 = notification off.
    publish_type: int
    target_user: int
    read_finish_rate: float
    #: Average active reading time in minutes (the replacement API's unit).
    read_avg_activetime: float
    #: Readers who followed the account after reading, per reader.
    subscribe_rate: float
    #: Tips (赞赏) in fen per reader; 0 for most articles.
    praise_fen_per_reader: float
    #: Scroll-depth curve: share of readers reaching position 1, 2, ...
    jump_curve: tuple[float, ...]
    #: daily[k] = values on send_date + k, ordered as DAY_FIELDS.
    daily: tuple[tuple[int, ...], ...]

    def day(self, k: int) -> dict[str, int]:
        return dict(zip(DAY_FIELDS, self.daily[k], strict=True))

    def running_totals(self, days: int, skip: frozenset[int] = frozenset()) -> list[dict[str, int]]:
        """Values summed from the send day to send_date + k, for k < ``days`` (non-decreasing).

        Days in ``skip`` add nothing: on a quiet day (see :func:`is_quiet`) nothing changed.
        """
        sums = [0] * len(DAY_FIELDS)
        out = []
        for k in range(days):
            if k not in skip:
                sums = [s + v for s, v in zip(sums, self.daily[k], strict=True)]
            out.append(dict(zip(DAY_FIELDS, sums, strict=True)))
        return out


def _article_extras(seed: int, appid: str, day: dt.date, index: int) -> dict[str, Any]:
    """The replacement API's per-article numbers, from their own RNG stream.

    A separate stream keeps every value the legacy endpoints show unchanged.
    """
    rng = rng_for(seed, appid, day, "article-extras", index)
    reach = rng.uniform(0.85, 0.98)
    curve = []
    for _ in range(5):
        curve.append(round(reach, 4))
        reach *= rng.uniform(0.65, 0.9)
    return {
        "subscribe_rate": rng.uniform(0.002, 0.01),
        "praise_fen_per_reader": rng.uniform(0.1, 1.5) if rng.random() < 0.3 else 0.0,
        "jump_curve": tuple(curve),
    }


@lru_cache(maxsize=65536)
def articles_sent(seed: int, appid: str, day: dt.date) -> tuple[Article, ...]:
    """Articles the account mass-sent on ``day`` (none on about 40% of days)."""
    rng = rng_for(seed, appid, day, "articles")
    if rng.random() >= 0.6:
        return ()
    count = rng.choice((1, 1, 1, 2, 2, 3))
    target = followers(seed, appid, day)
    msg_data_id = _account_profile(seed, appid)[2] + (day - HISTORY_START).days
    publish_type = 0 if rng.random() < 0.8 else 1
    out = []
    for index in range(1, count + 1):
        reach = target * rng.uniform(0.03, 0.10) * (1.0, 0.45, 0.3)[index - 1]
        title = rng.choice(_PATTERNS).format(t=rng.choice(_TOPICS), n=rng.randint(3, 12))
        daily = []
        for k in range(30):
            users = num(reach * READ_DECAY[k] * rng.uniform(0.8, 1.2))
            ori = num(users * rng.uniform(0.01, 0.04))
            share = num(users * rng.uniform(0.02, 0.06))
            fav = num(users * rng.uniform(0.01, 0.03))
            daily.append((
                users, max(users, num(users * rng.uniform(1.1, 1.4))),
                ori, max(ori, num(ori * 1.1)),
                share, max(share, num(share * rng.uniform(1.1, 1.5))),
                fav, max(fav, num(fav * 1.05)),
                num(users * rng.uniform(0.005, 0.02)), num(users * rng.uniform(0.01, 0.04)),
                num(users * rng.uniform(0.001, 0.006)),
            ))
        out.append(Article(
            send_date=day,
            msgid=f"{msg_data_id}_{index}",
            title=title,
            publish_type=publish_type,
            target_user=target,
            read_finish_rate=round(rng.uniform(0.25, 0.65), 4),
            read_avg_activetime=round(rng.uniform(0.1, 3.0), 2),
            daily=tuple(daily),
            **_article_extras(seed, appid, day, index),
        ))
    return tuple(out)


def articles_active(seed: int, appid: str, day: dt.date, window: int) -> list[tuple[Article, int]]:
    """(article, days since sending) for articles sent in [day - window + 1, day]."""
    out = []
    for k in range(window - 1, -1, -1):
        for article in articles_sent(seed, appid, day - dt.timedelta(days=k)):
            out.append((article, k))
    return out


@lru_cache(maxsize=65536)
def is_quiet(seed: int, appid: str, day: dt.date, rate: float) -> bool:
    """Whether nothing changed on ``day``: WeChat's replacement family then answers ``[]``.

    Only days without a mass send can be quiet (publishing is a change). The draw has its
    own RNG stream, so the legacy data is the same at any rate, and a day quiet at one
    rate is quiet at every higher rate.
    """
    if rate <= 0 or articles_sent(seed, appid, day):
        return False
    return rng_for(seed, appid, day, "quiet").random() < rate


@lru_cache(maxsize=16384)
def account_day(seed: int, appid: str, day: dt.date) -> dict[str, Any]:
    """Account-wide totals of ``day``: background reads plus the last 7 days' articles."""
    rng = rng_for(seed, appid, day, "account")
    weekday = 0.85 if day.weekday() >= 5 else 1.0
    bg_users = max(60, num(followers(seed, appid, day) * rng.uniform(0.006, 0.012) * weekday))
    totals = {
        "int_page_read_user": bg_users,
        "int_page_read_count": num(bg_users * rng.uniform(1.2, 1.5)),
        "ori_page_read_user": num(bg_users * 0.02),
        "ori_page_read_count": num(bg_users * 0.025),
        "share_user": max(10, num(bg_users * rng.uniform(0.02, 0.05))),
        "share_count": 0,
        "add_to_fav_user": num(bg_users * 0.015),
        "add_to_fav_count": num(bg_users * 0.016),
        "zaikan_user": num(bg_users * 0.01),
        "like_user": num(bg_users * 0.02),
        "comment_count": num(bg_users * 0.003),
    }
    totals["share_count"] = num(totals["share_user"] * rng.uniform(1.1, 1.4))
    for article, k in articles_active(seed, appid, day, 7):
        for name, value in article.day(k).items():
            totals[name] += value
    noise = {
        "sources": {s: share * rng.uniform(0.85, 1.15) for s, share in CHANNEL_SOURCE_SHARE.items()},
        "hours": [w * rng.uniform(0.8, 1.2) for w in HOUR_PROFILE],
        "scenes": {s: share * rng.uniform(0.9, 1.1) for s, share in SHARE_SCENE_SHARE.items()},
        "read_scenes": {s: share * rng.uniform(0.8, 1.2) for s, share in READ_SCENES.items()},
    }
    # Channel rows and read scenes overlap: make their sum exceed the total by a clear margin.
    for name in ("sources", "read_scenes"):
        scale = OVERLAP / sum(noise[name].values())
        noise[name] = {s: v * scale for s, v in noise[name].items()}
    hour_sum = sum(noise["hours"])
    noise["hours"] = [1.1 * w / hour_sum for w in noise["hours"]]
    return {"totals": totals, **noise}
