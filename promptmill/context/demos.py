"""Dynamic few-shot: pick each example's demos from the training pool.

:class:`DemoSelector` ranks the pool against the example's inputs (BM25 or embeddings, or
draws at random), keeps the set diverse with maximal marginal relevance, can spread the picks
over labels, trims to a token budget, and puts the result in the prompt's ``demos``.

Design choices:

* The query and every pool document are the input values joined by newlines; field names are
  the same in every example, so they would only add noise to the ranking.
* An example is never its own demo (same id or same inputs): that would leak the answer and
  inflate the score.
* Selection is a pure function of (pool, example, settings): random draws are seeded by the
  seed and the example id, so a run gives the same demos in any order and on any thread.
* The pool index is built once per pool and cached under ``$PROMPTMILL_HOME/indexes``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..hashing import canonical_json, sha256_hex
from ..prompt import Demo
from ..task import Example
from .base import Prepared
from .config import DemoSelection

METHODS = ("bm25", "embedding", "random")
MIN_CANDIDATES = 50  # MMR looks this far down the ranking (or 10 * k if larger)


def query_text(inputs: dict[str, Any]) -> str:
    """The text an example is ranked by: its input values, one per line."""
    return "\n".join(str(v) for v in inputs.values() if v is not None)


def estimate_tokens(text: str) -> int:
    """About 1.3 tokens per English word for BPE tokenizers: close enough for a budget."""
    return math.ceil(len(text.split()) * 1.3)


class DemoSelector:
    """A Contextualizer that chooses ``k`` demos per example from ``pool`` (the train split).

    ``mmr_lambda`` trades relevance against redundancy (1.0 = pure relevance).
    ``balance_labels`` caps each distinct target at ceil(k / number of targets).
    ``max_demo_tokens`` drops the least relevant demos until the rest fit; tokens are counted
    by ``count_tokens`` (default: words * 1.3). ``model`` is the embedding model directory
    (None: the packaged MiniLM); ``index_root`` overrides where indexes are cached.
    """

    def __init__(self, pool: Sequence[Example], k: int = 4, method: str = "bm25",
                 mmr_lambda: float = 0.7, balance_labels: bool = False,
                 max_demo_tokens: int | None = None, seed: int = 0, *,
                 count_tokens: Callable[[str], int] | None = None, model: str | None = None,
                 index_root: str | None = None):
        _check_settings(k, method, mmr_lambda, max_demo_tokens)
        self.pool = [ex for ex in pool if ex.accepted]  # a demo needs an answer to show
        _check_pool(len(self.pool), len(pool), k)
        self.k, self.method, self.mmr_lambda = k, method, float(mmr_lambda)
        self.balance_labels = balance_labels
        self.max_demo_tokens = max_demo_tokens
        self.seed = seed
        self.count_tokens = count_tokens or estimate_tokens
        self.model = model
        self._texts = [query_text(ex.inputs) for ex in self.pool]
        self._input_keys = [canonical_json(ex.inputs) for ex in self.pool]
        self._labels = [ex.accepted[0].strip().casefold() for ex in self.pool]
        self._index = self._build_index(index_root)

    @classmethod
    def from_selection(cls, pool: Sequence[Example], selection: DemoSelection,
                       seed: int = 0) -> DemoSelector:
        """The selector a prompt's ``demo_selection`` or a task's ``context.demos`` asks for."""
        return cls(pool, selection.k, selection.method, selection.mmr_lambda,
                   selection.balance_labels, selection.max_tokens, seed=seed)

    def _build_index(self, root: str | None):
        if self.method == "random":
            return None
        from ..retrieval import get_or_build

        params = {"model": self.model} if self.method == "embedding" else {}
        ids = [str(i) for i in range(len(self.pool))]  # positions: pool ids need not be unique
        return get_or_build(self.method, self._texts, ids, root=root, **params)

    # --- the Contextualizer verb -----------------------------------------------------------
    def prepare(self, prepared: Prepared, example: Example) -> Prepared:
        allowed = self._allowed(example)
        if self._index is None:
            picks = self._random_picks(allowed, example)
        else:
            picks = self._relevant_picks(allowed, example)
        picks, dropped = self._fit_budget(picks)
        # best demo last: it sits right before the query, and small models lean hardest on
        # the most recent tokens (recency bias), so the closest example should be nearest
        ordered = list(reversed(picks))
        demos = tuple(Demo(inputs=dict(self.pool[i].inputs), output=self.pool[i].accepted[0])
                      for i in ordered)
        prepared.prompt = prepared.prompt.model_copy(update={"demos": demos})
        ids = ", ".join(self.pool[i].id for i in ordered)
        prepared.notes.append(f"demos: {self.method} k={self.k} ids=[{ids}]")
        if dropped:
            prepared.notes.append(f"demos: dropped {len(dropped)} over the "
                                  f"{self.max_demo_tokens}-token budget "
                                  f"(ids=[{', '.join(self.pool[i].id for i in dropped)}])")
        return prepared

    def describe(self) -> dict[str, Any]:
        return {"contextualizer": "demos", "method": self.method, "k": self.k,
                "mmr_lambda": self.mmr_lambda, "balance_labels": self.balance_labels,
                "max_demo_tokens": self.max_demo_tokens,
                "token_counter": getattr(self.count_tokens, "__name__", "custom"),
                "seed": self.seed, "model": self.model if self.method == "embedding" else None,
                "pool": self.pool_fingerprint(), "pool_size": len(self.pool)}

    def pool_fingerprint(self) -> str:
        rows = [[ex.id, ex.inputs, list(ex.accepted)] for ex in self.pool]
        return sha256_hex(canonical_json(rows))[:16]

    # --- selection -------------------------------------------------------------------------
    def _allowed(self, example: Example) -> list[int]:
        own = canonical_json(example.inputs)
        return [i for i, ex in enumerate(self.pool)
                if ex.id != example.id and self._input_keys[i] != own]

    def _relevant_picks(self, allowed: list[int], example: Example) -> list[int]:
        """MMR over the best-ranked candidates; returned best first by relevance."""
        from ..retrieval import mmr

        relevance = self._relevance(query_text(example.inputs))
        candidates = self._candidates(sorted(allowed, key=lambda i: -relevance[i]))
        labels = [self._labels[i] for i in candidates] if self.balance_labels else None
        chosen = mmr(relevance[candidates], self._index.similarity(candidates), self.k,
                     self.mmr_lambda, labels)
        return sorted((candidates[j] for j in chosen), key=lambda i: -relevance[i])

    def _relevance(self, query: str) -> np.ndarray:
        scores = self._index.scores(query).astype(np.float64)
        top = scores.max(initial=0.0)
        # BM25 scores are unbounded; scale them to [0, 1] so they trade evenly against the
        # [0, 1] redundancy term. Cosines are already on that scale.
        return scores / top if self.method == "bm25" and top > 0 else scores

    def _candidates(self, ranked: list[int]) -> list[int]:
        limit = max(MIN_CANDIDATES, 10 * self.k)
        chosen = ranked[:limit]
        if self.balance_labels:  # a rare label may rank below the cut: keep its best few
            quota = math.ceil(self.k / len(set(self._labels)))
            seen: dict[str, int] = {}
            for i in ranked[limit:]:
                label = self._labels[i]
                if seen.get(label, 0) < quota:
                    seen[label] = seen.get(label, 0) + 1
                    chosen.append(i)
        return chosen

    def _random_picks(self, allowed: list[int], example: Example) -> list[int]:
        from ..retrieval import mmr

        rng = random.Random(f"{self.seed}:{example.id}")
        draws = np.array([rng.random() for _ in allowed])
        labels = [self._labels[i] for i in allowed] if self.balance_labels else None
        # MMR with lambda 1 and random relevance is a seeded shuffle that respects the quota
        chosen = mmr(draws, np.zeros((len(allowed), len(allowed))), self.k, 1.0, labels)
        return [allowed[j] for j in chosen]

    def _fit_budget(self, picks: list[int]) -> tuple[list[int], list[int]]:
        """Keep demos best first while they fit; one that does not fit is skipped, so a
        long demo does not crowd out shorter, less relevant ones."""
        if self.max_demo_tokens is None:
            return picks, []
        kept, dropped, used = [], [], 0
        for i in picks:
            cost = self.count_tokens(f"{self._texts[i]}\n{self.pool[i].accepted[0]}")
            if used + cost <= self.max_demo_tokens:
                kept.append(i)
                used += cost
            else:
                dropped.append(i)
        return kept, dropped


def _check_settings(k: Any, method: str, mmr_lambda: Any, max_demo_tokens: Any) -> None:
    if method not in METHODS:
        raise ConfigError(f"unknown demo selection method '{method}'", where="demos.method",
                          fix=f"use one of: {', '.join(METHODS)}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k must be a whole number of at least 1, not {k!r}",
                          where="demos.k", fix="use e.g. k=4")
    if isinstance(mmr_lambda, bool) or not isinstance(mmr_lambda, int | float) \
            or not 0 <= mmr_lambda <= 1:
        raise ConfigError(f"mmr_lambda must be a number from 0 to 1, not {mmr_lambda!r}",
                          where="demos.mmr_lambda",
                          fix="use 1.0 for pure relevance, e.g. 0.7 to add diversity")
    if max_demo_tokens is not None and (isinstance(max_demo_tokens, bool)
                                        or not isinstance(max_demo_tokens, int)
                                        or max_demo_tokens < 1):
        raise ConfigError(f"max_demo_tokens must be a positive whole number or None, not "
                          f"{max_demo_tokens!r}", where="demos.max_demo_tokens",
                          fix="use e.g. 400, or None for no budget")


def _check_pool(usable: int, given: int, k: int) -> None:
    if usable == 0:
        why = "is empty" if given == 0 else f"has {given} examples but none has a target"
        raise ConfigError(f"demo pool {why}", where="demos.pool",
                          fix="pass the training split (task.train) with targets, or add "
                              "training examples")
    if k > usable:
        raise ConfigError(f"demo pool has {usable} examples, k={k}", where="demos.k",
                          fix="lower k or add training examples")
