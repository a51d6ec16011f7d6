"""Charts as inline SVG, drawn on the server: a report must read offline, with no script and no CDN.

One line chart per figure of the time series. A resumed job's runs are drawn as separate lines
on one time axis, so the gap between runs shows as a gap. Long series are thinned to a few
hundred points per chart, keeping each bucket's highest value (a spike must stay visible).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from html import escape
from typing import Any

__all__ = ["CHARTS", "bar_rows", "line_chart"]

# (key in a point, title, colour): the charts of the report and the dashboard, in order.
CHARTS: tuple[tuple[str, str, str], ...] = (
    ("pages_per_s", "pages / s", "#2563eb"),
    ("items_per_s", "items / s", "#059669"),
    ("queued", "queue", "#7c3aed"),
    ("in_flight", "in flight", "#d97706"),
    ("errors", "errors (total)", "#dc2626"),
    ("retries", "retries (total)", "#db2777"),
)

_MAX_POINTS = 400
_W, _H = 520, 150
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 48, 10, 10, 22


def _thin(points: Sequence[dict[str, Any]], key: str) -> list[tuple[float, float, int]]:
    values = [
        (float(p["t"]), float(p.get(key) or 0), int(p.get("run") or 0))
        for p in points
        if isinstance(p.get("t"), int | float)
    ]
    if len(values) <= _MAX_POINTS:
        return values
    step = len(values) / _MAX_POINTS
    thinned = []
    for i in range(_MAX_POINTS):
        bucket = values[int(i * step) : int((i + 1) * step)] or values[-1:]
        thinned.append(max(bucket, key=lambda v: v[1]))
    return thinned


def _number(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.1f}"


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def line_chart(points: Sequence[dict[str, Any]], key: str, title: str, colour: str) -> str:
    """One figure of the series as a ``<figure>`` holding an SVG line chart."""
    values = _thin(points, key)
    latest = _number(values[-1][1]) if values else "-"
    head = (
        f'<figure class="chart" data-key="{escape(key)}"><figcaption>{escape(title)} '
        f'<b class="latest">{latest}</b></figcaption>'
    )
    svg = [f'<svg viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(title)} over time">']
    x0, x1 = _PAD_L, _W - _PAD_R
    y0, y1 = _H - _PAD_B, _PAD_T
    svg.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#999" stroke-width="1"/>')
    if not values:
        middle = (x0 + x1) // 2
        svg.append(f'<text x="{middle}" y="{_H // 2}" text-anchor="middle" fill="#888">no data yet</text>')
        return head + "".join(svg) + "</svg></figure>"
    t_min, t_max = values[0][0], values[-1][0]
    top = max(v[1] for v in values) or 1.0
    span = (t_max - t_min) or 1.0

    def x(t: float) -> float:
        return x0 + (t - t_min) / span * (x1 - x0)

    def y(v: float) -> float:
        return y0 - v / top * (y0 - y1)

    svg.append(f'<line x1="{x0}" y1="{y1}" x2="{x1}" y2="{y1}" stroke="#ddd" stroke-dasharray="3 3"/>')
    svg.append(f'<text x="{x0 - 4}" y="{y1 + 4}" text-anchor="end" class="axis">{_number(top)}</text>')
    svg.append(f'<text x="{x0 - 4}" y="{y0}" text-anchor="end" class="axis">0</text>')
    svg.append(f'<text x="{x0}" y="{_H - 6}" class="axis">{_clock(t_min)}</text>')
    svg.append(f'<text x="{x1}" y="{_H - 6}" text-anchor="end" class="axis">{_clock(t_max)}</text>')
    runs: dict[int, list[str]] = {}
    for t, v, run in values:
        runs.setdefault(run, []).append(f"{x(t):.1f},{y(v):.1f}")
    for coords in runs.values():
        if len(coords) == 1:
            cx, cy = coords[0].split(",")
            svg.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"/>')
        else:
            svg.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{" ".join(coords)}"/>'
            )
    return head + "".join(svg) + "</svg></figure>"


def bar_rows(rows: Sequence[tuple[str, float, str]], colour: str = "#2563eb") -> str:
    """A table of labelled values with a bar for each: (label, value, text shown)."""
    if not rows:
        return '<p class="none">none</p>'
    top = max(value for _, value, _ in rows) or 1.0
    out = ['<table class="bars">']
    for label, value, shown in rows:
        width = max(1, round(value / top * 200))
        out.append(
            f"<tr><th>{escape(label)}</th><td>{escape(shown)}</td><td>"
            f'<svg width="{width}" height="10"><rect width="{width}" height="10" fill="{colour}"/></svg>'
            "</td></tr>"
        )
    out.append("</table>")
    return "".join(out)
