"""The one registry of WeChat datacube endpoint facts.

Every other module (hook, storage, operator, DAGs, docs) reads endpoint facts from here
instead of repeating them: the API path, the maximum span of one call, the first date with
data, the natural key, the typed columns with their comments, *where in a list item the
numbers live* (flat, in a ``detail`` object, or in a nested list such as getarticletotal's
``details``), and how long values keep maturing. The simulator is the one exception on
purpose: it keeps its own facts, so that it can disagree with this file.

Facts come from WeChat's official pages under https://developers.weixin.qq.com/doc/service
(mirrored under ``/doc/subscription``), ``api/wedata/news/api_<name>.html``: 图文分析数据接口
(Graphic Analysis Data Interface) for the legacy six — 获取图文群发每日数据 (getarticlesummary),
获取图文群发总数据 (getarticletotal), 获取图文阅读概况数据 / 分时数据 (getuserread /
getuserreadhour), 获取图文转发概况数据 / 分时数据 (getusershare / getusersharehour) — and for
the replacement four 获取发表内容每日阅读数据 (getarticleread), 获取发表内容每日分享数据
(getarticleshare), 获取发表内容概况总数据 (getbizsummary) and 获取发表内容发表详细数据
(getarticletotaldetail). tests/fixtures/wechat_samples/README.md says what each sample took
from which page. What the pages leave uncertain (getbizsummary's span, quoted by SDKs) is a
plain value here, so a wrong guess is a one-line change, not a rewrite — and the window
loader falls back to one-day calls if WeChat refuses a wider getbizsummary window (61501).

Beside the article analysis stand three more families, from ``api/wedata/user/``,
``api/wedata/mess/`` and ``api/wedata/api/``: ``user`` (获取用户增减数据 getusersummary,
获取累计用户数据 getusercumulate), ``message`` (获取消息发送概况/分时/周/月数据 getupstreammsg,
-hour, -week, -month; 获取消息发送分布(周/月)数据 getupstreammsgdist, -week, -month) and
``interface`` (获取被动回复概要/分布数据 getinterfacesummary, -hour).
docs/datacube-families-research.md quotes those pages. Where they contradict themselves
(the week/month spans; "必须为同一天" beside two-day examples), the registry takes the reading
that is valid under both, and says so beside the value.
"""


import datetime as dt
from typing import Literal, NamedTuple

from wechat_datacube.periods import Period

ColumnType = Literal["int", "bigint", "text", "date", "float", "jsonb", "bool"]
Family = Literal["legacy", "replacement", "user", "message", "interface"]

#: WeChat keeps no usable history before this Beijing-time date.
HISTORY_START = dt.date(2014, 12, 1)
#: The replacement endpoints serve data from this date on.
REPLACEMENT_START = dt.date(2025, 11, 1)


# The records are NamedTuples, not frozen dataclasses: this module is imported at every
# DAG-file parse, and building the two dataclasses (several exec'd methods each) made the
# import 1.8 ms instead of ~0.65 ms (bench/parse_time.py). Both are immutable and compare
# by value.


class Column(NamedTuple):
    """One typed column: the API's own field name, its SQL type and what it means."""

    name: str
    type: ColumnType
    comment: str
    #: Key columns are NOT NULL and part of the primary key.
    required: bool = False


class SceneList(NamedTuple):
    """A jsonb column holding a list of ``{scene_desc, user_count}`` objects, unnested by a view.

    The view has the table's key columns plus ``scene_desc`` and ``user_count``: one row per
    scene, so SQL users need no jsonb. The list includes the 全部 (all) entry: scenes overlap,
    so a total is read from 全部, never summed.
    """

    column: str
    view: str


class EndpointSpec(NamedTuple):
    """Everything the pipeline needs to know about one datacube endpoint."""

    name: str
    family: Family
    table: str
    max_span: int
    first_date: dt.date
    description: str
    #: Natural key (without ``account``), in primary-key order.
    key: tuple[str, ...]
    #: Typed columns of the stored (flattened) row, key columns included.
    columns: tuple[Column, ...]
    #: Name of the nested list to flatten (one stored row per element), if any.
    nested: str | None = None
    #: Name of the object in each list item (or nested element) that holds the numbers,
    #: if any: the replacement family nests them (``{"ref_date", "msgid", "detail": {...}}``).
    detail: str | None = None
    #: jsonb scene-list columns unnested by a view (one row per scene).
    scene_lists: tuple[SceneList, ...] = ()
    #: Columns of the stored row that come from the parent object when ``nested`` is set.
    parent_columns: tuple[str, ...] = ()
    #: Days after ref_date during which values still change (cumulative series).
    maturity_days: int = 0
    #: The response carries a top-level ``is_delay`` flag.
    has_is_delay: bool = False
    #: An account-wide daily summary: every published day of an account with readers has rows, so
    #: a day still without rows at its readiness deadline is news (an alert), not a quiet day.
    #: Per-article endpoints are empty on days nothing was sent or changed (the official note).
    daily_summary: bool = False
    #: What one ref_date describes: a day, or a week / month labelled by its first day and
    #: served only once it is over (see :mod:`wechat_datacube.periods`).
    period: Period = "day"
    #: Days before a one-day window that the same call also asks for: getusersummary may
    #: answer ``[]`` for yesterday alone while a two-day window returns both days.
    lookback_days: int = 0

    @property
    def path(self) -> str:
        return f"/datacube/{self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Documented measurement fields: a row carrying none of them has lost its numbers."""
        return tuple(c.name for c in self.columns if c.type in METRIC_TYPES and c.name not in self.key)

    @property
    def shape(self) -> str:
        """Where a list item keeps its numbers, in words (docs and error messages)."""
        if self.nested and self.detail:
            return f"in each {self.nested}[] element's {self.detail!r} object"
        if self.nested:
            return f"in each element of the nested list {self.nested!r}"
        if self.detail:
            return f"in the {self.detail!r} object of each list item"
        return "at the top level of each list item"

    @property
    def date_column(self) -> str:
        """The column that places a row in the requested date window (always ref_date)."""
        return "ref_date"


#: Column types that hold measurements (see ``EndpointSpec.metric_names``); ``int`` is for codes.
METRIC_TYPES: tuple[ColumnType, ...] = ("bigint", "float", "jsonb")


# --- column building blocks ------------------------------------------------------

def _c(name: str, type_: ColumnType, comment: str, required: bool = False) -> Column:
    return Column(name, type_, comment, required)


REF_DATE = _c("ref_date", "date", "Beijing-time calendar date the row describes.", True)
MSGID = _c("msgid", "text", "Article id '<msg_data_id>_<index>' (index = position in the mass send).", True)
TITLE = _c("title", "text", "Article title as WeChat reported it.")
#: ``user_source`` of the account-wide total row: use it for totals, never the sum of channels.
ALL_SOURCES = 99999999
USER_SOURCE = _c(
    "user_source",
    "int",
    f"Read source: {ALL_SOURCES} all (use this for totals; channels overlap), 0 chat session, "
    "1 friend forward, 2 Moments, 3 Tencent Weibo (legacy), 4 history page, 5 other, "
    "6 Top Stories, 7 Search.",
    True,
)
SHARE_SCENE = _c(
    "share_scene", "int", "Share scene: 1 friend forward, 2 Moments, 3 Tencent Weibo (legacy), 255 other.", True
)
REF_HOUR = _c("ref_hour", "int", "Hour of the day as HHMM of its start: 0, 100, ..., 2300.", True)
STAT_DATE = _c("stat_date", "date", "Day up to which the cumulative values are counted.", True)

LEGACY_METRICS: tuple[Column, ...] = (
    _c("int_page_read_user", "bigint", "Readers of the article page."),
    _c("int_page_read_count", "bigint", "Reads of the article page."),
    _c("ori_page_read_user", "bigint", "Readers of the 'read original' page."),
    _c("ori_page_read_count", "bigint", "Reads of the 'read original' page."),
    _c("share_user", "bigint", "Users who shared."),
    _c("share_count", "bigint", "Shares."),
    _c("add_to_fav_user", "bigint", "Users who added the article to favourites."),
    _c("add_to_fav_count", "bigint", "Adds to favourites."),
)

_READ_CHANNELS = ("session", "hist_msg", "feed", "friends", "other", "kanyikan", "souyisou")
_CHANNEL_LABEL = {
    "session": "chat sessions",
    "hist_msg": "the history page",
    "feed": "Moments",
    "friends": "friend forwards",
    "other": "other sources",
    "kanyikan": "Top Stories",
    "souyisou": "Search",
}
ARTICLE_TOTAL_CHANNELS: tuple[Column, ...] = tuple(
    _c(f"int_page_from_{ch}_read_{kind}", "bigint", f"Cumulative article page {label} from {_CHANNEL_LABEL[ch]}.")
    for ch in _READ_CHANNELS
    for kind, label in (("user", "readers"), ("count", "reads"))
) + tuple(
    _c(f"feed_share_from_{ch}_{kind}", "bigint", f"Cumulative Moments shares ({label}) from {_CHANNEL_LABEL[ch]}.")
    for ch in ("session", "feed", "other")
    for kind, label in (("user", "users"), ("cnt", "count"))
)

SHARE_METRICS: tuple[Column, ...] = (
    _c("share_user", "bigint", "Users who shared."),
    _c("share_count", "bigint", "Shares."),
)

READ_USER_SOURCE = _c(
    "read_user_source",
    "jsonb",
    "Readers split by scene: list of {scene_desc, user_count}; the 全部 (all) entry is the total "
    "(scenes overlap: never sum them). New scenes appear without notice.",
)
#: The object in which the replacement family keeps each item's numbers.
DETAIL = "detail"

#: Official pages of the three families added after the article analysis interface, under
#: https://developers.weixin.qq.com/doc/service/api/wedata/: user/api_<name> (用户分析),
#: mess/api_<name> (消息分析) and api/api_<name> (被动回复, formerly 接口分析);
#: docs/datacube-families-research.md quotes each page and says what it leaves open.
FOLLOW_SOURCE = _c(
    "user_source",
    "int",
    "Follow source: 0 all other sources (not a total: a day's total is the sum of its rows), "
    "1 Official Account search, 17 business card, 30 QR code scan, 57 account name in an article, "
    "100 WeChat ads, 149 Mini Program, 161 reposted by others, 200 Channels (视频号), 201 live; "
    "older history may carry 43, 51 (after payment; in 0 since 2023-06), 75, 78, 176. "
    "New codes appear without notice.",
    True,
)
MSG_TYPE = _c(
    "msg_type",
    "int",
    "Message type: 1 text, 2 image, 3 voice, 4 video, 6 third-party app (link) message; no 5 is documented.",
    True,
)
COUNT_INTERVAL = _c(
    "count_interval",
    "int",
    "Bucket of messages one user sent (发送消息量分布的区间): 0 = none, 1 = 1-5, 2 = 6-10, 3 = more than 10.",
    True,
)
MSG_METRICS: tuple[Column, ...] = (
    _c("msg_user", "bigint", "Users who sent messages to the account (上行发送了消息的用户数)."),
    _c("msg_count", "bigint", "Messages users sent to the account (上行发送了消息的消息总数)."),
)
MSG_DIST_USER = _c("msg_user", "bigint", "Users whose number of messages falls in count_interval.")
WEEK_START = _c(
    "ref_date", "date", "Monday labelling the Monday..Sunday week the row covers; served after the week ends.", True
)
MONTH_START = _c("ref_date", "date", "1st of the month the row covers; served after the month ends.", True)
CALLBACK_HOUR = _c(
    "ref_hour",
    "int",
    "Hour of the day (数据的小时), HHMM of its start like the article hour endpoints (0, 100, ..., 2300); "
    "the page's only example is 0, so the format is assumed.",
    True,
)
INTERFACE_METRICS: tuple[Column, ...] = (
    _c("callback_count", "bigint", "Passive replies to user messages via the server URL (被动回复用户消息的次数)."),
    _c("fail_count", "bigint", "Failed passive replies (上述动作的失败次数)."),
    _c(
        "total_time_cost",
        "bigint",
        "Total reply time, in ms (unit inferred: the page gives none); / callback_count = the average.",
    ),
    _c("max_time_cost", "bigint", "Longest reply time, in ms (unit inferred: the page gives none)."),
)



def _spec(**kwargs: object) -> EndpointSpec:
    return EndpointSpec(**kwargs)  # type: ignore[arg-type]


ENDPOINTS: dict[str, EndpointSpec] = {
    spec.name: spec
    for spec in (
        _spec(
            name="getarticlesummary",
            family="legacy",
            table="article_summary",
            max_span=1,
            first_date=HISTORY_START,
            description="Per mass-sent article, what happened on ref_date (articles with >= 3 interactions, "
            "for about 7 days after sending).",
            key=("ref_date", "msgid"),
            columns=(
                REF_DATE,
                MSGID,
                TITLE,
                _c("user_source", "int", "Undocumented; 0 when present."),
                *LEGACY_METRICS,
            ),
        ),
        _spec(
            name="getarticletotal",
            family="legacy",
            table="article_total",
            max_span=1,
            first_date=HISTORY_START,
            description="Per article sent on ref_date, cumulative values per stat_date for up to 7 days "
            "(stored flat: one row per article and stat_date).",
            key=("ref_date", "msgid", "stat_date"),
            columns=(
                _c("ref_date", "date", "Send date of the article (Beijing time).", True),
                MSGID,
                TITLE,
                STAT_DATE,
                _c("target_user", "bigint", "Users the mass send was delivered to."),
                *LEGACY_METRICS,
                *ARTICLE_TOTAL_CHANNELS,
            ),
            nested="details",
            parent_columns=("ref_date", "msgid", "title"),
            maturity_days=7,
        ),
        _spec(
            name="getuserread",
            family="legacy",
            table="user_read",
            max_span=3,
            first_date=HISTORY_START,
            description="Account-wide article reads per day and read source.",
            key=("ref_date", "user_source"),
            columns=(REF_DATE, USER_SOURCE, *LEGACY_METRICS),
            daily_summary=True,
        ),
        _spec(
            name="getuserreadhour",
            family="legacy",
            table="user_read_hour",
            max_span=1,
            first_date=HISTORY_START,
            description="Account-wide article reads per hour and read source.",
            key=("ref_date", "ref_hour", "user_source"),
            columns=(REF_DATE, REF_HOUR, USER_SOURCE, *LEGACY_METRICS),
        ),
        _spec(
            name="getusershare",
            family="legacy",
            table="user_share",
            max_span=7,
            first_date=HISTORY_START,
            description="Account-wide shares per day and share scene.",
            key=("ref_date", "share_scene"),
            columns=(REF_DATE, SHARE_SCENE, *SHARE_METRICS),
        ),
        _spec(
            name="getusersharehour",
            family="legacy",
            table="user_share_hour",
            max_span=1,
            first_date=HISTORY_START,
            description="Account-wide shares per hour and share scene.",
            key=("ref_date", "ref_hour", "share_scene"),
            columns=(REF_DATE, REF_HOUR, SHARE_SCENE, *SHARE_METRICS),
        ),
        _spec(
            name="getarticleread",
            family="replacement",
            table="article_read",
            max_span=1,  # official notes: "only 1 day"
            first_date=REPLACEMENT_START,
            description="Per article read on ref_date: readers that day, split by scene.",
            key=("ref_date", "msgid"),
            columns=(
                REF_DATE,
                MSGID,
                _c("read_user", "bigint", "Readers of the article that day (the 全部 entry of read_user_source)."),
                READ_USER_SOURCE,
            ),
            detail=DETAIL,
            scene_lists=(SceneList("read_user_source", "article_read_scene"),),
            has_is_delay=True,
        ),
        _spec(
            name="getarticleshare",
            family="replacement",
            table="article_share",
            max_span=1,  # official notes
            first_date=REPLACEMENT_START,
            description="Per article shared on ref_date: sharers that day.",
            key=("ref_date", "msgid"),
            columns=(REF_DATE, MSGID, _c("share_user", "bigint", "Users who shared the article that day.")),
            detail=DETAIL,
            has_is_delay=True,
        ),
        _spec(
            name="getbizsummary",
            family="replacement",
            table="biz_summary",
            # "最长支持查询30天" per several SDKs quoting the page; a 61501 for a wider window
            # makes the window loader fetch it again one day at a time.
            max_span=30,
            first_date=REPLACEMENT_START,
            description="Per day, an overview of the account's published content.",
            key=("ref_date",),
            columns=(
                REF_DATE,
                _c("read_user", "bigint", "Readers of the account's articles that day."),
                READ_USER_SOURCE,
                _c("share_user", "bigint", "Users who shared that day."),
                _c("zaikan_user", "bigint", "Users who tapped 'Wow' (在看 / 爱心赞) that day."),
                _c("like_user", "bigint", "Users who tapped thumbs-up (拇指赞) that day."),
                _c("comment_count", "bigint", "Comments that day."),
                _c("collection_user", "bigint", "Users who collected (favourited) that day."),
                _c("redirect_ori_page_user", "bigint", "Users who went on to the 'read original' page that day."),
                _c("send_page_count", "bigint", "Articles (pages) sent that day."),
            ),
            detail=DETAIL,
            scene_lists=(SceneList("read_user_source", "biz_summary_scene"),),
            has_is_delay=True,
            daily_summary=True,
        ),
        _spec(
            name="getarticletotaldetail",
            family="replacement",
            table="article_total_detail",
            max_span=1,
            first_date=REPLACEMENT_START,
            description="Per article published on ref_date, values summed from the publish date to stat_date, "
            "for up to 30 days (stored flat: one row per article and stat_date).",
            key=("ref_date", "msgid", "stat_date"),
            columns=(
                _c("ref_date", "date", "Publish date of the article (Beijing time).", True),
                MSGID,
                _c(
                    "publish_type",
                    "int",
                    "0 = followers notified, 1 = notification off (2 seen in the wild, undocumented).",
                ),
                STAT_DATE,
                _c("read_user", "bigint", "Readers from the publish date up to stat_date."),
                READ_USER_SOURCE,
                _c("share_user", "bigint", "Sharers up to stat_date."),
                _c("read_subscribe_user", "bigint", "Users who followed the account after reading (阅读后关注), up to stat_date."),
                _c("read_delivery_rate", "float", "Fraction of delivered followers who read (0..1)."),
                _c("read_finish_rate", "float", "Fraction of readers who read to the end (0..1)."),
                _c("read_avg_activetime", "float", "Average active reading time, in minutes."),
                _c("zaikan_user", "bigint", "'Wow' (在看) users up to stat_date."),
                _c("like_user", "bigint", "Thumbs-up users up to stat_date."),
                _c("praise_money", "bigint", "Tips (赞赏) up to stat_date, in fen (1/100 yuan)."),
                _c("comment_count", "bigint", "Comments up to stat_date."),
                _c("collection_user", "bigint", "Collectors up to stat_date."),
                _c("read_jump_position", "jsonb", "Scroll-depth curve: list of {position, rate}."),
            ),
            nested="detail_list",
            parent_columns=("ref_date", "msgid", "publish_type"),
            scene_lists=(SceneList("read_user_source", "article_total_detail_scene"),),
            maturity_days=30,
            has_is_delay=True,
        ),
        _spec(
            name="getusersummary",
            family="user",
            table="user_summary",
            max_span=7,  # "结束日期(最大跨度7天)"
            first_date=HISTORY_START,
            description="Account-wide follows and unfollows per day and follow source (net = new - cancel).",
            key=("ref_date", "user_source"),
            columns=(
                REF_DATE,
                FOLLOW_SOURCE,
                _c("new_user", "bigint", "Users who followed that day from this source (新增的用户数量)."),
                _c("cancel_user", "bigint", "Users who unfollowed that day (取消关注的用户数量)."),
            ),
            daily_summary=True,  # a user_source 0 row comes every day, zeros included
            lookback_days=1,
        ),
        _spec(
            name="getusercumulate",
            family="user",
            table="user_cumulate",
            max_span=7,  # "结束日期(最大跨度7天)"
            first_date=HISTORY_START,
            description="Account-wide total followers per day.",
            key=("ref_date",),
            columns=(
                REF_DATE,
                _c("cumulate_user", "bigint", "Total followers (总用户量) on ref_date."),
                _c("user_source", "int", "Undocumented; 0 when present (real answers carry it)."),
            ),
            daily_summary=True,
        ),
        _spec(
            name="getupstreammsg",
            family="message",
            table="upstream_msg",
            max_span=7,  # "与end_date差值小于7天"
            first_date=HISTORY_START,
            description="Messages users sent to the account per day and message type.",
            key=("ref_date", "msg_type"),
            columns=(REF_DATE, MSG_TYPE, *MSG_METRICS),
        ),
        _spec(
            name="getupstreammsghour",
            family="message",
            table="upstream_msg_hour",
            max_span=1,  # "必须为同一天"
            first_date=HISTORY_START,
            description="Messages users sent to the account per hour and message type.",
            key=("ref_date", "ref_hour", "msg_type"),
            columns=(REF_DATE, REF_HOUR, MSG_TYPE, *MSG_METRICS),
        ),
        _spec(
            name="getupstreammsgweek",
            family="message",
            table="upstream_msg_week",
            # The current page says "必须为同一天" (the old table: 30); one label per call is
            # valid under both readings and costs one call a week.
            max_span=1,
            first_date=HISTORY_START,
            description="Messages users sent to the account per week (labelled by its Monday) and message type.",
            key=("ref_date", "msg_type"),
            columns=(WEEK_START, MSG_TYPE, *MSG_METRICS),
            period="week",
        ),
        _spec(
            name="getupstreammsgmonth",
            family="message",
            table="upstream_msg_month",
            max_span=1,  # "must be the same day" on the current page (the old table: 30)
            first_date=HISTORY_START,
            description="Messages users sent to the account per month (labelled by its 1st) and message type.",
            key=("ref_date", "msg_type"),
            columns=(MONTH_START, MSG_TYPE, *MSG_METRICS),
            period="month",
        ),
        _spec(
            name="getupstreammsgdist",
            family="message",
            table="upstream_msg_dist",
            max_span=15,  # "跨度不超过15天"
            first_date=HISTORY_START,
            description="Users per bucket of how many messages they sent the account that day.",
            key=("ref_date", "count_interval"),
            columns=(REF_DATE, COUNT_INTERVAL, MSG_DIST_USER),
        ),
        _spec(
            name="getupstreammsgdistweek",
            family="message",
            table="upstream_msg_dist_week",
            max_span=15,  # the current page says 15 (the old table: 30)
            first_date=HISTORY_START,
            description="Users per bucket of messages sent, per week (labelled by its Monday).",
            key=("ref_date", "count_interval"),
            columns=(WEEK_START, COUNT_INTERVAL, MSG_DIST_USER),
            period="week",
        ),
        _spec(
            name="getupstreammsgdistmonth",
            family="message",
            table="upstream_msg_dist_month",
            max_span=15,  # "跨度不超过15天" (the old table: 30)
            first_date=HISTORY_START,
            description="Users per bucket of messages sent, per month (labelled by its 1st).",
            key=("ref_date", "count_interval"),
            columns=(MONTH_START, COUNT_INTERVAL, MSG_DIST_USER),
            period="month",
        ),
        _spec(
            name="getinterfacesummary",
            family="interface",
            table="interface_summary",
            max_span=30,  # "结束日期(最大时间跨度30天)"
            first_date=HISTORY_START,
            description="Per day, the health of the account's passive replies (server callback): count, "
            "failures, time.",
            key=("ref_date",),
            columns=(REF_DATE, *INTERFACE_METRICS),
        ),
        _spec(
            name="getinterfacesummaryhour",
            family="interface",
            table="interface_summary_hour",
            max_span=1,  # "最大时间跨度为1天"
            first_date=HISTORY_START,
            description="Per hour, the health of the account's passive replies (server callback).",
            key=("ref_date", "ref_hour"),
            columns=(REF_DATE, CALLBACK_HOUR, *INTERFACE_METRICS),
        ),
    )
}

LEGACY: tuple[str, ...] = tuple(n for n, s in ENDPOINTS.items() if s.family == "legacy")
REPLACEMENT: tuple[str, ...] = tuple(n for n, s in ENDPOINTS.items() if s.family == "replacement")
#: Family keyword -> its endpoints, in registry order. ``legacy`` and ``replacement`` are the
#: two generations of the article analysis (an account switches at its ``cutover_date``); the
#: others stand beside both.
FAMILIES: dict[str, tuple[str, ...]] = {
    family: tuple(n for n, s in ENDPOINTS.items() if s.family == family)
    for family in ("legacy", "replacement", "user", "message", "interface")
}
#: The families of article analysis, one generation before and one after the cutover.
ARTICLE_GENERATIONS: tuple[str, str] = ("legacy", "replacement")


class UnknownEndpointError(KeyError):
    """Raised for an endpoint name the registry does not know."""


def get_endpoint(name: str) -> EndpointSpec:
    """Return the spec of ``name`` (the API name, e.g. ``getusershare``)."""
    try:
        return ENDPOINTS[name]
    except KeyError:
        raise UnknownEndpointError(
            f"unknown datacube endpoint {name!r}; known: {', '.join(sorted(ENDPOINTS))}"
        ) from None


def expand_endpoints(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Expand family keywords (``legacy``, ``replacement``, ``user``, ...) and check names, keeping order."""
    out: list[str] = []
    for name in names:
        for expanded in FAMILIES.get(name, (name,)):
            get_endpoint(expanded)
            if expanded not in out:
                out.append(expanded)
    return tuple(out)
