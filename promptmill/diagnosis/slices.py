"""Scores per slice of the data: a field's value, the input's length, the intent segment.

A slice is flagged when its confidence interval lies wholly below the run's mean, so the report
points at groups that are really worse, not at noise in a small bucket.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from .data import Row, RunData
from .rates import rate_ci

MAX_VALUES = 20
MIN_SLICE = 5
LENGTH_BUCKETS = 4


@dataclass
class Slice:
    by: str
    value: str
    n: int
    mean: float
    low: float
    high: float
    below: bool

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _mean_ci(scores: list[float]) -> tuple[float, float, float]:
    if all(s in (0.0, 1.0) for s in scores):
        estimate = rate_ci(int(sum(scores)), len(scores))
        return estimate.mean, estimate.low, estimate.high
    from ..stats import mean_ci

    estimate = mean_ci(scores, resamples=500)
    return estimate.mean, estimate.low, estimate.high


def _make(by: str, groups: dict[str, list[float]], overall: float) -> list[Slice]:
    out = []
    for value, scores in groups.items():
        if len(scores) < MIN_SLICE:
            continue
        mean, low, high = _mean_ci(scores)
        out.append(Slice(by, value, len(scores), mean, low, high, below=high < overall))
    return out


def _field_groups(rows: list[Row]) -> dict[str, dict[str, list[float]]]:
    fields: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        for name, value in row.inputs.items():
            if isinstance(value, str | int | float | bool) and len(str(value)) <= 60:
                fields[name][str(value)].append(row.score)
        if row.target is not None and len(row.target) <= 60:
            fields["target"][row.target].append(row.score)
    return {name: groups for name, groups in fields.items()
            if 2 <= len(groups) <= MAX_VALUES}


def _length_groups(rows: list[Row]) -> dict[str, list[float]]:
    lengths = np.array([len(r.input_text) for r in rows])
    edges = np.unique(np.quantile(lengths, np.linspace(0, 1, LENGTH_BUCKETS + 1)))
    if len(edges) < 3:
        return {}
    groups: dict[str, list[float]] = {}
    buckets = np.clip(np.searchsorted(edges, lengths, side="right") - 1, 0, len(edges) - 2)
    for b in range(len(edges) - 1):
        members = np.flatnonzero(buckets == b)
        if len(members):
            label = f"{int(edges[b])}–{int(edges[b + 1])} chars"
            groups[label] = [rows[i].score for i in members]
    return groups


def slice_scores(data: RunData) -> list[Slice]:
    """Every slice with enough examples, worst first."""
    rows = data.rows
    overall = float(np.mean([r.score for r in rows]))
    slices: list[Slice] = []
    for name, groups in _field_groups(rows).items():
        slices += _make(f"field:{name}", groups, overall)
    slices += _make("input length", _length_groups(rows), overall)
    segments: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row.segment:
            segments[row.segment].append(row.score)
    slices += _make("intent", segments, overall)
    return sorted(slices, key=lambda s: (s.mean, -s.n))
