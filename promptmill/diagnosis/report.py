"""Reports of a diagnosis: a self-contained HTML page (and JSON through ``to_dict``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from markupsafe import Markup

from . import svg
from .core import Diagnosis


@lru_cache(maxsize=1)
def _template():
    from jinja2 import FileSystemLoader, select_autoescape

    from ..templating import sandboxed_environment

    env = sandboxed_environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                                autoescape=select_autoescape(["html", "j2"]))
    return env.get_template("report.html.j2")


def _charts(d: Diagnosis) -> dict[str, Markup]:
    charts = {
        "categories": svg.bars([(c["category"], c["share"], c["share_low"], c["share_high"])
                                for c in d.categories], "failure categories", vmax=1.0),
        "histogram": svg.histogram(d.histogram, "score distribution"),
    }
    if d.confusion:
        charts["confusion"] = svg.heatmap(d.confusion["labels"], d.confusion["columns"],
                                          d.confusion["matrix"], "confusion matrix")
    if d.robustness:
        charts["robustness"] = svg.bars(
            [(r["kind"], r["flip_rate"], r["flip_low"], r["flip_high"])
             for r in d.robustness if r["applicable"]], "flip rate by perturbation", vmax=1.0)
    if d.calibration:
        charts["reliability"] = svg.reliability(d.calibration["bins"], "reliability diagram")
    # the SVG builders escape every label themselves
    return {k: Markup(v) for k, v in charts.items()}


def render_html(d: Diagnosis) -> str:
    """A complete HTML document with inline SVG charts; it opens from a file with no server."""
    return _template().render(d=d, charts=_charts(d))
