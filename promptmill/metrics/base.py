"""What every metric shares: :class:`Score`, the :class:`Metric` interface, text helpers.

Every score is in [0, 1] and may carry feedback text saying why; optimizers read that text.
Every subclass's ``score`` is checked on the way out: a value outside [0, 1], NaN, infinity or
not a number is a :class:`MetricError` naming the metric and the example, never a silent clamp.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import math
import numbers
import re
import string
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PromptmillError
from ..task import Example

# Float arithmetic in a metric may land a hair outside [0, 1]; that much is rounding, not a bug.
_TOLERANCE = 1e-9


class MetricError(PromptmillError):
    """A metric that returned something other than a score in [0, 1]."""


@dataclass(frozen=True)
class Score:
    value: float
    feedback: str | None = None


class Metric(ABC):
    """Scores a model's output for one example."""

    name: str = "metric"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        score = cls.__dict__.get("score")
        if inspect.isfunction(score) and not getattr(score, "_checks_range", False):
            # built-ins, plugins and user classes alike: wrapping the method is the point
            cls.score = _checked(score)  # type: ignore[method-assign]
        score_call = cls.__dict__.get("score_call")
        if inspect.isfunction(score_call) and not getattr(score_call, "_checks_range", False):
            # a metric that judges the call (latency, cost) is held to the same range
            cls.score_call = _checked_call(score_call)  # type: ignore[method-assign]

    @abstractmethod
    def score(self, prediction: str, example: Example) -> Score:
        """Return a score in [0, 1], with feedback text where it helps."""

    def score_call(self, prediction: str, example: Example, generation: Any) -> Score:
        """The score with the call that produced the prediction (its seconds and tokens), for
        metrics that judge the call too (latency and cost ceilings); others ignore it."""
        return self.score(prediction, example)

    def describe(self) -> str:
        return self.name


def _checked(score: Callable[..., Any]) -> Callable[..., Score]:
    @functools.wraps(score)
    def checked_score(self: Metric, prediction: str, example: Example) -> Score:
        return check_score(score(self, prediction, example), self, example)

    checked_score._checks_range = True  # type: ignore[attr-defined]
    return checked_score


def _checked_call(score_call: Callable[..., Any]) -> Callable[..., Score]:
    @functools.wraps(score_call)
    def checked_score_call(self: Metric, prediction: str, example: Example,
                           generation: Any) -> Score:
        return check_score(score_call(self, prediction, example, generation), self, example)

    checked_score_call._checks_range = True  # type: ignore[attr-defined]
    return checked_score_call


def check_score(result: Any, metric: Metric, example: Example) -> Score:
    """``result`` if it is a :class:`Score` with a finite value in [0, 1], else MetricError."""
    value = result.value if isinstance(result, Score) else result
    if not isinstance(result, Score) or not isinstance(value, numbers.Real):
        shown = f"{clip(repr(result), 60)}" if not isinstance(result, Score) else (
            f"Score({clip(repr(value), 60)})")
        raise _bad_score(metric, example, f"returned {shown}, not a Score with a number")
    try:
        number = float(value)
    except OverflowError:  # an int with hundreds of digits
        raise _bad_score(metric, example, "returned a score too large for a float") from None
    if not math.isfinite(number):
        raise _bad_score(metric, example, f"returned the score {number}")
    if not -_TOLERANCE <= number <= 1 + _TOLERANCE:
        raise _bad_score(metric, example, f"returned the score {number:g}, outside [0, 1]")
    snapped = min(1.0, max(0.0, number))
    feedback = result.feedback
    if snapped == value and type(value) is float and (feedback is None or
                                                      isinstance(feedback, str)):
        return result
    return Score(snapped, None if feedback is None else str(feedback))  # the store keeps text


def _bad_score(metric: Metric, example: Example, problem: str) -> MetricError:
    where = getattr(metric, "where", None)  # a python: metric's file and function
    return MetricError(f"metric '{metric.describe()}' {problem} for example '{clip(example.id)}'",
                       where=where, fix="make the metric return a finite number from 0 to 1 "
                                        "(for a count, divide by the maximum)")


NO_REFERENCE = Score(0.0, "no reference answer for this example")

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """Lowercase, drop punctuation and articles, fold whitespace (SQuAD-style)."""
    text = _ARTICLES.sub(" ", text.lower().translate(_PUNCT))
    return " ".join(text.split())


def clamp(value: float) -> float:
    """``value`` limited to [0, 1]; NaN counts as 0."""
    return 0.0 if math.isnan(value) else min(1.0, max(0.0, value))


def clip(text: str, limit: int = 80) -> str:
    """``text`` on one line, cut to ``limit`` characters with '...'."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def quote(text: str, limit: int = 80) -> str:
    """``text`` clipped and quoted, for feedback."""
    return repr(clip(text, limit))


def digest(text: str, length: int) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def resolve_path(path: str, base_dir: Path | None) -> Path:
    """``path`` with ~ expanded; a relative path is relative to ``base_dir`` (else the cwd)."""
    resolved = Path(path).expanduser()
    return resolved if resolved.is_absolute() else (base_dir or Path.cwd()) / resolved
