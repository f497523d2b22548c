"""The simulator's own facts about WeChat's datacube endpoints.

Written from the official datacube pages (``developers.weixin.qq.com/doc/service/api/wedata/...``:
spans, first dates, response shapes; see ``tests/fixtures/wechat_samples/README.md`` and, for
the user / message / interface families, ``docs/datacube-families-research.md``) and the
API as it behaves (delays, maturing series), **not** from the pipeline's registry
(``wechat_datacube.endpoints``). The simulator stands in for WeChat, so it must be able to
disagree with the pipeline: when both read one table, a wrong fact there is "true" on both
sides and no test can see it. That happened once: the registry modelled the replacement
endpoints as flat rows, the simulator served flat rows, and everything passed.
``tests/unit/dev/test_simulator_data.py`` checks that no simulator module imports the registry.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, NamedTuple

#: WeChat keeps no usable history before this Beijing-time date (reference section 7).
HISTORY_START = dt.date(2014, 12, 1)
#: The four replacement endpoints serve data from this date on (reference section 3).
REPLACEMENT_START = dt.date(2025, 11, 1)
#: ``user_source`` of getuserread's account-wide row; channel rows overlap, so this is the total.
ALL_USER_SOURCE = 99999999
#: The metric fields the legacy six share (reference section 2), in the documented order.
LEGACY_METRICS: tuple[str, ...] = (
    "int_page_read_user", "int_page_read_count", "ori_page_read_user", "ori_page_read_count",
    "share_user", "share_count", "add_to_fav_user", "add_to_fav_count",
)
#: ``scene_desc`` of the "all" entry of ``read_user_source``: always first, equal to read_user.
ALL_SCENE = "全部"
#: A plausible metric no document mentions. WeChat adds fields without notice, so every
#: replacement item's numbers carry it: a client that fails on unknown fields fails here.
UNDOCUMENTED_FIELD = "forward_user"

Family = Literal["legacy", "replacement", "user", "message", "interface"]
#: What one row covers: its ref_date's day, or the week (labelled by its Monday) or calendar
#: month (labelled by its 1st) that starts there; a period is served only once it is over.
Period = Literal["day", "week", "month"]
#: Where a list item keeps its numbers: at its top level (``flat``), in an object
#: (``detail``), or in each element of a nested list (``nested_list``).
Shape = Literal["flat", "detail", "nested_list"]


class UnknownEndpointError(KeyError):
    """An endpoint name the simulator has no facts for (the control API answers 400)."""


class EndpointFacts(NamedTuple):
    """What WeChat does for one ``/datacube/<name>``, as far as the simulator models it."""

    name: str
    family: Family
    #: Most days one call may span; a wider range gets 61501.
    max_span: int
    #: First ref_date with data; earlier days contribute no rows.
    first_date: dt.date
    shape: Shape
    #: Key fields at the top level of a list item (the missing_key fault drops one).
    key: tuple[str, ...]
    #: An integer metric (the wrong_type fault turns it into text).
    metric: str
    #: Name of the ``detail`` object or the nested list, when the shape has one.
    holder: str | None = None
    #: Key fields of each nested-list element.
    element_key: tuple[str, ...] = ()
    #: The answer carries a top-level ``is_delay`` flag.
    is_delay: bool = False
    #: Stat days a cumulative series runs for (0: not cumulative).
    series_days: int = 0
    #: What one row covers (see :data:`Period`).
    period: Period = "day"
    #: Asked for alone (begin_date == end_date), the newest published day answers ``[]``,
    #: while any wider window still has it (community-reported for getusersummary).
    newest_alone_empty: bool = False

    def holders(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        """The dicts of ``item`` that hold its numbers (the item itself when flat)."""
        inner = item.get(self.holder) if self.holder else None
        if self.shape == "detail" and isinstance(inner, dict):
            return [inner]
        if self.shape == "nested_list" and isinstance(inner, list):
            return [e for e in inner if isinstance(e, dict)]
        return [item] if self.shape == "flat" else []


def _flat(family: Family, name: str, max_span: int, key: tuple[str, ...], metric: str, **more: Any) -> EndpointFacts:
    """An endpoint of ``family`` with data from HISTORY_START and (by default) flat rows."""
    return EndpointFacts(name, family, max_span, HISTORY_START, more.pop("shape", "flat"), key, metric, **more)


def _legacy(name: str, max_span: int, key: tuple[str, ...], metric: str, **more: Any) -> EndpointFacts:
    return _flat("legacy", name, max_span, key, metric, **more)


def _replacement(name: str, max_span: int, shape: Shape, holder: str, key: tuple[str, ...], metric: str,
                 **more: Any) -> EndpointFacts:
    return EndpointFacts(name, "replacement", max_span, REPLACEMENT_START, shape, key, metric, holder,
                         is_delay=True, **more)


FACTS: dict[str, EndpointFacts] = {
    f.name: f
    for f in (
        _legacy("getarticlesummary", 1, ("ref_date", "msgid"), "int_page_read_user"),
        _legacy("getarticletotal", 1, ("ref_date", "msgid"), "int_page_read_user", shape="nested_list",
                holder="details", element_key=("stat_date",), series_days=7),
        _legacy("getuserread", 3, ("ref_date", "user_source"), "int_page_read_user"),
        _legacy("getuserreadhour", 1, ("ref_date", "ref_hour", "user_source"), "int_page_read_user"),
        _legacy("getusershare", 7, ("ref_date", "share_scene"), "share_user"),
        _legacy("getusersharehour", 1, ("ref_date", "ref_hour", "share_scene"), "share_user"),
        _replacement("getarticleread", 1, "detail", "detail", ("ref_date", "msgid"), "read_user"),
        _replacement("getarticleshare", 1, "detail", "detail", ("ref_date", "msgid"), "share_user"),
        # 30 per several SDKs quoting the page; SimulatorConfig.max_spans can say otherwise.
        _replacement("getbizsummary", 30, "detail", "detail", ("ref_date",), "read_user"),
        _replacement("getarticletotaldetail", 1, "nested_list", "detail_list", ("ref_date", "msgid"), "read_user",
                     element_key=("stat_date",), series_days=30),
        # User analysis: "结束日期(最大跨度7天)" on both pages.
        _flat("user", "getusersummary", 7, ("ref_date", "user_source"), "new_user", newest_alone_empty=True),
        _flat("user", "getusercumulate", 7, ("ref_date",), "cumulate_user"),
        # Message analysis. The week/month pages say end_date "必须为同一天" (the old table: 30);
        # the dist pages "跨度不超过15天". The simulator plays the current pages.
        _flat("message", "getupstreammsg", 7, ("ref_date", "msg_type"), "msg_count"),
        _flat("message", "getupstreammsghour", 1, ("ref_date", "ref_hour", "msg_type"), "msg_count"),
        _flat("message", "getupstreammsgweek", 1, ("ref_date", "msg_type"), "msg_count", period="week"),
        _flat("message", "getupstreammsgmonth", 1, ("ref_date", "msg_type"), "msg_count", period="month"),
        _flat("message", "getupstreammsgdist", 15, ("ref_date", "count_interval"), "msg_user"),
        _flat("message", "getupstreammsgdistweek", 15, ("ref_date", "count_interval"), "msg_user", period="week"),
        _flat("message", "getupstreammsgdistmonth", 15, ("ref_date", "count_interval"), "msg_user", period="month"),
        # Interface (passive reply) analysis: "最大时间跨度30天" / "最大时间跨度为1天".
        _flat("interface", "getinterfacesummary", 30, ("ref_date",), "callback_count"),
        _flat("interface", "getinterfacesummaryhour", 1, ("ref_date", "ref_hour"), "callback_count"),
    )
}


def endpoint_facts(name: str) -> EndpointFacts:
    """The facts of ``name`` (the API name, e.g. ``getbizsummary``)."""
    try:
        return FACTS[name]
    except KeyError:
        raise UnknownEndpointError(
            f"the simulator knows no datacube endpoint {name!r}; known: {', '.join(sorted(FACTS))}"
        ) from None
