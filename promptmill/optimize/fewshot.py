"""``fewshot``: choose worked examples (demos) from the training split by random search.

Small models learn a task's format from a few examples far better than from any instruction.
Candidate demo sets of k, 2k and k/2 examples are drawn from train (spread over distinct
answers), with and without format notes from the strategy library, and the budget goes to
the promising ones by successive halving on validation minibatches. The best is offered to
the acceptance gate.
"""

from __future__ import annotations

from .bandit import successive_halving
from .base import Optimizer
from .context import OptimizationContext
from .mutations import format_variants, sample_demos, with_demos


class FewShot(Optimizer):
    name = "fewshot"

    def __init__(self, k: int = 4, candidates: int = 8, first_batch: int = 8,
                 rounds: int = 2):
        super().__init__(k=k, candidates=candidates, first_batch=first_batch, rounds=rounds)
        self.k, self.n, self.first_batch, self.rounds = k, candidates, first_batch, rounds

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
        pool = []
        for i in range(self.n):
            origin, prompt = bases[i % len(bases)]
            k = max(1, min(len(ctx.train), sizes[i % len(sizes)]))
            demos = sample_demos(ctx.train, k, ctx.rng)
            cand = ctx.add(with_demos(prompt, demos), parents=[base.index],
                           origin=f"fewshot:k={k}" + (f"+{origin}" if origin else ""))
            if cand is not None:
                pool.append(cand)
        return pool
