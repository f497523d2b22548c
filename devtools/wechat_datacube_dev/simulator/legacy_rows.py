"""The legacy six's answers: flat rows (getarticletotal: a nested ``details`` list).

Shapes and field names as in section 2 of the reference: only the magnitudes come from
:mod:`.data`. getuserread's channel rows carry only the fields WeChat gives for them
(ori_page_* and add_to_fav_* are on the "all" row only).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from wechat_datacube_dev.simulator.data import (
    ARTICLE_CHANNEL_SHARE,
    FEED_SHARE_SHARE,
    USER_SOURCE_SPLIT_START,
    DayQuery,
    account_day,
    articles_active,
    articles_sent,
    num,
)
from wechat_datacube_dev.simulator.facts import ALL_USER_SOURCE, LEGACY_METRICS

Row = dict[str, Any]

#: The metrics getuserread gives on its channel (non-"all") rows.
_CHANNEL_METRICS = ("int_page_read_user", "int_page_read_count", "share_user", "share_count")


def _legacy_values(values: dict[str, int]) -> dict[str, int]:
    """Just the legacy metric fields (the story also keeps zaikan/like/comment counts)."""
    return {n: values[n] for n in LEGACY_METRICS}


def summary_rows(q: DayQuery) -> list[Row]:
    """getarticlesummary: articles of the last 7 days with >= 3 interactions on the day."""
    rows = []
    for article, k in articles_active(q.seed, q.appid, q.day, 7):
        values = _legacy_values(article.day(k))
        if values["int_page_read_count"] + values["share_count"] + values["add_to_fav_count"] < 3:
            continue
        rows.append({"ref_date": q.day.isoformat(), "msgid": article.msgid, "title": article.title,
                     "user_source": 0, **values})
    return rows


def _channel_values(cumulative: dict[str, int]) -> dict[str, int]:
    """getarticletotal's channel splits of cumulative readers, reads and Moments shares."""
    out = {}
    for slug, share in ARTICLE_CHANNEL_SHARE.items():
        out[f"int_page_from_{slug}_read_user"] = num(cumulative["int_page_read_user"] * share)
        out[f"int_page_from_{slug}_read_count"] = num(cumulative["int_page_read_count"] * share)
    for slug, share in FEED_SHARE_SHARE.items():
        out[f"feed_share_from_{slug}_user"] = num(cumulative["share_user"] * share)
        out[f"feed_share_from_{slug}_cnt"] = num(cumulative["share_count"] * share)
    return out


def total_rows(q: DayQuery, series_days: int) -> list[Row]:
    """getarticletotal: per article sent on the day, cumulative details up to the newest published day."""
    rows = []
    days = min(series_days, (q.last_ready - q.day).days + 1)
    for article in articles_sent(q.seed, q.appid, q.day):
        details = []
        for k, cumulative in enumerate(article.running_totals(days)):
            values = _legacy_values(cumulative)
            details.append({
                "stat_date": (q.day + dt.timedelta(days=k)).isoformat(),
                "target_user": article.target_user,
                **values,
                **_channel_values(values),
            })
        rows.append({"ref_date": q.day.isoformat(), "msgid": article.msgid, "title": article.title,
                     "details": details})
    return rows


def _per_hour(q: DayQuery, rows: list[Row], hourly: bool, counts: tuple[str, ...]) -> list[Row]:
    """The day's rows as they are, or each spread over 24 ``ref_hour`` rows."""
    if not hourly:
        return rows
    hours = account_day(q.seed, q.appid, q.day)["hours"]
    out = []
    for row in rows:
        for hour, weight in enumerate(hours):
            spread = {n: num(v * weight) if n in counts else v for n, v in row.items()}
            out.append({"ref_date": row["ref_date"], "ref_hour": hour * 100, **spread})
    return out


def user_read_rows(q: DayQuery, hourly: bool) -> list[Row]:
    """getuserread(hour): the "all" row, and from 2020-02-28 one row per (overlapping) channel."""
    info = account_day(q.seed, q.appid, q.day)
    totals = _legacy_values(info["totals"])
    rows: list[Row] = [{"ref_date": q.day.isoformat(), "user_source": ALL_USER_SOURCE, **totals}]
    if q.day >= USER_SOURCE_SPLIT_START:
        for source, share in info["sources"].items():
            rows.append({"ref_date": q.day.isoformat(), "user_source": source,
                         **{n: num(totals[n] * share) for n in _CHANNEL_METRICS}})
    return _per_hour(q, rows, hourly, LEGACY_METRICS)


def user_share_rows(q: DayQuery, hourly: bool) -> list[Row]:
    """getusershare(hour): one row per share scene."""
    info = account_day(q.seed, q.appid, q.day)
    rows: list[Row] = []
    for scene, share in info["scenes"].items():
        users = num(info["totals"]["share_user"] * share)
        count = max(users, num(info["totals"]["share_count"] * share))
        rows.append({"ref_date": q.day.isoformat(), "share_scene": scene, "share_user": users, "share_count": count})
    return _per_hour(q, rows, hourly, ("share_user", "share_count"))
