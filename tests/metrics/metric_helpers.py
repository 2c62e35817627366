"""Helpers shared by the metric tests."""

from __future__ import annotations

from promptmill.metrics import Score, get_metric
from promptmill.task import Example


def ex(target: str | None = None, *answers: str, **inputs) -> Example:
    return Example(id="e1", inputs=inputs or {"input": "q"}, target=target, answers=answers)


def score(name: str, prediction: str, example: Example, **params) -> Score:
    return get_metric(name, params).score(prediction, example)
