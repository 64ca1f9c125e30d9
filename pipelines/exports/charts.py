"""Small inline SVG charts, so the report is one file that opens offline.

Categories with long Chinese labels (counties, rules) are drawn as horizontal bars, the
labels in a left margin as wide as the longest of them; the quarters of a trend along the
x axis of a line chart, turned 45° when they would not fit side by side. Widths of text
are estimated (a CJK character one font size wide, other characters 0.6), which is what
keeps labels and legends from running together: SVG text does not wrap.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

PALETTE = ["#4472C4", "#A5A5A5", "#ED7D31", "#70AD47", "#FFC000", "#5B9BD5"]
FONT = 12


def count(value: float) -> str:
    return f"{value:,.0f}"


def text_width(text: str, size: float = FONT) -> float:
    """Estimated width in px: CJK characters and full-width punctuation one em, others 0.6."""
    return sum(size if ord(ch) >= 0x2E80 else size * 0.6 for ch in text)


def nice_ceiling(value: float, ticks: int = 4) -> float:
    """The axis top for `ticks` gridlines: `ticks` times the smallest whole-number step of
    (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8) × 10^k that reaches `value` / `ticks`."""
    raw = max(value, 1) / ticks
    power = 1
    while power * 10 < raw:
        power *= 10
    steps = [m * power for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if (m * power) == int(m * power)]
    return ticks * int(next(step for step in steps if step >= raw))


def _spread(ys: list[float], gap: float) -> list[float]:
    """Label baselines at `ys`, the higher of two that are closer than `gap` moved up."""
    order = sorted(range(len(ys)), key=lambda i: ys[i], reverse=True)  # lowest on the page first
    placed = list(ys)
    for lower, upper in zip(order, order[1:]):
        placed[upper] = min(placed[upper], placed[lower] - gap)
    return placed


def _legend(labels: list[str], x: float, y: float, width: float) -> tuple[list[str], float]:
    """Colour keys laid out left to right, wrapping at `width`; returns the parts and the
    height used."""
    parts, cx, cy = [], x, y
    for s, label in enumerate(labels):
        w = 16 + text_width(label) + 18
        if cx > x and cx + w > x + width:
            cx, cy = x, cy + 18
        parts.append(f'<rect x="{cx:.1f}" y="{cy:.1f}" width="12" height="12" fill="{PALETTE[s % len(PALETTE)]}"/>')
        parts.append(f'<text x="{cx + 16:.1f}" y="{cy + 11:.1f}" font-size="{FONT}">{escape(label)}</text>')
        cx += w
    return parts, (cy - y) + 18 if labels else 0


def _svg(title: str, width: float, height: float, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'role="img" aria-label="{escape(title)}" font-family="Noto Sans CJK SC, Microsoft YaHei, PingFang SC, sans-serif">'
        f'<text x="{width / 2:.1f}" y="20" text-anchor="middle" font-size="15" font-weight="bold">{escape(title)}</text>'
        + "".join(body)
        + "</svg>"
    )


def horizontal_bars(
    title: str,
    categories: list[str],
    series: dict[str, list[float]],
    width: int = 900,
    fmt: Callable[[float], str] = count,
) -> str:
    """One row per category (its label on the left), one bar per series, each bar with its
    value at its end."""
    labels = list(series)
    legend, legend_h = _legend(labels, 16, 32, width - 32)
    top = 32 + legend_h + 8
    left = 12 + max([text_width(c) for c in categories] + [24])
    peak = max([v for values in series.values() for v in values] + [0]) or 1
    value_room = max([text_width(fmt(v), 11) for values in series.values() for v in values] + [0]) + 8
    plot_w = max(width - left - 16 - value_room, 80)
    bar_h = 14
    group_h = bar_h * max(len(labels), 1) + 10
    height = top + group_h * max(len(categories), 1) + 8
    parts = list(legend)
    parts.append(f'<line x1="{left:.1f}" y1="{top - 4:.1f}" x2="{left:.1f}" y2="{height - 6:.1f}" stroke="#333"/>')
    for g, category in enumerate(categories):
        y0 = top + g * group_h
        parts.append(
            f'<text x="{left - 6:.1f}" y="{y0 + group_h / 2:.1f}" text-anchor="end" dominant-baseline="middle" font-size="{FONT}">'
            f"{escape(category)}</text>"
        )
        for s, label in enumerate(labels):
            value = series[label][g]
            w = plot_w * value / peak
            y = y0 + s * bar_h + 2
            parts.append(
                f'<rect x="{left:.1f}" y="{y:.1f}" width="{w:.1f}" height="{bar_h - 2}" fill="{PALETTE[s % len(PALETTE)]}">'
                f"<title>{escape(category)} {escape(label)}：{escape(fmt(value))}</title></rect>"
            )
            parts.append(
                f'<text x="{left + w + 4:.1f}" y="{y + (bar_h - 2) / 2:.1f}" dominant-baseline="middle" font-size="11">{escape(fmt(value))}</text>'
            )
    return _svg(title, width, height, parts)


def line_chart(
    title: str,
    x_labels: list[str],
    series: dict[str, list[float]],
    width: int = 900,
    height: int = 300,
    fmt: Callable[[float], str] = count,
) -> str:
    """One line per series over the x labels (the quarters), each point with its value."""
    labels = list(series)
    legend, legend_h = _legend(labels, 16, 32, width - 32)
    top = 32 + legend_h + 14
    peak = nice_ceiling(max([v for values in series.values() for v in values] + [0]))
    left = 16 + max(text_width(fmt(peak), 11), 24)
    right = 24
    n = max(len(x_labels), 1)
    plot_w = width - left - right
    step = plot_w / n
    turned = max([text_width(x, 11) for x in x_labels] + [0]) + 6 > step
    bottom = (max([text_width(x, 11) for x in x_labels] + [0]) * 0.71 + 20) if turned else 28
    plot_h = height - top - bottom
    parts = list(legend)
    for tick in range(5):
        value = peak * tick / 4
        y = top + plot_h - plot_h * tick / 4
        parts.append(f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{left + plot_w:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{escape(fmt(value))}</text>')
    parts.append(f'<line x1="{left:.1f}" y1="{top + plot_h:.1f}" x2="{left + plot_w:.1f}" y2="{top + plot_h:.1f}" stroke="#333"/>')

    def x_of(i: int) -> float:
        return left + step * (i + 0.5)

    for i, label in enumerate(x_labels):
        x, y = x_of(i), top + plot_h + 16
        if turned:
            parts.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="end" font-size="11" transform="rotate(-45 {x:.1f} {y:.1f})">{escape(label)}</text>')
        else:
            parts.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" font-size="11">{escape(label)}</text>')
    points = {label: [(x_of(i), top + plot_h - plot_h * v / peak) for i, v in enumerate(series[label])] for label in labels}
    for s, label in enumerate(labels):
        colour = PALETTE[s % len(PALETTE)]
        if len(points[label]) > 1:
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points[label])}"/>'
            )
        for (x, y), value, quarter in zip(points[label], series[label], x_labels):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"><title>{escape(quarter)} {escape(label)}：{escape(fmt(value))}</title></circle>'
            )
    for i in range(len(x_labels)):  # each point's value above it, the labels at one x kept apart
        ys = _spread([points[label][i][1] - 6 for label in labels], 14)
        for s, (label, y) in enumerate(zip(labels, ys)):
            parts.append(
                f'<text x="{x_of(i) + 6:.1f}" y="{y:.1f}" font-size="10" fill="{PALETTE[s % len(PALETTE)]}">{escape(fmt(series[label][i]))}</text>'
            )
    return _svg(title, width, height, parts)
