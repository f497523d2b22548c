"""The replacement family's answers, in the official nested shapes (reference section 3).

Each list item keeps its keys at the top level and its numbers in an object ``detail``
(getarticletotaldetail: in each element of ``detail_list``). No item has a title. Every
``detail`` also carries :data:`~.facts.UNDOCUMENTED_FIELD`, because WeChat adds fields
without notice and the pipeline must keep, not choke on, what it does not know.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from wechat_datacube_dev.simulator.data import (
    Article,
    DayQuery,
    account_day,
    articles_active,
    articles_sent,
    is_quiet,
    num,
)
from wechat_datacube_dev.simulator.facts import ALL_SCENE, UNDOCUMENTED_FIELD

Row = dict[str, Any]

#: Share of sharers who forwarded to a chat: the value of the undocumented field.
_FORWARD_SHARE = 0.55
#: Days an article's readers are counted in getarticleread (its readers decay over 30 days).
_READ_WINDOW = 30


def scene_list(read_user: int, shares: dict[str, float]) -> list[dict[str, Any]]:
    """``read_user_source``: the 全部 entry (= read_user) first, then overlapping scenes."""
    return [{"scene_desc": ALL_SCENE, "user_count": read_user},
            *({"scene_desc": s, "user_count": num(read_user * f)} for s, f in shares.items())]


def _numbers(values: Row, share_user: int) -> Row:
    """The numbers of one item: the documented ones plus the one WeChat has not documented."""
    return {**values, UNDOCUMENTED_FIELD: num(share_user * _FORWARD_SHARE)}


def _article_item(q: DayQuery, article: Article, values: Row, share_user: int) -> Row:
    return {"ref_date": q.day.isoformat(), "msgid": article.msgid, "detail": _numbers(values, share_user)}


def article_read_rows(q: DayQuery) -> list[Row]:
    """getarticleread: every article read on the day, its readers split by scene."""
    scenes = account_day(q.seed, q.appid, q.day)["read_scenes"]
    rows = []
    for article, k in articles_active(q.seed, q.appid, q.day, _READ_WINDOW):
        day = article.day(k)
        readers = day["int_page_read_user"]
        if readers > 0:  # the list only holds articles that changed that day
            values = {"read_user": readers, "read_user_source": scene_list(readers, scenes)}
            rows.append(_article_item(q, article, values, day["share_user"]))
    return rows


def article_share_rows(q: DayQuery) -> list[Row]:
    """getarticleshare: every article shared on the day."""
    rows = []
    for article, k in articles_active(q.seed, q.appid, q.day, _READ_WINDOW):
        sharers = article.day(k)["share_user"]
        if sharers > 0:
            rows.append(_article_item(q, article, {"share_user": sharers}, sharers))
    return rows


def biz_summary_rows(q: DayQuery) -> list[Row]:
    """getbizsummary: one item per day, an overview of the account's published content."""
    info = account_day(q.seed, q.appid, q.day)
    totals = info["totals"]
    values = {
        "read_user": totals["int_page_read_user"],
        "read_user_source": scene_list(totals["int_page_read_user"], info["read_scenes"]),
        "share_user": totals["share_user"],
        "zaikan_user": totals["zaikan_user"],
        "like_user": totals["like_user"],
        "comment_count": totals["comment_count"],
        "collection_user": totals["add_to_fav_user"],
        "redirect_ori_page_user": totals["ori_page_read_user"],
        "send_page_count": len(articles_sent(q.seed, q.appid, q.day)),
    }
    return [{"ref_date": q.day.isoformat(), "detail": _numbers(values, totals["share_user"])}]


def _detail_element(article: Article, stat_date: dt.date, cum: dict[str, int], scenes: dict[str, float]) -> Row:
    """One ``detail_list`` element: sums from the publish date to ``stat_date``."""
    readers = cum["int_page_read_user"]
    values = {
        "stat_date": stat_date.isoformat(),
        "read_user": readers,
        "read_user_source": scene_list(readers, scenes),
        "share_user": cum["share_user"],
        "read_subscribe_user": num(readers * article.subscribe_rate),
        "read_delivery_rate": round(readers / max(1, article.target_user), 4),
        "read_finish_rate": article.read_finish_rate,
        "read_avg_activetime": article.read_avg_activetime,
        "zaikan_user": cum["zaikan_user"],
        "like_user": cum["like_user"],
        "praise_money": num(readers * article.praise_fen_per_reader),
        "comment_count": cum["comment_count"],
        "collection_user": cum["add_to_fav_user"],
        "read_jump_position": [{"position": p, "rate": r} for p, r in enumerate(article.jump_curve, start=1)],
    }
    return _numbers(values, cum["share_user"])


def total_detail_rows(q: DayQuery, series_days: int) -> list[Row]:
    """getarticletotaldetail: per article published on the day, cumulative values per stat day.

    The series runs for ``series_days`` stat days, cut at the newest published day; a
    quiet day adds nothing to it (nothing changed).
    """
    days = min(series_days, (q.last_ready - q.day).days + 1)
    skip = frozenset(
        k for k in range(days) if is_quiet(q.seed, q.appid, q.day + dt.timedelta(days=k), q.quiet_day_rate)
    )
    scenes = account_day(q.seed, q.appid, q.day)["read_scenes"]
    rows = []
    for article in articles_sent(q.seed, q.appid, q.day):
        details = [
            _detail_element(article, q.day + dt.timedelta(days=k), cum, scenes)
            for k, cum in enumerate(article.running_totals(days, skip))
        ]
        rows.append({"ref_date": q.day.isoformat(), "msgid": article.msgid, "publish_type": article.publish_type,
                     "detail_list": details})
    return rows
