"""Find a metric by name: built-ins, ``register_metric``, plugins, ``python:FILE.py:FUNCTION``.

Built-ins and plugins follow the one rule of ``promptmill.plugins`` (docs/plugins.md), through
the entry point group ``promptmill.metrics``. A name registered with :func:`register_metric`
wins over both.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..plugins import Registry
from .base import Metric
from .custom import PYTHON_PREFIX, python_metric

MetricFactory = Callable[..., Metric]

# Every built-in metric, as "module:attribute". A module is imported when its metric is first
# built, so importing promptmill.metrics pulls in neither sacrebleu, rouge_score, jsonschema nor
# sentence_transformers.
_BUILTINS: dict[str, str] = {
    "exact": "promptmill.metrics.text:ExactMatch",
    "contains": "promptmill.metrics.text:Contains",
    "regex": "promptmill.metrics.text:RegexMatch",
    "numeric": "promptmill.metrics.text:NumericMatch",
    "choice": "promptmill.metrics.text:Choice",
    "f1": "promptmill.metrics.text:TokenF1",
    "word_set": "promptmill.metrics.text:WordSet",
    "bleu": "promptmill.metrics.overlap:Bleu",
    "chrf": "promptmill.metrics.overlap:ChrF",
    "rouge": "promptmill.metrics.overlap:Rouge",
    "json_valid": "promptmill.metrics.structured:JsonValid",
    "json_schema": "promptmill.metrics.structured:JsonSchema",
    "embedding": "promptmill.metrics.embedding:EmbeddingSimilarity",
    "llm_judge": "promptmill.metrics.judge:LLMJudge",
    "human": "promptmill.metrics.human:HumanRating",
    # promptfoo's assertion semantics, for test suites (promptmill.suites.checks)
    "equals": "promptmill.metrics.assertions:Equals",
    "substring": "promptmill.metrics.assertions:Substring",
    "starts_with": "promptmill.metrics.assertions:StartsWith",
    "contains_json": "promptmill.metrics.assertions:ContainsJson",
    "levenshtein": "promptmill.metrics.assertions:Levenshtein",
    "latency": "promptmill.metrics.assertions:Latency",
    "cost": "promptmill.metrics.assertions:Cost",
}

REGISTRY = Registry("promptmill.metrics", "metric", _BUILTINS)  # built-ins and plugins
# Factories given to register_metric, by name: they win over built-ins and plugins alike.
_REGISTRY: dict[str, MetricFactory] = {}


def register_metric(name: str, factory: MetricFactory) -> None:
    _REGISTRY[name] = factory


def available_metrics() -> list[str]:
    return sorted({*REGISTRY.names(), *_REGISTRY})


def _factory(name: str) -> MetricFactory | None:
    if name in _REGISTRY:
        return _REGISTRY[name]
    return REGISTRY.load(name)


def _accepts(factory: MetricFactory, keyword: str) -> bool:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return keyword in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def _parameter_names(factory: MetricFactory) -> str:
    try:
        names = [n for n in inspect.signature(factory).parameters
                 if n not in ("self", "base_dir", "judge_model")]
    except (TypeError, ValueError):
        return "see the metric's documentation"
    return ", ".join(names) or "none"


def get_metric(name: str, params: dict[str, Any] | None = None, *,
               base_dir: Path | None = None) -> Metric:
    """Build a metric by name; an unknown name lists the known ones.

    ``base_dir`` is where relative paths in the name or params resolve (the config's folder);
    without it they resolve against the current directory.
    """
    params = params or {}
    if not isinstance(params, dict):
        raise ConfigError(f"metric params must be a mapping, not {params!r}",
                          where="metric.params", fix="write params as key: value pairs")
    if name.startswith(PYTHON_PREFIX):
        return python_metric(name, params, base_dir)
    factory = _factory(name)
    if factory is None:
        raise ConfigError(f"unknown metric '{name}'", where="metric",
                          fix=f"use one of: {', '.join(available_metrics())}, "
                              "or python:FILE.py:FUNCTION")
    kwargs = dict(params)
    if base_dir is not None and "base_dir" not in kwargs and _accepts(factory, "base_dir"):
        kwargs["base_dir"] = Path(base_dir)
    try:
        return factory(**kwargs)
    except (TypeError, ValueError) as exc:  # ValueError: e.g. a parameter out of its range
        raise ConfigError(f"bad parameters for metric '{name}' ({exc})", where="metric.params",
                          fix=f"the parameters of '{name}' are: "
                              f"{_parameter_names(factory)}") from None
