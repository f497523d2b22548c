"""Server-side SVG charts: no JavaScript and no downloaded assets, so the page works offline.

Two shapes cover every chart: :func:`line_chart` (one or more series over a numeric x —
days, hours or days since sending) and :func:`status_grid` (the freshness calendar).
Every plotted value is an element with ``class="point"`` and ``data-series`` / ``data-x``
/ ``data-y`` attributes plus a ``<title>`` tooltip, so people can hover a value and tests
can count what a browser rendered. All text (article titles come from WeChat) is escaped.
Values may be negative (net followers): the y axis then reaches below a marked 0 line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

from wechat_datacube.dashboard.freshness import MISSING, NOT_EXPECTED
from wechat_datacube.load_status import LoadStatus

PALETTE = ("#07c160", "#1f77b4", "#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22")
#: A freshness cell's colour: each load state, then the calendar's own two (never fetched, not expected).
STATUS_COLORS: dict[str, str] = {
    LoadStatus.LOADED: "#07c160",
    LoadStatus.KEPT: "#74c476",
    LoadStatus.EMPTY: "#c7e9c0",
    LoadStatus.NOT_READY: "#ffbf00",
    LoadStatus.FAILED: "#d62728",
    MISSING: "#ffffff",
    NOT_EXPECTED: "#eeeeee",
}
_W, _H = 760, 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 40, 16, 40


@dataclass
class Series:
    """A named line: (x, y) points in x order; y None breaks the line (no data that day)."""

    name: str
    points: list[tuple[float, float | None]] = field(default_factory=list)
    #: Drawn thicker: the series is the total the others are parts of (and overlap within).
    total: bool = False


def nice_ceiling(value: float) -> float:
    """The smallest 1/2/5 x 10^k at or above ``value`` (1 for nothing), for a readable y axis."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def y_ticks(low: float, high: float) -> list[float]:
    """The y grid values for data between ``low`` and ``high``: five lines from 0 to a round top,
    or, when some value is negative (net followers), round steps below and above a 0 line.
    """
    if low >= 0:
        top = nice_ceiling(high)
        return [top * i / 4 for i in range(5)]
    step = nice_ceiling((max(high, 0) - low) / 4)
    below = math.ceil(-low / step - 1e-9)
    above = max(math.ceil(high / step - 1e-9), 0) if high > 0 else 0
    return [step * i for i in range(-below, above + 1)]


def _fmt(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if abs(value) >= 10_000:
        return f"{value / 1_000:g}k"
    return f"{value:g}"


def _empty(chart_id: str, title: str, message: str) -> str:
    return (
        f'<svg class="chart empty" id="{escape(chart_id)}" data-points="0" viewBox="0 0 {_W} 80" '
        f'width="{_W}" height="80" role="img" aria-label="{escape(title)}: {escape(message)}">'
        f'<text x="{_W / 2}" y="45" text-anchor="middle" class="no-data">{escape(message)}</text></svg>'
    )


@dataclass(frozen=True)
class _Frame:
    """Where values land: the plot area scaled to the x range and to a round y top."""

    x_min: float
    x_max: float
    #: The y grid values, lowest first: the plot spans the first to the last.
    y_grid: tuple[float, ...]
    width: float = _W - _LEFT - _RIGHT
    height: float = _H - _TOP - _BOTTOM

    def px(self, x: float) -> float:
        span = self.x_max - self.x_min
        return _LEFT + (self.width * (x - self.x_min) / span if span > 0 else self.width / 2)

    def py(self, y: float) -> float:
        low, high = self.y_grid[0], self.y_grid[-1]
        return _TOP + self.height * (1 - (y - low) / (high - low))


def _axes(frame: _Frame, x_ticks: Sequence[float], x_label: Callable[[float], str], y_title: str) -> list[str]:
    """Both axes, the y grid lines with their values (0 marked), the x tick labels and the y title."""
    bottom = _TOP + frame.height
    parts = [
        f'<line class="axis" x1="{_LEFT}" y1="{bottom}" x2="{_W - _RIGHT}" y2="{bottom}"/>',
        f'<line class="axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{bottom}"/>',
    ]
    for y in frame.y_grid:
        grid = "grid zero" if y == 0 and frame.y_grid[0] < 0 else "grid"
        at = f"{frame.py(y):.1f}"
        parts.append(f'<line class="{grid}" x1="{_LEFT}" y1="{at}" x2="{_W - _RIGHT}" y2="{at}"/>')
        parts.append(f'<text class="tick" x="{_LEFT - 6}" y="{frame.py(y) + 4:.1f}" text-anchor="end">{_fmt(y)}</text>')
    for x in x_ticks:
        parts.append(
            f'<text class="tick" x="{frame.px(x):.1f}" y="{bottom + 18}" text-anchor="middle">{escape(x_label(x))}</text>'
        )
    if y_title:
        parts.append(f'<text class="y-title" x="{_LEFT}" y="{_TOP - 4}">{escape(y_title)}</text>')
    return parts


def _runs(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """The runs of consecutive points with a value: a day without one breaks the line."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            runs.append([])
        else:
            runs[-1].append((x, y))
    return [run for run in runs if run]


def _series_marks(frame: _Frame, series: Series, color: str, x_label: Callable[[float], str]) -> list[str]:
    """A series' line (one polyline per run) and a circle with a tooltip per value."""
    line_class = "line total" if series.total else "line"
    runs = _runs(series.points)
    parts = [
        f'<polyline class="{line_class}" fill="none" stroke="{color}" '
        f'points="{" ".join(f"{frame.px(x):.1f},{frame.py(y):.1f}" for x, y in run)}"/>'
        for run in runs
    ]
    name = escape(series.name)
    for x, y in (point for run in runs for point in run):
        label = escape(x_label(x))
        parts.append(
            f'<circle class="point" cx="{frame.px(x):.1f}" cy="{frame.py(y):.1f}" r="3" fill="{color}" '
            f'data-series="{name}" data-x="{label}" data-y="{y:g}"><title>{name} · {label}: {y:g}</title></circle>'
        )
    return parts


def line_chart(
    chart_id: str,
    title: str,
    series: Sequence[Series],
    *,
    x_ticks: Sequence[float],
    x_label: Callable[[float], str],
    y_title: str = "",
    empty_message: str = "No data in this range",
) -> str:
    """A multi-series line chart with a circle per value; an SVG string."""
    values = [y for s in series for _, y in s.points if y is not None]
    if not values:
        return _empty(chart_id, title, empty_message)
    xs = [x for s in series for x, _ in s.points] + list(x_ticks)
    frame = _Frame(min(xs), max(xs), tuple(y_ticks(min(values), max(values))))
    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" data-points="{len(values)}" viewBox="0 0 {_W} {_H}" '
        f'width="{_W}" height="{_H}" role="img" aria-label="{escape(title)}">',
        *_axes(frame, x_ticks, x_label, y_title),
    ]
    for index, s in enumerate(series):
        parts.extend(_series_marks(frame, s, PALETTE[index % len(PALETTE)], x_label))
    parts.append("</svg>")
    return "".join(parts)


def legend(names: Sequence[str]) -> str:
    """The HTML legend of a line chart's series, in its colours."""
    items = "".join(
        f'<li><span class="swatch" style="background:{PALETTE[i % len(PALETTE)]}"></span>{escape(n)}</li>'
        for i, n in enumerate(names)
    )
    return f'<ul class="legend">{items}</ul>'


def status_grid(chart_id: str, title: str, rows: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> str:
    """One row of day cells per endpoint, coloured by load state: rows = [(endpoint, [(day, status)])]."""
    if not rows or not any(cells for _, cells in rows):
        return _empty(chart_id, title, "No endpoints configured")
    label_w, cell, gap = 170, 14, 2
    days = max(len(cells) for _, cells in rows)
    width = max(_W, label_w + days * (cell + gap) + _RIGHT)
    height = _TOP + len(rows) * (cell + 6) + 24
    count = sum(len(cells) for _, cells in rows)
    parts = [
        f'<svg class="chart" id="{escape(chart_id)}" data-points="{count}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">'
    ]
    for r, (name, cells) in enumerate(rows):
        y = _TOP + r * (cell + 6)
        parts.append(f'<text class="tick" x="{label_w - 8}" y="{y + cell - 3}" text-anchor="end">{escape(name)}</text>')
        for c, (day, status) in enumerate(cells):
            x = label_w + c * (cell + gap)
            parts.append(
                f'<rect class="point cell" x="{x}" y="{y}" width="{cell}" height="{cell}" '
                f'fill="{STATUS_COLORS.get(status, "#999999")}" stroke="#bbbbbb" data-series="{escape(name)}" '
                f'data-x="{escape(day)}" data-y="{escape(status)}"><title>{escape(name)} {escape(day)}: '
                f"{escape(status)}</title></rect>"
            )
    first, last = rows[0][1][0][0], rows[0][1][-1][0]
    base = _TOP + len(rows) * (cell + 6) + 14
    parts.append(f'<text class="tick" x="{label_w}" y="{base}">{escape(first)}</text>')
    parts.append(
        f'<text class="tick" x="{label_w + (len(rows[0][1]) - 1) * (cell + gap) + cell}" y="{base}" '
        f'text-anchor="end">{escape(last)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
