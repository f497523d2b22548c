"""The daily data report: one day's headline figures and the freshness of every endpoint, as one alert.

:func:`daily_figures` reads the figures of one account and day (readers, shares, the top
articles, each against the median of the 7 days before, the day's net followers when the
account pulls the ``user`` family, and one load state per endpoint the account pulls);
:func:`report_event` turns them into an :class:`AlertEvent` of kind ``DAILY_REPORT``.
Everything but the reads is pure, so the rules (the median needs 3 days of history, a
median of 0 or below has no percentage, ...) are tested without a database.

Where a figure comes from: readers from the ``daily_readers`` view, which already spans the
legacy -> replacement cutover. Shares and top articles come from the family the account
pulls for the day (the replacement family first when it does), falling back to the other
family's table when only that one holds the day. The two families count shares
differently (legacy: shares; replacement: users who shared), so a shares figure is only
compared with history from the same endpoint. Followers come from the ``daily_followers``
view (getusersummary's follows and unfollows summed over the follow sources, getusercumulate's
total): only for an account that pulls the ``user`` family, so an account without it gets the
message it always got. A table that does not exist (the account never loaded) gives "no
data", never an error.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wechat_datacube.alerts.events import AlertEvent, AlertKind
from wechat_datacube.endpoints import Family, get_endpoint

if TYPE_CHECKING:
    import psycopg

    from wechat_datacube.accounts import AccountConfig

#: The median is taken over this many days before the report's day ...
HISTORY_DAYS = 7
#: ... and only when at least this many of them have a value.
MIN_HISTORY = 3
#: Articles listed.
TOP_ARTICLES = 3
#: Longest title shown (a message line must stay one readable line).
MAX_TITLE = 60

#: What the followers figure counts, and the endpoint its net comes from (its total: getusercumulate).
NET_FOLLOWERS = "net followers"
FOLLOWS_ENDPOINT = "getusersummary"

#: Load states (``load_status.LoadStatus`` values, plus the dashboard's calendar states) in words.
STATE_WORDS: Mapping[str, str] = {
    "loaded": "loaded",
    "kept": "loaded (stored rows kept)",
    "empty": "empty (WeChat published no rows)",
    "not_ready": "not published yet",
    "failed": "failed",
    "missing": "not fetched",
    "n/a": "not expected",
}
#: States that need no one's attention: the day is done (stored, or published with no rows: an
#: account that sent nothing has an empty getarticletotal every such day) or not expected.
QUIET_STATES = frozenset({"loaded", "kept", "empty", "n/a"})


@dataclass(frozen=True)
class Change:
    """A value against the median of the days before it."""

    median: float
    #: value - median.
    absolute: float
    #: 100 * (value - median) / median; None when the median is 0 (no percentage of nothing) or below
    #: (net followers: a percentage of a loss reads backwards, the absolute change says it plainly).
    percent: float | None
    #: How many days the median was taken over.
    days: int


@dataclass(frozen=True)
class Figure:
    """One headline number of the day, where it came from and how it compares."""

    #: What it counts: ``readers``, ``shares``, ``sharers`` or ``net followers``.
    measure: str
    value: int | None = None
    #: The endpoint the value came from (None: no data).
    source: str | None = None
    #: Against the median of the :data:`HISTORY_DAYS` days before; None with less than :data:`MIN_HISTORY`.
    change: Change | None = None
    #: Days of the history window that had a value.
    history_days: int = 0


@dataclass(frozen=True)
class TopArticle:
    msgid: str
    title: str | None
    readers: int


@dataclass(frozen=True)
class EndpointState:
    """One endpoint's freshness for the report: the state of the day and the newest day ever loaded."""

    endpoint: str
    state: str
    last_loaded: dt.date | None

    @property
    def flagged(self) -> bool:
        """Whether someone should look: the day is expected and not done (not fetched, not published, failed)."""
        return self.state not in QUIET_STATES


@dataclass(frozen=True)
class Followers:
    """The day's followers: the net change (new - cancel) as a figure against its median, its parts and the total.

    Only the net is compared with history (it is what moved); a day that loses followers has
    a negative net, and a week of them a negative median.
    """

    net: Figure
    new: int | None = None
    cancel: int | None = None
    #: Total followers on the day (getusercumulate); None when that endpoint has no row for it.
    total: int | None = None


#: One ``daily_followers`` row: (new, cancel, net, total); a side the view has no row for is None.
FollowersRow = tuple[int | None, int | None, int | None, int | None]


@dataclass(frozen=True)
class DailyFigures:
    """Everything the daily report says about one account and day."""

    account: str
    day: dt.date
    readers: Figure
    shares: Figure
    top_articles: tuple[TopArticle, ...] = ()
    #: The endpoint the top articles came from (None: no article data for the day).
    top_source: str | None = None
    freshness: tuple[EndpointState, ...] = ()
    #: None when the account does not pull the ``user`` family: then the message has no followers line.
    followers: Followers | None = None


# --- pure rules ------------------------------------------------------------------


def history_window(day: dt.date) -> tuple[dt.date, dt.date]:
    """The days the median is taken over: the :data:`HISTORY_DAYS` days before ``day``."""
    return day - dt.timedelta(days=HISTORY_DAYS), day - dt.timedelta(days=1)


def median_change(value: int | None, history: Iterable[int | None]) -> Change | None:
    """``value`` against the median of ``history`` (None values are days without data).

    None when there is no value or fewer than :data:`MIN_HISTORY` days of history: a median
    of one or two days says more about those days than about the account.
    """
    known = [v for v in history if v is not None]
    if value is None or len(known) < MIN_HISTORY:
        return None
    median = float(statistics.median(known))
    absolute = value - median
    percent = None if median <= 0 else 100.0 * absolute / median
    return Change(median=median, absolute=absolute, percent=percent, days=len(known))


def figure(measure: str, day: dt.date, series: Mapping[dt.date, int], source: str | None) -> Figure:
    """The figure of ``day`` from a series of daily values (it may hold more days than the window)."""
    begin, end = history_window(day)
    history = [v for d, v in series.items() if begin <= d <= end]
    value = series.get(day)
    return Figure(
        measure=measure,
        value=value,
        source=source if value is not None else None,
        change=median_change(value, history),
        history_days=len(history),
    )


def pulls_followers(account: AccountConfig) -> bool:
    """Whether the report has a followers line: the account pulls an endpoint of the ``user`` family."""
    return any(get_endpoint(endpoint).family == "user" for endpoint in account.endpoints)


def followers_figure(day: dt.date, rows: Mapping[dt.date, FollowersRow]) -> Followers:
    """The followers of ``day`` from ``daily_followers`` rows {ref_date: (new, cancel, net, total)} around it.

    A day with a total but no follows (getusersummary not stored yet) has no net: "no data",
    with the total still shown.
    """
    net = {d: row[2] for d, row in rows.items() if row[2] is not None}
    new, cancel, _, total = rows.get(day, (None, None, None, None))
    return Followers(figure(NET_FOLLOWERS, day, net, FOLLOWS_ENDPOINT), new, cancel, total)


def family_order(account: AccountConfig, day: dt.date) -> tuple[Family, Family]:
    """The family the account pulls for ``day`` first (replacement when it pulls that one), then the other."""
    pulled: set[str] = set()
    for endpoint in account.endpoints:
        active_from, active_until = account.active_range(endpoint)
        if (active_from is None or active_from <= day) and (active_until is None or day <= active_until):
            pulled.add(get_endpoint(endpoint).family)
    if "legacy" in pulled and "replacement" not in pulled:
        return ("legacy", "replacement")
    return ("replacement", "legacy")


def endpoint_states(reports: Sequence[Mapping[str, Any]]) -> tuple[EndpointState, ...]:
    """The report's freshness from the dashboard's per-endpoint reports over the report's single day."""
    return tuple(
        EndpointState(r["endpoint"], r["calendar"][0]["status"] if r["calendar"] else "n/a", r["last_loaded"])
        for r in reports
    )


# --- formatting -------------------------------------------------------------------


def count(value: float) -> str:
    """``1,234`` (a median may be a half: ``1,234.5``)."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def signed(value: float) -> str:
    """``+61``, ``-3``, ``0``: a difference, with its sign."""
    if value < 0:
        return "-" + count(-value)
    return ("+" if value > 0 else "") + count(value)


def change_text(change: Change | None, history_days: int) -> str:
    """``+5.2% vs 7-day median`` (``+12 vs ...`` when the median is 0 or below), or why there is none."""
    if change is None:
        return f"no 7-day median yet ({history_days} of {HISTORY_DAYS} days of history, {MIN_HISTORY} needed)"
    if change.percent is None:
        return f"{signed(change.absolute)} vs 7-day median"
    return f"{'+' if change.percent >= 0 else ''}{change.percent:.1f}% vs 7-day median"


def figure_line(label: str, fig: Figure, value_text: str | None = None) -> str:
    """``**Readers**: 1,234 · +5.2% vs 7-day median (1,173, +61 over 7 days) · getbizsummary``.

    ``value_text`` words the value where the bare number says too little (followers).
    """
    if fig.value is None:
        return f"**{label}**: no data for the day"
    parts = [value_text or count(fig.value), change_text(fig.change, fig.history_days)]
    if fig.change is not None:
        parts[-1] += f" ({count(fig.change.median)}, {signed(fig.change.absolute)} over {fig.change.days} days)"
    parts.append(str(fig.source))
    return f"**{label}**: " + " · ".join(parts)


def followers_line(followers: Followers) -> str:
    """``**Followers**: +123 -45 = net +78 (total 12,345) · +12.0% vs 7-day median (70, +8 over 7 days) · ...``."""
    total = f" (total {count(followers.total)})" if followers.total is not None else ""
    net = followers.net.value
    if net is None:
        return figure_line("Followers", followers.net) + total
    moves = f"+{count(followers.new or 0)} -{count(followers.cancel or 0)} = net {signed(net)}"
    return figure_line("Followers", followers.net, moves + total)


def title_text(article: TopArticle) -> str:
    """The title on one line, cut to :data:`MAX_TITLE` characters; the msgid when WeChat gave none."""
    title = " ".join((article.title or "").split())
    if not title:
        return f"(untitled {article.msgid})"
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…"


def article_lines(figures: DailyFigures) -> list[str]:
    if not figures.top_articles:
        return ["**Top articles**: no article data for the day"]
    lines = [f"**Top articles**: by readers on the day ({figures.top_source})"]
    lines += [f"{i}. {title_text(a)} · {count(a.readers)} readers · {a.msgid}"
              for i, a in enumerate(figures.top_articles, start=1)]
    return lines


def freshness_line(state: EndpointState, day: dt.date) -> str:
    """``**getuserread**: 2026-06-19 loaded · last loaded 2026-06-19`` (``⚠`` before a day not stored)."""
    words = STATE_WORDS.get(state.state, state.state)
    flag = "⚠ " if state.flagged else ""
    last = state.last_loaded.isoformat() if state.last_loaded else "never"
    return f"**{state.endpoint}**: {flag}{day.isoformat()} {words} · last loaded {last}"


def headline(figures: DailyFigures) -> str:
    """``demo · 2026-06-19 · 1,234 readers (+5.2% vs 7-day median)``."""
    text = f"{figures.account} · {figures.day.isoformat()}"
    readers = figures.readers
    if readers.value is None:
        text += " · no reader data"
    else:
        text += f" · {count(readers.value)} readers"
        if readers.change is not None:
            text += f" ({change_text(readers.change, readers.history_days)})"
    flagged = sum(s.flagged for s in figures.freshness)
    if flagged:
        text += f" · {flagged} endpoint{'s' if flagged > 1 else ''} not loaded"
    return text


def report_event(figures: DailyFigures) -> AlertEvent:
    """The daily report as one event (kind ``DAILY_REPORT``): headline plus markdown detail lines."""
    shares_label = figures.shares.measure.capitalize()
    details = [
        figure_line("Readers", figures.readers),
        figure_line(shares_label, figures.shares),
        *([followers_line(figures.followers)] if figures.followers is not None else []),
        *article_lines(figures),
        f"**Freshness** of {figures.day.isoformat()}:" if figures.freshness else "**Freshness**: no endpoints",
        *(freshness_line(s, figures.day) for s in figures.freshness),
    ]
    day = figures.day.isoformat()
    return AlertEvent(
        AlertKind.DAILY_REPORT, headline=headline(figures), account=figures.account, begin_date=day, end_date=day,
        details=tuple(details),
    )


def summary(figures: DailyFigures) -> dict[str, Any]:
    """A small JSON-ready summary (the report task's XCom): figures and flags, no text, no secret.

    ``followers`` only for an account that pulls the ``user`` family (the others' XCom is unchanged).
    """
    result: dict[str, Any] = {
        "account": figures.account,
        "day": figures.day.isoformat(),
        "readers": figures.readers.value,
        "readers_change_percent": _rounded(figures.readers.change),
        "shares": figures.shares.value,
        "shares_measure": figures.shares.measure,
        "top_msgids": [a.msgid for a in figures.top_articles],
        "not_loaded": [s.endpoint for s in figures.freshness if s.flagged],
    }
    if figures.followers is not None:
        f = figures.followers
        result["followers"] = {"net": f.net.value, "net_change_percent": _rounded(f.net.change), "new": f.new,
                               "cancel": f.cancel, "total": f.total}
    return result


def _rounded(change: Change | None) -> float | None:
    return None if change is None or change.percent is None else round(change.percent, 1)


# --- the reads ---------------------------------------------------------------------


def daily_figures(
    conn: psycopg.Connection[Any], schema: str, account: AccountConfig, day: dt.date, today: dt.date | None = None
) -> DailyFigures:
    """Read the figures of ``account`` on ``day`` (``today``: Beijing today, for what freshness expects).

    One read transaction on ``conn`` (joined if the caller has one open, else opened and
    closed here). Tables that do not exist read as no data.
    """
    from wechat_datacube.alerts import report_queries as rq
    from wechat_datacube.dashboard.freshness import endpoint_freshness
    from wechat_datacube.dashboard.queries import LOAD_LOG, TITLE_TABLES, existing_tables
    from wechat_datacube.dates import DateRange, beijing_today
    from wechat_datacube.storage.connection import read_transaction

    yesterday = (today or beijing_today()) - dt.timedelta(days=1)
    order = family_order(account, day)
    sources = [*rq.SHARES.values(), *rq.ARTICLES.values()]
    with read_transaction(conn), conn.cursor() as cur:
        present = existing_tables(
            cur, schema, {rq.DAILY_READERS, rq.DAILY_FOLLOWERS, LOAD_LOG, *TITLE_TABLES, *(s.table for s in sources)}
        )
        readers = _readers(cur, schema, account.name, day) if rq.DAILY_READERS in present else Figure("readers")
        shares = _shares(cur, schema, account.name, day, order, present)
        top, top_source = _top_articles(cur, schema, account.name, day, order, present)
        followers = _followers(cur, schema, account.name, day, present) if pulls_followers(account) else None
        log_rows, latest = rq.load_log(cur, schema, account.name, day) if LOAD_LOG in present else ([], {})
    reports = endpoint_freshness(account, DateRange(day, day), log_rows, latest, yesterday)
    return DailyFigures(
        account=account.name,
        day=day,
        readers=readers,
        shares=shares,
        top_articles=top,
        top_source=top_source,
        freshness=endpoint_states(reports),
        followers=followers,
    )


def _readers(cur: psycopg.Cursor[Any], schema: str, account: str, day: dt.date) -> Figure:
    """Readers from the ``daily_readers`` view: one series across the cutover, whichever endpoint each day came from."""
    from wechat_datacube.alerts import report_queries as rq

    readers = rq.readers_by_day(cur, schema, account, history_window(day)[0], day)
    source = readers[day][1] if day in readers else None
    return figure("readers", day, {d: v for d, (v, _) in readers.items()}, source)


def _followers(cur: psycopg.Cursor[Any], schema: str, account: str, day: dt.date, present: set[str]) -> Followers:
    """Followers from the ``daily_followers`` view over the day and its history window (no view: no data)."""
    from wechat_datacube.alerts import report_queries as rq

    rows = rq.followers_by_day(cur, schema, account, history_window(day)[0], day) if rq.DAILY_FOLLOWERS in present else {}
    return followers_figure(day, rows)


def _shares(
    cur: psycopg.Cursor[Any], schema: str, account: str, day: dt.date, order: tuple[Family, Family], present: set[str]
) -> Figure:
    """Shares of the first family (in ``order``) whose table holds ``day``; history from that table only."""
    from wechat_datacube.alerts import report_queries as rq

    for family in order:
        total = rq.SHARES[family]
        if total.table in present:
            series = rq.totals_by_day(cur, schema, account, total, history_window(day)[0], day)
            if day in series:
                return figure(total.measure, day, series, total.endpoint)
    return Figure(rq.SHARES[order[0]].measure)


def _top_articles(
    cur: psycopg.Cursor[Any], schema: str, account: str, day: dt.date, order: tuple[Family, Family], present: set[str]
) -> tuple[tuple[TopArticle, ...], str | None]:
    """The day's most read articles from the first family (in ``order``) that has any, and that endpoint."""
    from wechat_datacube.alerts import report_queries as rq
    from wechat_datacube.dashboard.queries import TITLE_TABLES

    titles = tuple(t for t in TITLE_TABLES if t in present)
    for family in order:
        source = rq.ARTICLES[family]
        if source.table in present:
            rows = rq.top_articles(cur, schema, account, source, day, TOP_ARTICLES, titles)
            if rows:
                return tuple(TopArticle(r["msgid"], r["title"], r["readers"]) for r in rows), source.endpoint
    return (), None


__all__ = [
    "Change",
    "DailyFigures",
    "EndpointState",
    "Figure",
    "Followers",
    "TopArticle",
    "daily_figures",
    "median_change",
    "report_event",
    "summary",
]
