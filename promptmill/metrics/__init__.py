"""Metrics: a metric ``score``s one prediction against one example.

Every score is in [0, 1] and may carry feedback text saying why; optimizers read that text.
Built-ins and plugins register in one registry (entry point group ``promptmill.metrics``).
``python:FILE.py:FUNCTION`` loads a user's own scoring function from a file.

Modules: ``base`` (Score, Metric, shared helpers), ``registry`` (get_metric and friends),
``custom`` (python: metrics) and the built-ins by kind: ``text``, ``overlap``, ``structured``,
``embedding``, ``judge``, ``human`` (ratings from the workbench). The built-in metric
modules load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from .base import Metric, Score, normalize
from .custom import PYTHON_PREFIX, PythonMetric
from .registry import MetricFactory, available_metrics, get_metric, register_metric

# The built-in metric classes and their helpers, by the module that defines them.
_LAZY = {
    "ExactMatch": ".text", "Contains": ".text", "RegexMatch": ".text", "NumericMatch": ".text",
    "Choice": ".text", "TokenF1": ".text", "WordSet": ".text", "last_number": ".text",
    "Bleu": ".overlap", "ChrF": ".overlap", "Rouge": ".overlap",
    "JsonValid": ".structured", "JsonSchema": ".structured",
    "EmbeddingSimilarity": ".embedding", "packaged_embedding_model_path": ".embedding",
    "LLMJudge": ".judge", "parse_judge_score": ".judge",
    "HumanRating": ".human",
    "Equals": ".assertions", "Substring": ".assertions", "StartsWith": ".assertions",
    "ContainsJson": ".assertions", "Levenshtein": ".assertions", "Latency": ".assertions",
    "Cost": ".assertions",
}

__all__ = [
    "PYTHON_PREFIX",
    "Bleu",
    "ChrF",
    "Choice",
    "Contains",
    "ContainsJson",
    "Cost",
    "EmbeddingSimilarity",
    "Equals",
    "ExactMatch",
    "HumanRating",
    "JsonSchema",
    "JsonValid",
    "LLMJudge",
    "Latency",
    "Levenshtein",
    "Metric",
    "MetricFactory",
    "NumericMatch",
    "PythonMetric",
    "RegexMatch",
    "Rouge",
    "Score",
    "StartsWith",
    "Substring",
    "TokenF1",
    "WordSet",
    "available_metrics",
    "get_metric",
    "last_number",
    "normalize",
    "packaged_embedding_model_path",
    "parse_judge_score",
    "register_metric",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY)


if TYPE_CHECKING:  # for type checkers and IDEs
    from .assertions import (
        ContainsJson,
        Cost,
        Equals,
        Latency,
        Levenshtein,
        StartsWith,
        Substring,
    )
    from .embedding import EmbeddingSimilarity, packaged_embedding_model_path
    from .judge import LLMJudge, parse_judge_score
    from .overlap import Bleu, ChrF, Rouge
    from .structured import JsonSchema, JsonValid
    from .text import (
        Choice,
        Contains,
        ExactMatch,
        NumericMatch,
        RegexMatch,
        TokenF1,
        WordSet,
        last_number,
    )
