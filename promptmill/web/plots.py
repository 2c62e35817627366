"""Charts as inline SVG built on the server: no JavaScript library, works offline, testable.

Every text that reaches the SVG goes through ``escape``; labels can be model output.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

from markupsafe import Markup

if TYPE_CHECKING:
    from ..store.workbench import CostPoint

W, H, PAD = 520, 260, 40


def _frame(body: list[str], title: str, x_label: str, y_label: str) -> Markup:
    parts = [f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" '
             f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>",
             f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - 10}" y2="{H - PAD}" class="axis"/>',
             f'<line x1="{PAD}" y1="10" x2="{PAD}" y2="{H - PAD}" class="axis"/>',
             f'<text x="{W / 2}" y="{H - 6}" text-anchor="middle">{escape(x_label)}</text>',
             f'<text x="12" y="{H / 2}" transform="rotate(-90 12 {H / 2})" '
             f'text-anchor="middle">{escape(y_label)}</text>', *body, "</svg>"]
    return Markup("\n".join(parts))


def histogram(counts: list[int], title: str = "score distribution") -> Markup:
    top = max(counts) or 1
    width = (W - PAD - 10) / len(counts)
    body = []
    for i, n in enumerate(counts):
        h = (H - PAD - 20) * n / top
        x, y = PAD + i * width, H - PAD - h
        lo, hi = i / len(counts), (i + 1) / len(counts)
        body.append(f'<rect class="bar" x="{x + 1:.1f}" y="{y:.1f}" width="{width - 2:.1f}" '
                    f'height="{h:.1f}"><title>{lo:.1f}-{hi:.1f}: {n}</title></rect>')
        body.append(f'<text x="{x + width / 2:.1f}" y="{H - PAD + 14}" text-anchor="middle" '
                    f'class="tick">{lo:.1f}</text>')
        if n:
            body.append(f'<text x="{x + width / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" '
                        f'class="tick">{n}</text>')
    return _frame(body, title, "score", "examples")


def _scale(values: list[float], lo_px: float, hi_px: float):
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    return lambda v: lo_px + (v - lo) / span * (hi_px - lo_px)


def _score_ticks(sy) -> list[str]:
    """Labels 0, 0.5 and 1 on the score axis, with faint guide lines."""
    return [f'<line x1="{PAD}" y1="{sy(v):.1f}" x2="{W - 10}" y2="{sy(v):.1f}" class="guide"/>'
            f'<text x="{PAD - 4}" y="{sy(v) + 4:.1f}" text-anchor="end" class="tick">{v:g}</text>'
            for v in (0.0, 0.5, 1.0)]


def _x_ticks(sx, values: list[float]) -> list[str]:
    lo, hi = min(values), max(values)
    return [f'<text x="{sx(v):.1f}" y="{H - PAD + 14}" text-anchor="middle" class="tick">'
            f"{v:g}</text>" for v in sorted({lo, hi})]


def line_chart(points: list[tuple[float, float]], title: str, x_label: str,
               y_label: str) -> Markup:
    """A step line through (x, y) points; empty charts still draw their axes."""
    if not points:
        return _frame([], title, x_label, y_label)
    sx = _scale([p[0] for p in points] + [0], PAD, W - 10)
    sy = _scale([p[1] for p in points] + [0.0, 1.0], H - PAD, 10)
    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    dots = [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" class="dot">'
            f"<title>{x:g}: {y:.3f}</title></circle>" for x, y in points]
    ticks = _score_ticks(sy) + _x_ticks(sx, [p[0] for p in points] + [0])
    return _frame([*ticks, f'<polyline class="line" points="{path}"/>', *dots], title, x_label,
                  y_label)


def scatter_pareto(points: Sequence[CostPoint], front: Sequence[CostPoint],
                   title: str = "cost against accuracy") -> Markup:
    """Runs as dots (tokens per example, mean score); the Pareto front joined by a line."""
    if not points:
        return _frame([], title, "tokens per example", "mean score")
    sx = _scale([p["cost"] for p in points], PAD + 10, W - 20)
    sy = _scale([p["mean"] or 0.0 for p in points] + [0.0, 1.0], H - PAD, 10)
    on_front = {p["id"] for p in front}
    costs = [round(p["cost"], 1) for p in points]
    body = [*_score_ticks(sy), *_x_ticks(sx, costs), '<polyline class="front" points="'
            + " ".join(f'{sx(p["cost"]):.1f},{sy(p["mean"] or 0.0):.1f}' for p in front) + '"/>']
    for p in points:
        cls = "dot front-dot" if p["id"] in on_front else "dot"
        body.append(f'<a href="/runs/{int(p["id"])}"><circle cx="{sx(p["cost"]):.1f}" '
                    f'cy="{sy(p["mean"] or 0.0):.1f}" r="4" class="{cls}"><title>run '
                    f'{int(p["id"])}: {(p["mean"] or 0.0):.3f} at {p["cost"]:.1f} tokens'
                    f"</title></circle></a>")
    return _frame(body, title, "tokens per example", "mean score")
