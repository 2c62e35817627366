"""What every metric shares: :class:`Score`, the :class:`Metric` interface, text helpers.

Every score is in [0, 1] and may carry feedback text saying why; optimizers read that text.
"""

from __future__ import annotations

import hashlib
import math
import re
import string
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from ..task import Example


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
