"""The ``human`` metric bound to the ratings a store holds: where metrics meet the store.

Neither side knows the other: the metric scores through whatever lookup its caller gives it,
and the store only reads ratings back (``promptmill.store.ratings.output_ratings``). This
module, in the API layer above both, hands one to the other.
"""

from __future__ import annotations

from functools import partial
from typing import TypeVar

from .metrics.human import HumanRating
from .store.db import Store
from .store.ratings import open_store, output_ratings

M = TypeVar("M")


def human_metric(store: Store | str | None = None, task: str | None = None,
                 default: float = 0.0) -> HumanRating:
    """The ``human`` metric reading ratings from ``store`` (a URL; None: the default store)."""
    return HumanRating(partial(output_ratings, open_store(store)), task=task, default=default)


def bind_ratings(metric: M, store: Store | None = None) -> M:
    """``metric``, with its ratings bound when it is a ``human`` metric that has none yet:
    read from the store its config names, else from ``store``, else the default store."""
    if isinstance(metric, HumanRating) and metric.lookup is None:
        source = open_store(metric.store if metric.store is not None else store)
        metric.bind(partial(output_ratings, source))
    return metric


__all__ = ["bind_ratings", "human_metric"]
