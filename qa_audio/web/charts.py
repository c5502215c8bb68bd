"""Charts drawn on the server as inline SVG (no script library, no build step).

Every mark a reader can click carries ``data-filter``: the call-list filters (JSON) that show the calls
behind it; the dashboard page posts them to the call list's filter form."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = ("#1a73e8", "#e37400", "#188038", "#d93025", "#9334e6", "#007b83", "#b06000", "#5f6368")


@dataclass(frozen=True)
class Point:
    value: float | None
    label: str                 # the tooltip
    filters: dict[str, str]    # the calls behind it


@dataclass(frozen=True)
class Line:
    name: str
    points: tuple[Point, ...]


def _attr(value: object) -> str:
    return str(escape(str(value)))


def _drill(filters: dict[str, str]) -> str:
    return f' class="drill" data-filter="{_attr(json.dumps(filters, ensure_ascii=False))}" tabindex="0"'


def line_chart(lines: Sequence[Line], x_labels: Sequence[str], *, y_max: float = 100.0, y_min: float = 0.0,
               guide: float | None = None, guide_label: str = "", title: str = "", chart_id: str = "") -> Markup:
    """Lines over periods (a point per period with a value); ``guide`` draws a dashed level (the pass mark)."""
    width, height, left, right, top, bottom = 760, 260, 44, 150, 16, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(x_labels))

    def x(i: int) -> float:
        return left + (plot_w * (i + 0.5) / n)

    def y(v: float) -> float:
        return top + plot_h * (1 - (v - y_min) / max(1e-9, y_max - y_min))

    parts = [f'<svg class="chart" id="{_attr(chart_id)}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{_attr(title)}">']
    for tick in range(5):
        v = y_min + (y_max - y_min) * tick / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    step = max(1, n // 8)
    for i, label in enumerate(x_labels):
        if i % step == 0:
            parts.append(f'<text x="{x(i):.1f}" y="{height - 12}" text-anchor="middle">{_attr(label)}</text>')
    if guide is not None:
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(guide):.1f}" y2="{y(guide):.1f}" '
                     f'stroke="#b3261e" stroke-dasharray="4 3"/><text x="{left + 4}" y="{y(guide) - 5:.1f}" '
                     f'fill="#b3261e">{_attr(guide_label)}</text>')
    for k, line in enumerate(lines):
        color = PALETTE[k % len(PALETTE)]
        run: list[str] = []
        for i, p in enumerate(line.points):
            if p.value is None:
                if len(run) > 1:
                    parts.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{color}" stroke-width="2"/>')
                run = []
                continue
            run.append(f"{x(i):.1f},{y(p.value):.1f}")
        if len(run) > 1:
            parts.append(f'<polyline points="{" ".join(run)}" fill="none" stroke="{color}" stroke-width="2"/>')
        for i, p in enumerate(line.points):
            if p.value is not None:
                parts.append(f'<circle cx="{x(i):.1f}" cy="{y(p.value):.1f}" r="5" fill="{color}"'
                             f'{_drill(p.filters)}><title>{_attr(p.label)}</title></circle>')
        ly = top + 14 * k + 6
        parts.append(f'<rect x="{left + plot_w + 10}" y="{ly - 8}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{left + plot_w + 24}" y="{ly + 1}">{_attr(line.name[:18])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(bars: Sequence[Point], x_labels: Sequence[str], *, title: str = "", chart_id: str = "",
              color: str = PALETTE[0]) -> Markup:
    """Vertical bars, one per period."""
    width, height, left, top, bottom = 760, 180, 44, 12, 34
    plot_w, plot_h = width - left - 16, height - top - bottom
    n = max(1, len(bars))
    top_value = max([b.value or 0 for b in bars] + [1])
    parts = [f'<svg class="chart" id="{_attr(chart_id)}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{_attr(title)}">',
             f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{top_value:g}</text>',
             f'<text x="{left - 6}" y="{top + plot_h + 4}" text-anchor="end">0</text>']
    slot = plot_w / n
    step = max(1, n // 8)
    for i, (bar, label) in enumerate(zip(bars, x_labels)):
        h = plot_h * (bar.value or 0) / top_value
        bx = left + slot * i + slot * 0.15
        if bar.value:
            parts.append(f'<rect x="{bx:.1f}" y="{top + plot_h - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
                         f'fill="{color}" rx="2"{_drill(bar.filters)}><title>{_attr(bar.label)}</title></rect>')
        if i % step == 0:
            parts.append(f'<text x="{bx + slot * 0.35:.1f}" y="{height - 12}" text-anchor="middle">'
                         f'{_attr(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def hbar_chart(bars: Sequence[Point], labels: Sequence[str], *, maximum: float | None = None, title: str = "",
               chart_id: str = "", color: str = PALETTE[3], value_format: str = "{:g}") -> Markup:
    """Horizontal bars with their labels (the most failed standards, rule health)."""
    row_h, left, width = 24, 250, 560
    height = row_h * max(1, len(bars)) + 8
    top_value = maximum or max([b.value or 0 for b in bars] + [1])
    parts = [f'<svg class="chart" id="{_attr(chart_id)}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{_attr(title)}">']
    for i, (bar, label) in enumerate(zip(bars, labels)):
        y0 = 4 + row_h * i
        w = (width - left - 70) * (bar.value or 0) / top_value
        parts.append(f'<text x="{left - 8}" y="{y0 + 15}" text-anchor="end">{_attr(label[:22])}</text>'
                     f'<rect x="{left}" y="{y0 + 3}" width="{max(w, 1.5):.1f}" height="{row_h - 8}" fill="{color}" '
                     f'rx="2"{_drill(bar.filters)}><title>{_attr(bar.label)}</title></rect>'
                     f'<text x="{left + w + 6:.1f}" y="{y0 + 15}">{_attr(value_format.format(bar.value or 0))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
