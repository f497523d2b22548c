"""The server-side SVG: escaped text, broken lines where a day has no value, empty states, round axes,
negative values (net followers) below a 0 line."""

from __future__ import annotations

import re

import pytest

from wechat_datacube.dashboard.svg import STATUS_COLORS, Series, line_chart, nice_ceiling, status_grid, y_ticks
from wechat_datacube.load_status import LoadStatus


def test_line_chart_escapes_text_and_breaks_the_line_where_a_day_is_missing() -> None:
    svg = line_chart("c", "t", [Series("<script>alert(1)</script>", [(1, 5), (2, None), (3, 7)])],
                     x_ticks=[1, 3], x_label=lambda x: f"d{x:g}")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert svg.count('class="point"') == 2 and svg.count("<polyline") == 2
    assert 'data-points="2"' in svg


def test_charts_without_values_say_so_instead_of_drawing_axes() -> None:
    svg = line_chart("c", "t", [Series("a", [(1, None)])], x_ticks=[1], x_label=str, empty_message="nothing")
    assert 'class="chart empty"' in svg and "nothing" in svg and 'class="point"' not in svg
    assert 'data-points="0"' in status_grid("g", "t", [])


def test_y_axis_tops_are_round_numbers() -> None:
    assert [nice_ceiling(v) for v in (0, 3, 7, 12, 480, 5001)] == [1.0, 5.0, 10.0, 20.0, 500.0, 10000.0]


def test_every_load_state_has_its_own_colour_on_the_freshness_grid() -> None:
    colours = [STATUS_COLORS[status] for status in LoadStatus]
    assert len(set(colours)) == len(colours) == len(LoadStatus)
    svg = status_grid("g", "t", [("getuserread", [("2026-01-01", LoadStatus.KEPT), ("2026-01-02", "missing")])])
    assert f'fill="{STATUS_COLORS[LoadStatus.KEPT]}"' in svg and 'data-y="kept"' in svg


@pytest.mark.parametrize(
    ("low", "high", "grid"),
    [
        (0, 48, [0, 12.5, 25, 37.5, 50]),  # nothing negative: 0 to a round top, as before
        (-15, 30, [-20, 0, 20, 40]),
        (-60, 30, [-100, -50, 0, 50]),
        (-3, -1, [-3, -2, -1, 0]),  # only losses: the 0 line on top
        (-50, 50, [-50, 0, 50]),
    ],
)
def test_y_grid_reaches_below_zero_in_round_steps_only_when_a_value_is_negative(
    low: float, high: float, grid: list[float]
) -> None:
    assert y_ticks(low, high) == grid


def test_negative_values_are_drawn_inside_the_plot_below_a_marked_zero_line() -> None:
    svg = line_chart("c", "t", [Series("net", [(1, 16), (2, -15), (3, 22)])], x_ticks=[1, 3],
                     x_label=lambda x: f"d{x:g}")
    ys = [float(y) for y in re.findall(r'<circle class="point" cx="[^"]+" cy="([^"]+)"', svg)]
    (zero,) = [float(y) for y in re.findall(r'<line class="grid zero" x1="[^"]+" y1="([^"]+)"', svg)]
    bottom = max(float(y) for y in re.findall(r'<line class="axis" x1="[^"]+" y1="([^"]+)"', svg))
    assert ys[1] > zero > ys[0] > ys[2] >= 16  # below the 0 line, above it; SVG y grows downwards
    assert ys[1] <= bottom
    ticks = re.findall(r'<text class="tick"[^>]*text-anchor="end">([^<]+)</text>', svg)
    assert ticks == ["-20", "-10", "0", "10", "20", "30"] and 'data-y="-15"' in svg
