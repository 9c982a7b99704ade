"""Small server-side SVG charts (no script, no inline style: they pass the CSP as they are)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from html import escape

#: The width of a character of an axis label (font-size 11) at most, digits being the widest.
AXIS_CHAR_WIDTH = 7

PALETTE = ["#4d6bfe", "#22a06b", "#e2b203", "#c9372c", "#8270db", "#1d7afc", "#6a9a23", "#d97008"]


def count(value: float) -> str:
    return f"{value:,.0f}"


def dollars(value: float) -> str:
    return f"${value:,.4f}"


TOKENS = ("token", "tokens")
NO_UNIT = ("", "")


def stacked_bars(
    days: list[date],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    unit: tuple[str, str] = TOKENS,
    number: Callable[[float], str] = count,
) -> str:
    """Daily bars, one stacked segment per series (in the order given), with a legend;
    ``number`` writes a value (the axis's peak; a segment's tooltip, followed by ``unit``, its
    singular for a value written "1", else its plural)."""
    totals = [sum(values[i] for values in series.values()) for i in range(len(days))]
    highest = max(totals, default=0)
    # Nothing to show: no peak is named (an empty cost chart read "$1.0000" at its top).
    peak_label = number(highest) if highest else ""
    # The margin left of the plot holds the peak's label whole: sized for six digits, a day of
    # tens of millions of tokens lost its first ones past the chart's edge.
    left = max(56, 12 + AXIS_CHAR_WIDTH * len(peak_label))
    width, height, bottom, top = 760, 260, 28, 24
    plot_w, plot_h = width - left - 12, height - bottom - top
    peak = highest or 1  # the scale of an empty chart: its bars are all of height 0
    slot = plot_w / max(len(days), 1)
    bar = max(1.0, slot * 0.75)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 22 * ((len(series) + 3) // 4)}" '
        f'role="img" aria-label="{escape(title)}" class="chart">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 12}" y2="{top + plot_h}" stroke="#98a2b3"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="11" fill="currentColor">{escape(peak_label)}</text>'
        if peak_label
        else "",
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="11" fill="currentColor">0</text>',
    ]
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        y: float = top + plot_h
        for n, (name, values) in enumerate(series.items()):
            value = values[i]
            if value <= 0:
                continue
            h = plot_h * value / peak
            y -= h
            colour = PALETTE[n % len(PALETTE)]
            written = number(value)
            units = unit[0] if written == "1" else unit[1]
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{day:%d %b}: {escape(name)} {escape(f'{written} {units}'.strip())}</title></rect>"
            )
        if (len(days) <= 31 and i % 5 == 0) or (len(days) > 31 and i % 15 == 0):
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="10" fill="currentColor">{day:%d %b}</text>'
            )
    for n, name in enumerate(series):
        lx, ly = (
            56 + (n % 4) * 170,
            height + 4 + 22 * (n // 4),
        )  # four to a row, whatever the margin
        parts.append(
            f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{PALETTE[n % len(PALETTE)]}"/>'
        )
        parts.append(
            f'<text x="{lx + 18}" y="{ly + 11}" font-size="12" fill="currentColor">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
