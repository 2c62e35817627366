"""Human ratings in the store: the workbench's scores and comments on a run's outputs.

Data access only, returning typed values: the store knows no metric. The ``human`` metric
reads ratings through :func:`output_ratings`, bound to a store by its caller
(``promptmill.ratings_binding``), so the metrics package never opens a database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

import sqlalchemy as sa

from . import schema
from .db import Store

ra, re_, ru = schema.ratings, schema.results, schema.runs


class RatingRow(TypedDict):
    id: int
    run_id: int
    example_id: str
    score: float
    comment: str | None
    author: str | None
    created_at: datetime


class RatedOutput(TypedDict):
    """A reviewer's comment on one output: what an optimizer shows its proposer."""

    output: str | None
    score: float
    comment: str


def open_store(store: Store | str | None) -> Store:
    """The store itself, or one opened from a URL (None: the default store)."""
    return store if isinstance(store, Store) else Store(store)


def attach_ratings(store: Store, run_id: int, rows: list[Any]) -> None:
    """Each row gains ``rating`` (the mean human score) and ``n_ratings``."""
    ids = [r["example_id"] for r in rows]
    found: dict[str, tuple[float, int]] = {}
    if ids:
        query = (sa.select(ra.c.example_id, sa.func.avg(ra.c.score), sa.func.count())
                 .where(ra.c.run_id == run_id, ra.c.example_id.in_(ids))
                 .group_by(ra.c.example_id))
        with store.engine.connect() as conn:
            found = {ex: (mean, n) for ex, mean, n in conn.execute(query)}
    for row in rows:
        row["rating"], row["n_ratings"] = found.get(row["example_id"], (None, 0))


def output_ratings(store: Store, example_id: str, output: str,
                   task: str | None = None) -> list[tuple[float, str | None]]:
    """(score, comment) of every rating of this exact output for this example, oldest first,
    in any run (of ``task``, if given)."""
    query = (sa.select(ra.c.score, ra.c.comment)
             .join(re_, sa.and_(re_.c.run_id == ra.c.run_id,
                                re_.c.example_id == ra.c.example_id))
             .where(ra.c.example_id == example_id, re_.c.output == output)
             .order_by(ra.c.id))
    if task:
        query = query.join(ru, ru.c.id == ra.c.run_id).where(ru.c.task == task)
    with store.engine.connect() as conn:
        return [(float(s), c) for s, c in conn.execute(query)]


def rating_feedback(store: Store | str | None, task: str,
                    example_ids: list[str] | None = None) -> dict[str, list[RatedOutput]]:
    """Reviewers' comments on a task's outputs, by example id, oldest first.

    Each entry has the rated ``output``, its normalized ``score`` and the ``comment``: feedback
    text an optimizer can show its proposer beside the metric's own feedback.
    """
    query = (sa.select(ra.c.example_id, re_.c.output, ra.c.score, ra.c.comment)
             .join(re_, sa.and_(re_.c.run_id == ra.c.run_id, re_.c.example_id == ra.c.example_id))
             .join(ru, ru.c.id == ra.c.run_id)
             .where(ru.c.task == task, ra.c.comment.is_not(None), ra.c.comment != "")
             .order_by(ra.c.id))
    if example_ids is not None:
        query = query.where(ra.c.example_id.in_(list(example_ids)))
    found: dict[str, list[RatedOutput]] = {}
    with open_store(store).engine.connect() as conn:
        for example_id, output, score, comment in conn.execute(query):
            found.setdefault(example_id, []).append(
                {"output": output, "score": float(score), "comment": comment})
    return found
