"""Server-rendered SVG charts (no JavaScript): the department status page's mail per day.

Only SVG presentation attributes are used, never ``style``, so the page's CSP (``style-src
'self'``) holds; every bar has a ``<title>`` (its day and count) for a tooltip and screen readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

#: series drawn, bottom to top: (key, label, colour)
SERIES = (("imported", "imported", "#1b6e3c"), ("skipped", "skipped", "#8a94a6"), ("failed", "failed", "#a4161a"))


def activity_chart(days: Sequence[dict[str, Any]], *, width: int = 720, height: int = 180) -> Markup:
    """A stacked bar per day of ``days`` (``{"day", "imported", "skipped", "failed"}``, oldest
    first: ``departments.import_activity``), with a legend and the first and last day."""
    top, bottom, left = 12, 34, 34
    plot_h = height - top - bottom
    peak = max([sum(int(d[k]) for k, _, _ in SERIES) for d in days] + [1])
    step = (width - left) / max(len(days), 1)
    bar = max(step * 0.7, 1.0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" aria-label="Mail imported, skipped and failed per day">',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{width}" y2="{top + plot_h}" stroke="#d8dde6"/>',
             f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" font-size="11" fill="#5b6475">{peak}</text>',
             f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" font-size="11" fill="#5b6475">0</text>']
    for i, d in enumerate(days):
        x = left + i * step + (step - bar) / 2
        y = top + plot_h
        for key, label, colour in SERIES:
            n = int(d[key])
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            parts.append(f'<rect class="bar-{key}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'fill="{colour}"><title>{escape(d["day"])}: {n} {label}</title></rect>')
    if days:
        parts.append(f'<text x="{left}" y="{height - 18}" font-size="11" fill="#5b6475">{escape(days[0]["day"])}</text>')
        parts.append(f'<text x="{width}" y="{height - 18}" text-anchor="end" font-size="11" fill="#5b6475">'
                     f'{escape(days[-1]["day"])}</text>')
    x = left
    for key, label, colour in SERIES:
        total = sum(int(d[key]) for d in days)
        parts.append(f'<rect x="{x}" y="{height - 10}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{x + 14}" y="{height - 1}" font-size="11" fill="#1d2330">{label} ({total})</text>')
        x += 130
    parts.append("</svg>")
    return Markup("".join(parts))
