"""Small inline SVG charts, so the report is one file that opens offline."""

from __future__ import annotations

from html import escape

PALETTE = ["#4472C4", "#A5A5A5", "#ED7D31", "#70AD47", "#FFC000", "#5B9BD5"]


def grouped_bars(title: str, categories: list[str], series: dict[str, list[float]], width: int = 760, height: int = 300) -> str:
    """Vertical grouped bars: one group per category, one bar per series."""
    left, right, top, bottom = 48, 16, 36, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([v for values in series.values() for v in values] + [1])
    groups = max(len(categories), 1)
    group_w = plot_w / groups
    bar_w = max(2.0, group_w * 0.8 / max(len(series), 1))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#333"/>',
    ]
    for tick in range(5):
        value = peak * tick / 4
        y = top + plot_h - plot_h * tick / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{value:,.0f}</text>')
    for g, category in enumerate(categories):
        x0 = left + g * group_w + group_w * 0.1
        for s, (label, values) in enumerate(series.items()):
            value = values[g]
            h = plot_h * value / peak
            x = x0 + s * bar_w
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 1:.1f}" height="{h:.1f}" fill="{PALETTE[s % len(PALETTE)]}">'
                f"<title>{escape(category)} {escape(label)}: {value:,.0f}</title></rect>"
            )
            if groups <= 16:
                parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h - h - 3:.1f}" text-anchor="middle" font-size="10">{value:,.0f}</text>')
        parts.append(
            f'<text x="{x0 + group_w * 0.4:.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="11">{escape(category)}</text>'
        )
    for s, label in enumerate(series):
        x = left + s * 130
        parts.append(f'<rect x="{x}" y="{height - 22}" width="12" height="12" fill="{PALETTE[s % len(PALETTE)]}"/>')
        parts.append(f'<text x="{x + 16}" y="{height - 12}" font-size="12">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
