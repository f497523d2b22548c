"""The daily report's pure rules: the median change, the history it needs, which family, and the wording."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from wechat_datacube.accounts import parse_account
from wechat_datacube.alerts.daily_report import (
    Change,
    DailyFigures,
    EndpointState,
    Figure,
    Followers,
    TopArticle,
    endpoint_states,
    family_order,
    figure,
    followers_figure,
    followers_line,
    headline,
    median_change,
    pulls_followers,
    report_event,
    summary,
    title_text,
)
from wechat_datacube.alerts.events import AlertKind

DAY = dt.date(2026, 6, 19)


def days_before(day: dt.date, values: list[int]) -> dict[dt.date, int]:
    """{day - n: value}: the last value is the day before ``day``."""
    return {day - dt.timedelta(days=len(values) - i): v for i, v in enumerate(values)}


def figures(**changes: object) -> DailyFigures:
    base = {
        "account": "demo",
        "day": DAY,
        "readers": Figure("readers", 1234, "getbizsummary", Change(1173.0, 61.0, 61 / 1173 * 100, 7), 7),
        "shares": Figure("shares", 321, "getusershare", Change(331.0, -10.0, -10 / 331 * 100, 7), 7),
        "top_articles": (
            TopArticle("2247_1", "First *title*", 500),
            TopArticle("2247_2", None, 400),
            TopArticle("2246_1", "Third", 300),
        ),
        "top_source": "getarticlesummary",
        "freshness": (
            EndpointState("getuserread", "loaded", DAY),
            EndpointState("getusershare", "missing", DAY - dt.timedelta(days=2)),
            EndpointState("getusersharehour", "not_ready", None),
        ),
    }
    base.update(changes)
    return DailyFigures(**base)  # type: ignore[arg-type]


# --- the median change ---------------------------------------------------------------


def test_change_is_against_the_median_of_the_history_in_percent_and_absolute() -> None:
    change = median_change(110, [100, 90, 120, 100, 130])
    assert change == Change(median=100.0, absolute=10.0, percent=10.0, days=5)


def test_median_of_an_even_number_of_days_is_the_mean_of_the_middle_two() -> None:
    change = median_change(90, [80, 100, 120, 60])
    assert change is not None and change.median == 90.0 and change.absolute == 0.0 and change.percent == 0.0


def test_fewer_than_three_days_of_history_give_no_change() -> None:
    assert median_change(100, [100, 90]) is None
    assert median_change(100, [100, None, 90, None]) is None  # days without data do not count
    assert median_change(100, [100, None, 90, 80]) is not None


def test_no_value_for_the_day_gives_no_change() -> None:
    assert median_change(None, [1, 2, 3, 4]) is None


def test_a_median_of_zero_keeps_the_absolute_change_and_has_no_percentage() -> None:
    change = median_change(12, [0, 0, 5])
    assert change == Change(median=0.0, absolute=12.0, percent=None, days=3)


def test_figure_takes_its_history_from_the_seven_days_before_the_day_only() -> None:
    series = days_before(DAY, [1000, 1, 1, 1, 10, 20, 30, 40, 50, 60, 70]) | {DAY: 100, DAY + dt.timedelta(1): 9}
    fig = figure("readers", DAY, series, "getuserread")
    # The window is DAY-7..DAY-1 = 10..70 (not the 1000 eleven days before, not the day, not the day after).
    assert fig.history_days == 7 and fig.change is not None and fig.change.median == 40.0
    assert (fig.value, fig.source) == (100, "getuserread")


def test_figure_of_a_day_without_data_has_no_value_no_source_and_no_change() -> None:
    fig = figure("shares", DAY, days_before(DAY, [5, 6, 7]), "getusershare")
    assert (fig.value, fig.source, fig.change, fig.history_days) == (None, None, None, 3)


# --- which family -------------------------------------------------------------------------


def account(**extra: object):  # noqa: ANN201 - AccountConfig
    raw = {"name": "demo", "wechat_conn_id": "w", "postgres_conn_id": "p", "start_date": "2025-06-01",
           "endpoints": ["legacy"], **extra}
    return parse_account(raw)


def test_a_legacy_account_reads_the_legacy_family_first() -> None:
    assert family_order(account(), DAY) == ("legacy", "replacement")


def test_a_replacement_account_reads_the_replacement_family_first() -> None:
    assert family_order(account(endpoints=["replacement"]), DAY) == ("replacement", "legacy")


def test_with_a_cutover_the_day_decides_the_family() -> None:
    both = account(endpoints=["legacy", "replacement"], cutover_date="2026-01-01")
    assert family_order(both, dt.date(2025, 12, 31)) == ("legacy", "replacement")
    assert family_order(both, dt.date(2026, 1, 1)) == ("replacement", "legacy")


# --- freshness -------------------------------------------------------------------------------


def test_endpoint_states_take_the_days_state_and_the_last_loaded_day_from_the_dashboard_reports() -> None:
    reports = [
        {"endpoint": "getuserread", "calendar": [{"ref_date": DAY, "status": "loaded"}], "last_loaded": DAY},
        {"endpoint": "getusershare", "calendar": [{"ref_date": DAY, "status": "missing"}], "last_loaded": None},
        {"endpoint": "getarticleread", "calendar": [{"ref_date": DAY, "status": "n/a"}], "last_loaded": None},
    ]
    states = endpoint_states(reports)
    assert states == (
        EndpointState("getuserread", "loaded", DAY),
        EndpointState("getusershare", "missing", None),
        EndpointState("getarticleread", "n/a", None),
    )
    assert [s.flagged for s in states] == [False, True, False]


@pytest.mark.parametrize(("state", "flagged"), [
    ("loaded", False), ("kept", False), ("empty", False), ("n/a", False),
    ("not_ready", True), ("failed", True), ("missing", True),
])
def test_every_state_but_done_or_not_expected_is_flagged(state: str, flagged: bool) -> None:
    assert EndpointState("getusershare", state, None).flagged is flagged


# --- wording ---------------------------------------------------------------------------------


def test_headline_names_account_day_readers_and_the_change() -> None:
    assert headline(figures(freshness=())) == "demo · 2026-06-19 · 1,234 readers (+5.2% vs 7-day median)"


def test_headline_counts_the_endpoints_not_loaded() -> None:
    assert headline(figures()).endswith("(+5.2% vs 7-day median) · 2 endpoints not loaded")


def test_headline_of_a_fall_has_a_minus_sign() -> None:
    readers = Figure("readers", 900, "getuserread", median_change(900, [1000, 1000, 1000]), 3)
    expected = "demo · 2026-06-19 · 900 readers (-10.0% vs 7-day median)"
    assert headline(figures(readers=readers, freshness=())) == expected


def test_headline_without_history_gives_the_figure_alone_and_the_details_say_why() -> None:
    readers = Figure("readers", 50, "getbizsummary", None, 2)
    event = report_event(figures(readers=readers, freshness=()))
    assert event.headline == "demo · 2026-06-19 · 50 readers"
    assert event.details[0] == (
        "**Readers**: 50 · no 7-day median yet (2 of 7 days of history, 3 needed) · getbizsummary"
    )


def test_headline_without_reader_data_says_so() -> None:
    event = report_event(figures(readers=Figure("readers"), freshness=()))
    assert event.headline == "demo · 2026-06-19 · no reader data"
    assert event.details[0] == "**Readers**: no data for the day"


def test_event_is_a_daily_report_of_the_account_and_day() -> None:
    event = report_event(figures())
    assert event.kind is AlertKind.DAILY_REPORT
    assert (event.account, event.begin_date, event.end_date, event.dates) == ("demo", "2026-06-19", "2026-06-19",
                                                                            "2026-06-19")


def test_details_give_figures_top_three_and_one_freshness_line_per_endpoint() -> None:
    assert report_event(figures()).details == (
        "**Readers**: 1,234 · +5.2% vs 7-day median (1,173, +61 over 7 days) · getbizsummary",
        "**Shares**: 321 · -3.0% vs 7-day median (331, -10 over 7 days) · getusershare",
        "**Top articles**: by readers on the day (getarticlesummary)",
        "1. First *title* · 500 readers · 2247_1",
        "2. (untitled 2247_2) · 400 readers · 2247_2",
        "3. Third · 300 readers · 2246_1",
        "**Freshness** of 2026-06-19:",
        "**getuserread**: 2026-06-19 loaded · last loaded 2026-06-19",
        "**getusershare**: ⚠ 2026-06-19 not fetched · last loaded 2026-06-17",
        "**getusersharehour**: ⚠ 2026-06-19 not published yet · last loaded never",
    )


def test_replacement_shares_are_called_sharers() -> None:
    shares = Figure("sharers", 45, "getbizsummary", None, 0)
    assert report_event(figures(shares=shares)).details[1].startswith("**Sharers**: 45 · no 7-day median yet")


def test_a_median_of_zero_is_worded_as_an_absolute_change() -> None:
    shares = Figure("shares", 12, "getusershare", median_change(12, [0, 0, 0]), 3)
    assert report_event(figures(shares=shares)).details[1] == (
        "**Shares**: 12 · +12 vs 7-day median (0, +12 over 3 days) · getusershare"
    )


def test_a_day_without_articles_says_so() -> None:
    details = report_event(figures(top_articles=(), top_source=None)).details
    assert "**Top articles**: no article data for the day" in details
    assert not any(line.startswith("1. ") for line in details)


def test_a_long_or_multi_line_title_stays_on_one_short_line() -> None:
    text = title_text(TopArticle("1_1", "A\nvery   long title " + "x" * 80, 1))
    assert "\n" not in text and len(text) == 60 and text.startswith("A very long title x") and text.endswith("…")


def test_summary_is_small_json_with_figures_and_flags() -> None:
    result = summary(figures())
    assert json.loads(json.dumps(result)) == {
        "account": "demo",
        "day": "2026-06-19",
        "readers": 1234,
        "readers_change_percent": 5.2,
        "shares": 321,
        "shares_measure": "shares",
        "top_msgids": ["2247_1", "2247_2", "2246_1"],
        "not_loaded": ["getusershare", "getusersharehour"],
    }


# --- followers (accounts of the user family) --------------------------------------------------


def test_a_negative_value_against_a_positive_median_is_a_negative_percentage() -> None:
    assert median_change(-15, [10, 20, 30]) == Change(median=20.0, absolute=-35.0, percent=-175.0, days=3)


def test_a_negative_median_keeps_the_absolute_change_and_has_no_percentage() -> None:
    # -10 - (-30) would be "-66.7%" of a loss: a rise worded as a fall. The absolute change says it plainly.
    assert median_change(-10, [-20, -30, -40, 5]) == Change(median=-25.0, absolute=15.0, percent=None, days=4)
    assert median_change(-40, [-20, -30, -10]) == Change(median=-20.0, absolute=-20.0, percent=None, days=3)


def followers_rows(nets: list[int]) -> dict[dt.date, tuple[int, int, int, int]]:
    """``daily_followers`` rows of the days before DAY with these nets (new = 10 + net, cancel = 10)."""
    return {d: (10 + net, 10, net, 1000 + i) for i, (d, net) in enumerate(days_before(DAY, nets).items())}


def test_followers_figure_is_the_days_net_against_the_median_with_new_cancel_and_total() -> None:
    rows = followers_rows([5, 8, -2, 6, 4, 30, 7]) | {DAY: (3, 20, -17, 1031)}
    followers = followers_figure(DAY, rows)
    assert (followers.new, followers.cancel, followers.total) == (3, 20, 1031)
    assert followers.net == Figure("net followers", -17, "getusersummary", Change(6.0, -23.0, 100 * -23 / 6, 7), 7)


def test_followers_of_a_day_without_a_row_have_no_data() -> None:
    followers = followers_figure(DAY, followers_rows([5, 8, 6]))
    assert followers == Followers(Figure("net followers", None, None, None, 3))
    assert followers_line(followers) == "**Followers**: no data for the day"


def test_a_day_with_a_total_but_no_follows_has_no_net_and_still_shows_the_total() -> None:
    followers = followers_figure(DAY, followers_rows([5, 8, 6]) | {DAY: (None, None, None, 12345)})
    assert (followers.net.value, followers.total) == (None, 12345)
    assert followers_line(followers) == "**Followers**: no data for the day (total 12,345)"
    # ... and days without a net do not count as history.
    assert followers_figure(DAY, {DAY - dt.timedelta(1): (None, None, None, 9), DAY: (1, 0, 1, 10)}).net.history_days == 0


def test_followers_line_gives_follows_unfollows_net_total_and_the_change() -> None:
    followers = Followers(Figure("net followers", 78, "getusersummary", median_change(78, [60, 70, 80, 70, 65]), 5),
                          new=123, cancel=45, total=12345)
    assert followers_line(followers) == (
        "**Followers**: +123 -45 = net +78 (total 12,345) · +11.4% vs 7-day median (70, +8 over 5 days) · getusersummary"
    )


def test_followers_line_of_a_loss_against_a_losing_week_is_worded_as_an_absolute_change() -> None:
    followers = Followers(Figure("net followers", -5, "getusersummary", median_change(-5, [-20, -12, -3]), 3),
                          new=0, cancel=5, total=None)
    assert followers_line(followers) == (
        "**Followers**: +0 -5 = net -5 · +7 vs 7-day median (-12, +7 over 3 days) · getusersummary"
    )


def test_followers_line_without_history_says_why_there_is_no_change() -> None:
    followers = Followers(Figure("net followers", 0, "getusersummary", None, 1), new=4, cancel=4, total=500)
    assert followers_line(followers) == (
        "**Followers**: +4 -4 = net 0 (total 500) · no 7-day median yet (1 of 7 days of history, 3 needed)"
        " · getusersummary"
    )


def test_only_an_account_of_the_user_family_has_followers() -> None:
    assert not pulls_followers(account())
    assert not pulls_followers(account(endpoints=["replacement", "message", "interface"]))
    assert pulls_followers(account(endpoints=["legacy", "user"]))
    assert pulls_followers(account(endpoints=["replacement", "getusercumulate"]))


def test_the_followers_line_comes_after_the_shares_and_only_with_followers() -> None:
    followers = Followers(Figure("net followers", -3, "getusersummary", None, 0), new=2, cancel=5, total=99)
    with_line = report_event(figures(followers=followers)).details
    without = report_event(figures()).details
    assert with_line[2] == "**Followers**: +2 -5 = net -3 (total 99) · no 7-day median yet (0 of 7 days of history," \
                           " 3 needed) · getusersummary"
    assert with_line[:2] + with_line[3:] == without
    assert not any("Followers" in line for line in without)
    assert report_event(figures(followers=followers)).headline == report_event(figures()).headline


def test_summary_of_an_account_with_followers_carries_them() -> None:
    followers = Followers(Figure("net followers", -17, "getusersummary", median_change(-17, [6, 4, 8]), 3),
                          new=3, cancel=20, total=1031)
    result = summary(figures(followers=followers))
    assert json.loads(json.dumps(result["followers"])) == {
        "net": -17, "net_change_percent": -383.3, "new": 3, "cancel": 20, "total": 1031,
    }
    assert {k: v for k, v in result.items() if k != "followers"} == summary(figures())
    assert "followers" not in summary(figures())
