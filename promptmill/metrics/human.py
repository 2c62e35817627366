"""Human ratings as a metric, and rating comments as feedback text for optimizers.

People rate outputs in the workbench (``promptmill ui``); each rating is stored against a run's
example. A rating belongs to the output that was rated, so this metric scores a prediction by
the ratings of that same output for that same example, in any run (of ``task``, if given).
Outputs nobody rated score ``default`` and say so in their feedback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..task import Example
from .base import Metric, Score, clamp

if TYPE_CHECKING:
    from ..store.db import Store


def _open(store: Store | str | None) -> Store:
    from ..store.db import Store

    return store if isinstance(store, Store) else Store(store)


class HumanRating(Metric):
    """The mean human rating (in [0, 1]) of this exact output for this example."""

    name = "human"

    def __init__(self, store: Store | str | None = None, task: str | None = None,
                 default: float = 0.0):
        self.store = _open(store)
        self.task = task
        self.default = clamp(float(default))

    def ratings(self, example_id: str, output: str) -> list[tuple[float, str | None]]:
        import sqlalchemy as sa

        from ..store import schema

        ra, re_, ru = schema.ratings, schema.results, schema.runs
        query = (sa.select(ra.c.score, ra.c.comment)
                 .join(re_, sa.and_(re_.c.run_id == ra.c.run_id,
                                    re_.c.example_id == ra.c.example_id))
                 .where(ra.c.example_id == example_id, re_.c.output == output)
                 .order_by(ra.c.id))
        if self.task:
            query = query.join(ru, ru.c.id == ra.c.run_id).where(ru.c.task == self.task)
        with self.store.engine.connect() as conn:
            return [(float(s), c) for s, c in conn.execute(query)]

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


def rating_feedback(store: Store | str | None, task: str,
                    example_ids: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Reviewers' comments on a task's outputs, by example id, oldest first.

    Each entry has the rated ``output``, its normalized ``score`` and the ``comment``: feedback
    text an optimizer can show its proposer beside the metric's own feedback.
    """
    import sqlalchemy as sa

    from ..store import schema

    ra, re_, ru = schema.ratings, schema.results, schema.runs
    query = (sa.select(ra.c.example_id, re_.c.output, ra.c.score, ra.c.comment)
             .join(re_, sa.and_(re_.c.run_id == ra.c.run_id, re_.c.example_id == ra.c.example_id))
             .join(ru, ru.c.id == ra.c.run_id)
             .where(ru.c.task == task, ra.c.comment.is_not(None), ra.c.comment != "")
             .order_by(ra.c.id))
    if example_ids is not None:
        query = query.where(ra.c.example_id.in_(list(example_ids)))
    found: dict[str, list[dict[str, Any]]] = {}
    with _open(store).engine.connect() as conn:
        for example_id, output, score, comment in conn.execute(query):
            found.setdefault(example_id, []).append(
                {"output": output, "score": float(score), "comment": comment})
    return found


class WithReviewerComments(Metric):
    """Another metric, with reviewers' comments on the same example added to its feedback.

    Scores are the inner metric's, unchanged; only the feedback text grows, so optimizers that
    read failures (ProTeGi, GEPA-style reflection) see what people said about the task.
    """

    def __init__(self, inner: Metric, comments: dict[str, list[dict[str, Any]]]):
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


def with_reviewer_comments(metric: Metric, store: Store | str | None, task: str) -> Metric:
    """``metric`` with the task's rating comments in its feedback; itself when there are none."""
    comments = rating_feedback(store, task)
    return WithReviewerComments(metric, comments) if comments else metric


__all__ = ["HumanRating", "WithReviewerComments", "rating_feedback", "with_reviewer_comments"]
