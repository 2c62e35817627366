"""Does the model's confidence match its accuracy? ECE and the data for a reliability plot.

Confidence is the probability the model gave its whole answer: exp of the summed token
log-probabilities. That is the quantity a user would threshold on to route unsure answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .data import DiagnoseError, RunData

BINS = 10


@dataclass
class Calibration:
    n: int
    ece: float
    mce: float
    brier: float
    mean_confidence: float
    accuracy: float
    bins: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def confidences(data: RunData) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, correct) for every example that has log-probabilities."""
    conf, correct = [], []
    for row in data.rows:
        if row.logprobs:
            conf.append(math.exp(max(sum(row.logprobs), -700.0)))
            correct.append(1.0 if row.score >= data.threshold else 0.0)
    return np.array(conf), np.array(correct)


def calibrate(data: RunData, bins: int = BINS) -> Calibration:
    conf, correct = confidences(data)
    if conf.size == 0:
        run_id = data.run["id"]
        raise DiagnoseError(
            f"run {run_id} has no log-probabilities, so calibration cannot be measured",
            where=f"run {run_id}",
            fix=f"run 'promptmill diagnose {run_id} --calibration --compute' to re-score it "
                "with logprobs, or evaluate with 'generation: {logprobs: true}' in the config")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    table, ece, mce = [], 0.0, 0.0
    for b in range(bins):
        members = which == b
        count = int(members.sum())
        row = {"low": float(edges[b]), "high": float(edges[b + 1]), "count": count,
               "confidence": None, "accuracy": None}
        if count:
            gap = abs(float(correct[members].mean()) - float(conf[members].mean()))
            row.update(confidence=float(conf[members].mean()),
                       accuracy=float(correct[members].mean()))
            ece += count / conf.size * gap
            mce = max(mce, gap)
        table.append(row)
    return Calibration(n=int(conf.size), ece=ece, mce=mce,
                       brier=float(np.mean((conf - correct) ** 2)),
                       mean_confidence=float(conf.mean()), accuracy=float(correct.mean()),
                       bins=table)
