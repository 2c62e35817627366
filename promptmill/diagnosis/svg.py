"""Small server-side SVG charts: no JavaScript and no network, so a report opens from a file.

Every label goes through ``html.escape``; model output never reaches the markup unescaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

FONT = 'font-family="system-ui, sans-serif" font-size="12"'
BLUE, GREY, RED = "#3b6ea8", "#888", "#c0392b"


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(label)}" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            + "".join(body) + "</svg>")


def bars(items: Sequence[tuple[str, float, float | None, float | None]], label: str,
         width: int = 560, fmt: str = "{:.0%}", vmax: float | None = None) -> str:
    """Horizontal bars of values in [0, vmax], with optional CI whiskers."""
    row, left, right = 24, 190, 70
    height = row * len(items) + 10
    top = vmax or max([1e-9, *(v for _, v, _, _ in items), *(h or 0 for _, _, _, h in items)])
    scale = (width - left - right) / top
    body = []
    for i, (name, value, low, high) in enumerate(items):
        y = 5 + i * row
        body.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" {FONT}>'
                    f"{escape(name)}</text>")
        body.append(f'<rect x="{left}" y="{y + 3}" width="{max(value, 0) * scale:.1f}" '
                    f'height="{row - 8}" fill="{BLUE}"/>')
        if low is not None and high is not None:
            body.append(f'<line x1="{left + low * scale:.1f}" x2="{left + high * scale:.1f}" '
                        f'y1="{y + row / 2:.1f}" y2="{y + row / 2:.1f}" stroke="{RED}" '
                        'stroke-width="2"/>')
        end = left + max(value, high or 0) * scale
        body.append(f'<text x="{end + 6:.1f}" y="{y + 15}" {FONT}>{escape(fmt.format(value))}'
                    "</text>")
    return _svg(width, height, body, label)


def histogram(bins: Sequence[dict], label: str, width: int = 560, height: int = 180) -> str:
    pad, bottom = 30, 24
    peak = max([1, *(b["count"] for b in bins)])
    bar_w = (width - 2 * pad) / max(len(bins), 1)
    body = [f'<line x1="{pad}" x2="{width - pad}" y1="{height - bottom}" '
            f'y2="{height - bottom}" stroke="{GREY}"/>']
    for i, b in enumerate(bins):
        h = (height - bottom - 20) * b["count"] / peak
        x = pad + i * bar_w
        body.append(f'<rect x="{x + 1:.1f}" y="{height - bottom - h:.1f}" '
                    f'width="{bar_w - 2:.1f}" height="{h:.1f}" fill="{BLUE}"/>')
        body.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - bottom - h - 4:.1f}" '
                    f'text-anchor="middle" {FONT}>{b["count"]}</text>')
        body.append(f'<text x="{x + bar_w / 2:.1f}" y="{height - 6}" text-anchor="middle" '
                    f'{FONT}>{b["low"]:.1f}</text>')
    return _svg(width, height, body, label)


def heatmap(rows: Sequence[str], columns: Sequence[str], matrix: Sequence[Sequence[int]],
            label: str) -> str:
    cell, left, top = 46, 120, 90
    width, height = left + cell * len(columns) + 10, top + cell * len(rows) + 10
    peak = max([1, *(v for r in matrix for v in r)])
    body = [f'<text x="4" y="{top - 8}" {FONT}>target ↓ / '
            "answer →</text>"]
    for j, col in enumerate(columns):
        x = left + j * cell + cell / 2
        body.append(f'<text transform="translate({x:.1f},{top - 8}) rotate(-40)" {FONT}>'
                    f"{escape(col)}</text>")
    for i, name in enumerate(rows):
        y = top + i * cell
        body.append(f'<text x="{left - 6}" y="{y + cell / 2 + 4:.1f}" text-anchor="end" '
                    f"{FONT}>{escape(name)}</text>")
        for j, value in enumerate(matrix[i]):
            shade = 0.08 + 0.85 * value / peak
            colour = BLUE if (j < len(rows) and rows[i] == columns[j]) else RED
            body.append(f'<rect x="{left + j * cell}" y="{y}" width="{cell - 2}" '
                        f'height="{cell - 2}" fill="{colour}" fill-opacity="{shade:.2f}"/>')
            body.append(f'<text x="{left + j * cell + cell / 2 - 1:.1f}" '
                        f'y="{y + cell / 2 + 4:.1f}" text-anchor="middle" {FONT}>{value}</text>')
    return _svg(width, height, body, label)


def reliability(bins: Sequence[dict], label: str, size: int = 260) -> str:
    pad = 30
    span = size - 2 * pad
    body = [f'<rect x="{pad}" y="{pad}" width="{span}" height="{span}" fill="none" '
            f'stroke="{GREY}"/>',
            f'<line x1="{pad}" y1="{size - pad}" x2="{size - pad}" y2="{pad}" stroke="{GREY}" '
            'stroke-dasharray="4 3"/>',
            f'<text x="{size / 2}" y="{size - 6}" text-anchor="middle" {FONT}>confidence</text>',
            f'<text transform="translate(12,{size / 2}) rotate(-90)" text-anchor="middle" '
            f"{FONT}>accuracy</text>"]
    width = span / max(len(bins), 1)
    for i, b in enumerate(bins):
        if b["accuracy"] is None:
            continue
        h = span * b["accuracy"]
        body.append(f'<rect x="{pad + i * width + 1:.1f}" y="{size - pad - h:.1f}" '
                    f'width="{width - 2:.1f}" height="{h:.1f}" fill="{BLUE}" '
                    'fill-opacity="0.7"/>')
    return _svg(size, size, body, label)
