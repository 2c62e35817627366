"""``diagnose``: everything promptmill can say about why a run's answers fail."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..stats import mean_ci
from ..store.db import Store
from . import language
from .calibration import calibrate
from .clusters import cluster_failures, example_view
from .data import DiagnoseError, RunData, load_run
from .rates import rate_ci
from .slices import slice_scores
from .suggest import Suggestion, suggestions_for
from .taxonomy import CATEGORIES, classify_failures, confusion

EXAMPLES_PER_CATEGORY = 3
HISTOGRAM_BINS = 10


@dataclass
class Diagnosis:
    run: dict[str, Any]
    prompt_ref: str | None
    n: int
    mean: float
    mean_low: float
    mean_high: float
    n_failures: int
    threshold: float
    categories: list[dict[str, Any]]
    confusion: dict[str, Any] | None
    clusters: list[dict[str, Any]]
    slices: list[dict[str, Any]]
    histogram: list[dict[str, Any]]
    robustness: list[dict[str, Any]] | None = None
    calibration: dict[str, Any] | None = None
    suggestions: list[Suggestion] = field(default_factory=list)
    data: RunData | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("data", "suggestions")}
        out["run"] = {k: (str(v) if k in ("created_at", "finished_at") else v)
                      for k, v in self.run.items() if k != "config"}
        out["suggestions"] = [s.to_dict() for s in self.suggestions]
        return out


def _spread(rows: list, count: int) -> list:
    """Examples spread over the category rather than its first few."""
    if len(rows) <= count:
        return rows
    return [rows[i] for i in np.linspace(0, len(rows) - 1, count).round().astype(int)]


def _category_detail(category: str, rows: list, matrix: dict[str, Any] | None
                     ) -> dict[str, Any]:
    labelled = [c for c in (matrix or {}).get("top_confusions", [])
                if c["predicted"] != "(other)"]
    if category == "wrong_label" and labelled:
        top = labelled[0]
        return {"pair": f"'{top['target']}' answered as '{top['predicted']}'",
                "labels": sorted({top["target"], top["predicted"]})}
    if category == "truncated":
        return {"closed_labels": matrix is not None}
    if category == "wrong_language":
        wanted = Counter(language.detect(r.target or "") for r in rows)
        wanted.pop(None, None)
        return {"language": wanted.most_common(1)[0][0]} if wanted else {}
    return {}


def _categories(data: RunData, matrix: dict[str, Any] | None) -> list[dict[str, Any]]:
    counts = classify_failures(data)
    n_fail, n_all = len(data.failures), len(data.rows)
    out = []
    for category, count in counts.most_common():
        rows = [r for r in data.failures if r.category == category]
        share, rate = rate_ci(count, n_fail), rate_ci(count, n_all)
        out.append({"category": category, "description": CATEGORIES[category],
                    "count": count, "share": share.mean, "share_low": share.low,
                    "share_high": share.high, "rate": rate.mean, "rate_low": rate.low,
                    "rate_high": rate.high,
                    "examples": [example_view(r) for r in _spread(rows, EXAMPLES_PER_CATEGORY)],
                    "detail": _category_detail(category, rows, matrix)})
    return out


def _histogram(scores: np.ndarray) -> list[dict[str, Any]]:
    counts, edges = np.histogram(scores, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    return [{"low": float(edges[i]), "high": float(edges[i + 1]), "count": int(c)}
            for i, c in enumerate(counts)]


def diagnose(run_id: int | str, *, store: Store | None = None, threshold: float = 1.0,
             clusters: str | None = "tfidf", calibration: bool | None = None,
             robustness: list[dict[str, Any]] | None = None, seed: int = 0,
             data: RunData | None = None) -> Diagnosis:
    """Taxonomy, confusion, clusters, slices, calibration and suggestions for one run.

    ``calibration``: None measures it when the run has log-probabilities, True requires them.
    ``robustness`` takes results of :mod:`promptmill.diagnosis.robustness` (it calls the model,
    so it is run separately). ``data`` is the run already loaded with this threshold, so a
    caller that looked at it first does not read it twice.
    """
    store = store or Store()
    data = data or load_run(store, run_id, threshold)
    scores = np.array([r.score for r in data.rows])
    mean = mean_ci(scores)  # the one estimate every screen shows (Wilson for pass/fail)
    matrix = confusion(data)
    categories = _categories(data, matrix)
    found = cluster_failures(data.failures, clusters, seed) if clusters else []
    cal = _calibration(data, calibration)
    ref = f"{data.prompt_name}@{data.prompt_version}" if data.prompt_name else None
    result = Diagnosis(
        run=data.run, prompt_ref=ref, n=len(data.rows), mean=float(scores.mean()),
        mean_low=mean.low, mean_high=mean.high, n_failures=len(data.failures),
        threshold=threshold, categories=categories, confusion=matrix,
        clusters=[c.to_dict() for c in found], slices=[s.to_dict() for s in slice_scores(data)],
        histogram=_histogram(scores), robustness=robustness,
        calibration=cal.to_dict() if cal else None, data=data)
    result.suggestions = suggestions_for(result)
    return result


def _calibration(data: RunData, wanted: bool | None):
    if wanted is False:
        return None
    try:
        return calibrate(data)
    except DiagnoseError:
        if wanted:
            raise
        return None

