"""Metrics: a metric ``score``s one prediction against one example.

Every score is in [0, 1] and may carry feedback text saying why; optimizers read that text.
Built-ins and plugins register in one registry (entry point group ``promptmill.metrics``).
"""

from __future__ import annotations

import re
import string
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .task import Example


@dataclass(frozen=True)
class Score:
    value: float
    feedback: str | None = None


class Metric(ABC):
    """Scores a model's output for one example."""

    name: str = "metric"

    @abstractmethod
    def score(self, prediction: str, example: Example) -> Score:
        """Return a score in [0, 1], with feedback text where it helps."""

    def describe(self) -> str:
        return self.name


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """Lowercase, drop punctuation and articles, fold whitespace (SQuAD-style)."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return " ".join(text.split())


class ExactMatch(Metric):
    name = "exact"

    def score(self, prediction: str, example: Example) -> Score:
        pred = normalize(prediction)
        if any(pred == normalize(a) for a in example.accepted):
            return Score(1.0)
        return Score(0.0, f"expected {example.accepted[0]!r}, got {prediction.strip()!r}"
                     if example.accepted else "no reference answer")


MetricFactory = Callable[..., Metric]
_REGISTRY: dict[str, MetricFactory] = {"exact": ExactMatch}


def register_metric(name: str, factory: MetricFactory) -> None:
    _REGISTRY[name] = factory


def available_metrics() -> list[str]:
    _load_plugins()
    return sorted(_REGISTRY)


_PLUGINS_LOADED = False


def _load_plugins() -> None:
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    from importlib.metadata import entry_points

    for ep in entry_points(group="promptmill.metrics"):
        _REGISTRY.setdefault(ep.name, ep.load())
    _PLUGINS_LOADED = True


def get_metric(name: str, params: dict[str, Any] | None = None) -> Metric:
    """Build a metric by name; an unknown name lists the known ones."""
    params = params or {}
    _load_plugins()
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ConfigError(f"unknown metric '{name}'", where="metric",
                          fix=f"use one of: {', '.join(available_metrics())}, "
                              "or python:FILE.py:FUNCTION")
    try:
        return factory(**params)
    except TypeError as exc:
        raise ConfigError(f"bad parameters for metric '{name}' ({exc})", where="metric.params",
                          fix="check the parameter names in the metric's documentation") from None
