"""The dashboard page: a plain HTML form (account, date range) and the server-side SVG charts.

Rendered from the same report data the JSON endpoints return (:mod:`.report`), so what
the page shows and what the API says cannot drift. No JavaScript: changing the account or
the range is a GET of the form, which also makes every view a shareable URL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Sequence
from html import escape
from typing import Any

from wechat_datacube.accounts import AccountConfig
from wechat_datacube.dashboard.labels import publish_type_label
from wechat_datacube.dashboard.queries import DETAIL_DAYS
from wechat_datacube.dashboard.svg import STATUS_COLORS, Series, legend, line_chart, status_grid
from wechat_datacube.dates import iter_days
from wechat_datacube.endpoints import get_endpoint

#: Chart ids on the page (the browser test checks each rendered with points).
CHART_IDS = (
    "chart-daily-reads",
    "chart-daily-engagement",
    "chart-read-sources",
    "chart-share-scenes",
    "chart-hourly",
    "chart-top-articles",
    "chart-read-scenes",
    "chart-biz-summary",
    "chart-biz-engagement",
    "chart-article-curves",
    "chart-followers",
    "chart-followers-total",
    "chart-follow-sources-new",
    "chart-follow-sources-cancel",
    "chart-follow-sources-net",
    "chart-messages",
    "chart-message-users",
    "chart-freshness",
)
#: getbizsummary's daily overview as two charts of (legend name, column): readers outnumber
#: the interactions some fiftyfold, which would flatten them on one y axis.
BIZ_READERS = (("readers", "read_user"), ("sharers", "share_user"))
BIZ_ENGAGEMENT = (("Wow (在看)", "zaikan_user"), ("likes (thumbs-up)", "like_user"), ("comments", "comment_count"))
#: Follower growth per day, summed over the follow sources; the total followers on their own axis.
FOLLOW_CHANGES = (("new followers", "new_user"), ("unfollows", "cancel_user"), ("net", "net_user"))
FOLLOW_TOTAL = (("total followers", "cumulate_user"),)
#: The per-source charts: (chart id suffix, title, column).
FOLLOW_SOURCE_CHARTS = (
    ("new", "New followers by follow source", "new_user"),
    ("cancel", "Unfollows by follow source", "cancel_user"),
    ("net", "Net followers by follow source", "net_user"),
)

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans CJK SC",sans-serif;margin:16px;color:#222}
h1{font-size:20px;margin:0 0 12px} h2{font-size:16px;margin:24px 0 4px} p.note{color:#666;margin:2px 0 8px;font-size:13px}
form{display:flex;gap:12px;align-items:end;flex-wrap:wrap;margin-bottom:8px} label{font-size:12px;display:flex;flex-direction:column}
.notice{background:#fff4ce;border:1px solid #e6c200;padding:8px;margin:8px 0;font-size:13px}
.error{background:#fde2e1;border-color:#d62728}
svg.chart{width:100%;max-width:100%;height:auto;display:block} .axis{stroke:#444} .grid{stroke:#e5e5e5}
.line{stroke-width:2} .line.total{stroke-width:4} .tick,.y-title{font-size:11px;fill:#555} .no-data{font-size:14px;fill:#888}
ul.legend{list-style:none;padding:0;margin:4px 0;display:flex;flex-wrap:wrap;gap:12px;font-size:12px}
.grid.zero{stroke:#999}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
table{border-collapse:collapse;font-size:12px;margin-top:6px} td,th{border:1px solid #ddd;padding:3px 6px;text-align:left}
td.num{text-align:right}
"""


def _date_ticks(begin: dt.date, end: dt.date, most: int = 8) -> list[float]:
    """Evenly spaced day ticks that always include both ends.

    The last day is the one a reader looks for; when it falls close after the last regular
    tick, it replaces that tick instead of joining it (the two labels would overlap).
    """
    days = (end - begin).days
    step = max(1, -(-days // (most - 1))) if days else 1
    ticks = [float(begin.toordinal() + i) for i in range(0, days + 1, step)]
    last = float(end.toordinal())
    if ticks[-1] != last:
        if len(ticks) > 1 and last - ticks[-1] < 0.6 * step:
            ticks[-1] = last
        else:
            ticks.append(last)
    return ticks


def _date_label(x: float) -> str:
    return dt.date.fromordinal(int(x)).isoformat()


def _over_days(
    begin: dt.date, end: dt.date, rows: Sequence[dict[str, Any]], metric: str, zero_on: Container[dt.date] = ()
) -> list[tuple[float, Any]]:
    """(day, value) for every day of the range; None where no row (the line breaks there), but 0 on
    the days of ``zero_on`` (days WeChat answered without a row for this series: it had nothing)."""
    by_day = {r["ref_date"]: r[metric] for r in rows}
    return [(float(d.toordinal()), by_day.get(d, 0 if d in zero_on else None)) for d in iter_days(begin, end)]


def _date_chart(
    chart_id: str,
    title: str,
    series: list[Series],
    begin: dt.date,
    end: dt.date,
    y_title: str,
    empty_message: str = "No data in this range",
) -> str:
    chart = line_chart(
        chart_id,
        title,
        series,
        x_ticks=_date_ticks(begin, end),
        x_label=_date_label,
        y_title=y_title,
        empty_message=empty_message,
    )
    return chart + legend([s.name for s in series])


def _day_ticks(last: int, step: int) -> list[float]:
    """Ticks 0, step, 2·step … and always ``last`` (the end of the curve's range)."""
    ticks = [float(d) for d in range(0, last + 1, step)]
    return ticks if ticks[-1] == last else [*ticks, float(last)]


def _curve_chart(chart_id: str, title: str, series: list[Series], last_day: int, step: int, empty_message: str) -> str:
    """Cumulative readers by days since sending: the shape both article families' curves share."""
    chart = line_chart(
        chart_id,
        title,
        series,
        x_ticks=_day_ticks(last_day, step),
        x_label=lambda x: f"day {int(x)}",
        y_title="cumulative readers",
        empty_message=empty_message,
    )
    return chart + legend([s.name for s in series])


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Container[int] = ()) -> str:
    """An HTML table, every cell escaped (titles and msgids come from WeChat); nothing for no rows."""
    if not rows:
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if i in numeric else ''}>{escape(str(v))}</td>" for i, v in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _daily(data: dict[str, Any]) -> str:
    begin, end, rows = data["begin"], data["end"], data["daily"]
    reads = [
        Series("readers", _over_days(begin, end, rows, "int_page_read_user")),
        Series("reads", _over_days(begin, end, rows, "int_page_read_count")),
    ]
    engagement = [
        Series("sharers", _over_days(begin, end, rows, "share_user")),
        Series("shares", _over_days(begin, end, rows, "share_count")),
        Series("favourite users", _over_days(begin, end, rows, "add_to_fav_user")),
        Series("favourites", _over_days(begin, end, rows, "add_to_fav_count")),
    ]
    return (
        "<h2>Article page readers and reads per day</h2>"
        '<p class="note">getuserread, the all-sources (99999999) row: channels overlap and are never summed.</p>'
        + _date_chart("chart-daily-reads", "Readers and reads per day", reads, begin, end, "per day")
        + "<h2>Shares and favourites per day</h2>"
        + _date_chart("chart-daily-engagement", "Shares and favourites per day", engagement, begin, end, "per day")
    )


def _by_code(data: dict[str, Any], section: str, metric: str, only_active: bool = False) -> list[Series]:
    """One series per code of ``section``. ``only_active``: the endpoint sends a row only for the codes
    that had activity (follow sources, message types), so on a day with rows a code without one is 0."""
    begin, end = data["begin"], data["end"]
    answered = {p["ref_date"] for s in data[section] for p in s["points"]} if only_active else set()
    return [
        Series(s["label"], _over_days(begin, end, s["points"], metric, answered), total=s.get("total", False))
        for s in data[section]
    ]


def _sources(data: dict[str, Any]) -> str:
    begin, end = data["begin"], data["end"]
    return (
        "<h2>Readers by read source</h2>"
        '<p class="note">getuserread per user_source; a reader can arrive through several sources.</p>'
        + _date_chart("chart-read-sources", "Readers by read source", _by_code(data, "sources", "int_page_read_user"),
                      begin, end, "readers")
        + "<h2>Shares by share scene</h2>"
        + _date_chart("chart-share-scenes", "Shares by share scene", _by_code(data, "share_scenes", "share_count"),
                      begin, end, "shares")
    )


def _hourly(data: dict[str, Any]) -> str:
    rows = data["hourly"]
    metrics = (("reads", "int_page_read_count"), ("readers", "int_page_read_user"), ("shares", "share_count"))
    series = [Series(name, [(r["ref_hour"] / 100, r[m]) for r in rows]) for name, m in metrics]
    chart = line_chart(
        "chart-hourly",
        "Hourly profile",
        series,
        x_ticks=[float(h) for h in range(0, 24, 3)] + [23.0],
        x_label=lambda x: f"{int(x):02d}:00",
        y_title="average per day",
    )
    days = max((r["days"] for r in rows), default=0)
    return (
        "<h2>Hourly profile</h2>"
        f'<p class="note">Average per hour (Beijing time) over {days} day(s): getuserreadhour (all sources) '
        "and getusersharehour (all scenes).</p>" + chart + legend([s.name for s in series])
    )


def _short(title: str | None, most: int = 28) -> str:
    title = title or "(untitled)"
    return title if len(title) <= most else title[: most - 1] + "…"


def _articles(data: dict[str, Any]) -> str:
    articles = data["articles"]
    series = [
        Series(f"{_short(a['title'])} ({a['ref_date']})", [(float(p["day"]), p["int_page_read_user"]) for p in a["curve"]])
        for a in articles
    ]
    longest = max((p["day"] for a in articles for p in a["curve"]), default=6)
    chart = _curve_chart(
        "chart-top-articles",
        "Top articles: cumulative readers after sending",
        series,
        last_day=max(longest, 6),
        step=1,
        empty_message="No articles sent in this range",
    )
    table = _table(
        ("title", "sent", "delivered to", "readers", "reads", "as of"),
        [
            (a["title"] or "", a["ref_date"], a["target_user"] or 0, a["int_page_read_user"] or 0,
             a["int_page_read_count"] or 0, a["latest_stat_date"])
            for a in articles
        ],
        numeric={2, 3, 4},
    )
    return (
        "<h2>Top articles and their 7-day cumulative curves</h2>"
        '<p class="note">getarticletotal: articles sent in the range, ranked by their latest cumulative readers.</p>'
        + chart + table
    )


def _read_scenes(data: dict[str, Any]) -> str:
    begin, end = data["begin"], data["end"]
    return (
        "<h2>Readers by scene per day</h2>"
        '<p class="note">getbizsummary read_user_source, one line per scene as WeChat names it. The thick '
        "全部 line is the total: a reader can arrive through several scenes, so the others do not add up to it.</p>"
        + _date_chart("chart-read-scenes", "Readers by scene per day", _by_code(data, "read_scenes", "user_count"),
                      begin, end, "readers", empty_message=_no_rows("getbizsummary"))
    )


def _no_rows(endpoint: str) -> str:
    return f"No {endpoint} data in this range"


def _metric_chart(
    data: dict[str, Any], section: str, chart_id: str, title: str, metrics: Sequence[tuple[str, str]], endpoint: str,
    y_title: str = "per day",
) -> str:
    """One line per (legend name, column) of a one-row-per-day section."""
    begin, end, rows = data["begin"], data["end"], data[section]
    series = [Series(name, _over_days(begin, end, rows, column)) for name, column in metrics]
    return _date_chart(chart_id, title, series, begin, end, y_title, empty_message=_no_rows(endpoint))


def _biz_summary(data: dict[str, Any]) -> str:
    return (
        "<h2>Account summary per day</h2>"
        '<p class="note">getbizsummary: readers and sharers, then Wow (在看), thumbs-up likes and comments per day '
        "(on their own axis: readers outnumber them by far).</p>"
        + _metric_chart(data, "biz_summary", "chart-biz-summary", "Readers and sharers per day", BIZ_READERS,
                        "getbizsummary")
        + _metric_chart(data, "biz_summary", "chart-biz-engagement", "Wow, likes and comments per day",
                        BIZ_ENGAGEMENT, "getbizsummary")
    )


def _family_note(
    account: AccountConfig | None, data: dict[str, Any], sections: Sequence[str], endpoint: str, what: str
) -> str:
    """Why ``sections`` are empty when the account does not pull ``endpoint``: name the family to add.

    Nothing when they have rows (an account that pulled the family before still shows them)
    or when the account pulls it (the chart's own empty state and freshness tell the rest).
    """
    if account is None or endpoint in account.endpoints or any(data[s] for s in sections):
        return ""
    family = get_endpoint(endpoint).family
    return (
        f'<div class="notice family" id="note-{escape(family)}">No data — {escape(what)} come from the '
        f"{escape(family)} family ({escape(endpoint)}), which account {escape(account.name)} does not pull: add "
        f"<code>{escape(family)}</code> to the account's endpoints in the accounts file.</div>"
    )


def _sums_table(header: Sequence[str], series: Sequence[dict[str, Any]], code: str, metrics: Sequence[str]) -> str:
    """A table of series: each one's label, its ``code`` and its range ``sums`` of ``metrics`` (see :mod:`.queries`)."""
    return _table(
        header,
        [(s["label"], s[code], *(s["sums"][m] for m in metrics)) for s in series],
        numeric=set(range(2, 2 + len(metrics))),
    )


def _followers(data: dict[str, Any], account: AccountConfig | None) -> str:
    begin, end = data["begin"], data["end"]
    by_source = "".join(
        _date_chart(f"chart-follow-sources-{suffix}", title, _by_code(data, "follow_sources", column, only_active=True),
                    begin, end, "followers", empty_message=_no_rows("getusersummary"))
        for suffix, title, column in FOLLOW_SOURCE_CHARTS
    )
    table = _sums_table(("follow source", "code", "new", "unfollows", "net"), data["follow_sources"],
                        "user_source", ("new_user", "cancel_user", "net_user"))
    return (
        "<h2>Follower growth per day</h2>"
        + _family_note(account, data, ("followers", "follow_sources"), "getusersummary", "followers")
        + '<p class="note">getusersummary summed over every follow source (source 0 is "other sources", one '
        "source among the others, not a total); net = new − unfollows. Total followers: getusercumulate.</p>"
        + _metric_chart(data, "followers", "chart-followers", "New, lost and net followers per day", FOLLOW_CHANGES,
                        "getusersummary", "followers")
        + _metric_chart(data, "followers", "chart-followers-total", "Total followers per day", FOLLOW_TOTAL,
                        "getusercumulate", "followers")
        + "<h2>Follower growth by follow source</h2>"
        '<p class="note">getusersummary per user_source: new followers, unfollows and net per day, then the '
        "range's sums per source. WeChat sends a row only for a source with activity: on a day it answered, a "
        "source without one is drawn at 0. New source codes appear as \"source &lt;code&gt;\".</p>"
        + by_source + table
    )


def _messages(data: dict[str, Any], account: AccountConfig | None) -> str:
    begin, end = data["begin"], data["end"]
    return (
        "<h2>Messages users sent the account per day</h2>"
        + _family_note(account, data, ("messages",), "getupstreammsg", "messages")
        + '<p class="note">getupstreammsg per message type: messages, and the users who sent them (a user who '
        "sent two types is in both lines). On a day with messages, a type without a row is drawn at 0; a day "
        "without any breaks the lines.</p>"
        + _date_chart("chart-messages", "Messages per day by type",
                      _by_code(data, "messages", "msg_count", only_active=True), begin, end, "messages",
                      empty_message=_no_rows("getupstreammsg"))
        + _date_chart("chart-message-users", "Users who sent messages per day by type",
                      _by_code(data, "messages", "msg_user", only_active=True), begin, end, "users",
                      empty_message=_no_rows("getupstreammsg"))
        + _sums_table(("message type", "code", "messages in the range"), data["messages"], "msg_type", ("msg_count",))
    )


def _article_label(article: dict[str, Any]) -> str:
    """msgid and publish date name an article (WeChat sends no title here); a known legacy title is added."""
    label = f"{article['msgid']} ({article['ref_date']})"
    return f"{label} {_short(article['title'], 20)}" if article.get("title") else label


def _article_curves(data: dict[str, Any]) -> str:
    articles = data["article_curves"]
    series = [Series(_article_label(a), [(float(p["day"]), p["read_user"]) for p in a["curve"]]) for a in articles]
    chart = _curve_chart(
        "chart-article-curves",
        f"Top articles: cumulative readers over {DETAIL_DAYS} days after publishing",
        series,
        last_day=DETAIL_DAYS - 1,
        step=5,
        empty_message="No getarticletotaldetail articles published in this range",
    )
    table = _table(
        ("msgid", "published", "title (legacy tables)", "notification", "readers", "sharers", "as of"),
        [
            (a["msgid"], a["ref_date"], a["title"] or "–", publish_type_label(a["publish_type"]),
             a["read_user"] if a["read_user"] is not None else "–",
             a["share_user"] if a["share_user"] is not None else "–", a["latest_stat_date"])
            for a in articles
        ],
        numeric={4, 5},
    )
    return (
        f"<h2>Top articles and their {DETAIL_DAYS}-day cumulative curves</h2>"
        '<p class="note">getarticletotaldetail: articles published in the range, ranked by their latest cumulative '
        f"readers (read_user), day 0 to {DETAIL_DAYS - 1} after publishing. WeChat sends no titles here: articles are "
        "named by msgid and publish date, with the title where a legacy table has it.</p>" + chart + table
    )


def _freshness(data: dict[str, Any]) -> str:
    reports = data["freshness"]
    grid = status_grid(
        "chart-freshness",
        "Data freshness per endpoint",
        [(r["endpoint"], [(c["ref_date"].isoformat(), c["status"]) for c in r["calendar"]]) for r in reports],
    )
    keys = "".join(
        f'<li><span class="swatch" style="background:{color};border:1px solid #bbb"></span>{escape(status)}</li>'
        for status, color in STATUS_COLORS.items()
    )

    def days(values: list[dt.date]) -> str:
        return escape(", ".join(d.isoformat() for d in values)) or "–"

    rows = "".join(
        f"<tr><td>{escape(r['endpoint'])}</td><td>{r['last_loaded'] or '–'}</td><td class=num>{r['loaded_days']}</td>"
        f"<td>{days(r['empty_days'])}</td><td>{days(r['not_ready_days'])}</td><td>{days(r['failed_days'])}</td>"
        f"<td>{escape(', '.join(_gap(g) for g in r['gaps'])) or '–'}</td></tr>"
        for r in reports
    )
    return (
        "<h2>Data freshness per endpoint</h2>"
        '<p class="note">From load_log. Gaps are days the endpoint should have but never fetched.</p>'
        + grid + f'<ul class="legend">{keys}</ul>'
        + "<table><tr><th>endpoint</th><th>last loaded day</th><th>loaded days</th><th>empty days</th>"
        f"<th>not ready</th><th>failed</th><th>gaps</th></tr>{rows}</table>"
    )


def _gap(gap: dict[str, Any]) -> str:
    return gap["from"].isoformat() if gap["days"] == 1 else f"{gap['from']}…{gap['to']} ({gap['days']} days)"


def _form(accounts: Sequence[AccountConfig], data: dict[str, Any] | None, selected: str | None, top: int) -> str:
    options = "".join(
        f'<option value="{escape(a.name)}"{" selected" if a.name == selected else ""}>{escape(a.name)}</option>'
        for a in accounts
    )
    begin = data["begin"].isoformat() if data else ""
    end = data["end"].isoformat() if data else ""
    return (
        '<form method="get">'
        f'<label>account<select name="account">{options}</select></label>'
        f'<label>from<input type="date" name="begin" value="{begin}"></label>'
        f'<label>to<input type="date" name="end" value="{end}"></label>'
        f'<label>top articles<input type="number" name="top" min="1" max="20" value="{top}"></label>'
        "<button type=submit>Show</button></form>"
    )


def render_page(
    *,
    accounts: Sequence[AccountConfig],
    account_errors: Sequence[str],
    selected: str | None,
    data: dict[str, Any] | None,
    error: str | None,
    top: int,
) -> str:
    """The whole page; ``data`` is :func:`report.build` with every section, or None (nothing to show)."""
    notices = [f'<div class="notice">{escape(m)}</div>' for m in account_errors]
    if error:
        notices.append(f'<div class="notice error">{escape(error)}</div>')
    if not accounts and not account_errors:
        notices.append('<div class="notice">No accounts are configured (include/accounts.yaml or '
                       "WECHAT_DATACUBE_ACCOUNTS).</div>")
    body = ""
    if data is not None:
        if data["missing_tables"]:
            notices.append(
                '<div class="notice">No data yet: schema tables '
                f"{escape(', '.join(data['missing_tables']))} do not exist (the pipeline has not run for "
                "this database).</div>"
            )
        account = next((a for a in accounts if a.name == selected), None)
        body = (
            _daily(data) + _sources(data) + _hourly(data) + _articles(data)
            + _read_scenes(data) + _biz_summary(data) + _article_curves(data)
            + _followers(data, account) + _messages(data, account) + _freshness(data)
        )
    title = f"WeChat datacube · {selected}" if selected else "WeChat datacube"
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        f"<meta name=viewport content='width=device-width, initial-scale=1'><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{_form(accounts, data, selected, top)}{''.join(notices)}{body}</body></html>"
    )
