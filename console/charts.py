"""Server-side SVG charts for the admin dashboard: no JavaScript library, no network, and the
markup is built with format_html so every label is escaped."""

from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT = 720, 180
LEFT, BOTTOM, TOP = 36, 22, 10


def _n(number: float) -> str:
    """format_html escapes its arguments to strings first, so numbers are formatted here."""
    return f"{number:.1f}"


def stacked_bars(hours: list[datetime], series: list[tuple[str, str, list[int]]], title: str) -> SafeString:
    """One bar per hour, stacked by series (label, colour, values); hover a bar for its figures."""
    totals = [sum(values[i] for _, _, values in series) for i in range(len(hours))]
    peak = max(totals, default=0) or 1
    plot_h = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(1, len(hours))
    bars = []
    for i, hour in enumerate(hours):
        x = LEFT + i * slot + 1
        y = HEIGHT - BOTTOM
        tip = f"{hour:%H:00} UTC: " + ", ".join(f"{values[i]} {label}" for label, _, values in series)
        for label, colour, values in series:
            if not values[i]:
                continue
            h = values[i] / peak * plot_h
            y -= h
            bars.append(
                format_html(
                    '<rect class="bar-{}" x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
                    label,
                    _n(x),
                    _n(y),
                    _n(slot - 2),
                    _n(h),
                    colour,
                    tip,
                )
            )
    ticks = format_html_join(
        "",
        '<text x="{}" y="{}" font-size="10" text-anchor="middle" fill="#666">{}</text>',
        ((_n(LEFT + i * slot + slot / 2), HEIGHT - 6, f"{hour:%H}h") for i, hour in enumerate(hours) if i % 3 == 0),
    )
    legend = format_html_join(
        "",
        '<rect x="{}" y="0" width="10" height="10" fill="{}"/><text x="{}" y="9" font-size="10">{}</text>',
        ((LEFT + 90 * n, colour, LEFT + 90 * n + 14, label) for n, (label, colour, _) in enumerate(series)),
    )
    return format_html(
        '<svg class="console-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" '
        'role="img" aria-label="{title}"><title>{title}</title>'
        '<line x1="{l}" y1="{base}" x2="{w}" y2="{base}" stroke="#999"/>'
        '<text x="{lx}" y="{top}" font-size="10" text-anchor="end" fill="#666">{peak}</text>'
        '<text x="{lx}" y="{base}" font-size="10" text-anchor="end" fill="#666">0</text>'
        '{bars}{ticks}<g transform="translate(0,{legend_y})">{legend}</g></svg>',
        w=WIDTH,
        h=HEIGHT + 16,
        title=title,
        l=LEFT,
        lx=LEFT - 4,
        base=HEIGHT - BOTTOM,
        top=TOP + 8,
        peak=peak,
        bars=SafeString("".join(bars)),
        ticks=ticks,
        legend_y=HEIGHT + 4,
        legend=legend,
    )
