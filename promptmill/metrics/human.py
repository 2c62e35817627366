"""Human ratings as a metric, and rating comments as feedback text for optimizers.

People rate outputs in the workbench (``promptmill ui``); each rating is stored against a run's
example. A rating belongs to the output that was rated, so this metric scores a prediction by
the ratings of that same output for that same example, in any run (of ``task``, if given).
Outputs nobody rated score ``default`` and say so in their feedback.

The metric reads no database: its caller hands it the ratings, as a lookup. A task config's
``human`` metric names only where they are (``store``, a URL); ``api.build_metric`` binds the
lookup (``promptmill.ratings_binding.bind_ratings``), and
``promptmill.ratings_binding.human_metric`` builds a bound one. Reviewers' comments arrive as
a mapping (``promptmill.store.ratings.rating_feedback``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..errors import ConfigError
from ..task import Example
from .base import Metric, Score, clamp


class RatingLookup(Protocol):
    """(score, comment) of every rating of ``output`` for ``example_id`` (in ``task``)."""

    def __call__(self, example_id: str, output: str,
                 task: str | None = None) -> list[tuple[float, str | None]]: ...


class HumanRating(Metric):
    """The mean human rating (in [0, 1]) of this exact output for this example."""

    name = "human"

    def __init__(self, ratings: RatingLookup | None = None, task: str | None = None,
                 default: float = 0.0, store: str | None = None):
        self.lookup = ratings
        self.store = store  # where the caller finds the ratings to bind (None: the default)
        self.task = task
        self.default = clamp(float(default))

    def bind(self, ratings: RatingLookup) -> HumanRating:
        """Read ratings through ``ratings`` from now on."""
        self.lookup = ratings
        return self

    def ratings(self, example_id: str, output: str) -> list[tuple[float, str | None]]:
        if self.lookup is None:
            raise ConfigError("the human metric was given no ratings to read", where="metric",
                              fix="build it with promptmill.ratings_binding.human_metric(STORE) "
                                  "or from a task config")
        return self.lookup(example_id, output, self.task)

    def score(self, prediction: str, example: Example) -> Score:
        found = self.ratings(example.id, prediction)
        if not found:
            return Score(self.default, "no human rating for this output yet")
        mean = sum(s for s, _ in found) / len(found)
        comments = [c for _, c in found if c]
        note = f"rated {mean:.2f} by {len(found)} reviewer(s)"
        return Score(clamp(mean), f"{note}: " + " | ".join(comments) if comments else note)

    def describe(self) -> str:
        return f"human(task={self.task or '*'}, default={self.default:g})"


# Reviewers' comments by example id: each entry has at least a "comment".
Comments = Mapping[str, Sequence[Mapping[str, Any]]]


class WithReviewerComments(Metric):
    """Another metric, with reviewers' comments on the same example added to its feedback.

    Scores are the inner metric's, unchanged; only the feedback text grows, so optimizers that
    read failures (ProTeGi, GEPA-style reflection) see what people said about the task.
    """

    def __init__(self, inner: Metric, comments: Comments):
        self.inner, self.comments = inner, comments
        self.name = inner.name

    def score(self, prediction: str, example: Example) -> Score:
        scored = self.inner.score(prediction, example)
        said = [c["comment"] for c in self.comments.get(example.id, [])][-3:]
        if not said:
            return scored
        extra = "reviewers said: " + " | ".join(said)
        return Score(scored.value, f"{scored.feedback}; {extra}" if scored.feedback else extra)

    def describe(self) -> str:  # the same metric for run fingerprints and the cache
        return self.inner.describe()


def with_reviewer_comments(metric: Metric, comments: Comments) -> Metric:
    """``metric`` with reviewers' comments in its feedback; itself when there are none."""
    return WithReviewerComments(metric, comments) if comments else metric


__all__ = ["HumanRating", "RatingLookup", "WithReviewerComments", "with_reviewer_comments"]
