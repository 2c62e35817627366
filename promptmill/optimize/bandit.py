"""Successive halving: spend the scoring budget on the candidates that keep looking good."""

from __future__ import annotations

from collections.abc import Sequence

from ..task import Example
from .context import Candidate, OptimizationContext


def validation_order(ctx: OptimizationContext) -> list[Example]:
    """One shuffled order of the validation split, so minibatches are nested prefixes."""
    return ctx.validation_order()


def successive_halving(ctx: OptimizationContext, candidates: Sequence[Candidate],
                       first_batch: int = 8, keep: int = 1) -> list[Candidate]:
    """Score all on a small minibatch, keep the better half, double the batch, repeat.

    Returns the survivors ranked best first, only candidates that were scored. Stops early,
    ranking what it has, when the next round plus the winner's full validation pass (which
    the gate needs) does not fit in the budget.
    """
    order = validation_order(ctx)
    alive = list(dict.fromkeys(candidates))
    batch = min(first_batch, len(order))
    scored = False
    while alive:
        examples = order[:batch]
        cost = sum(1 for c in alive for ex in examples if ex.id not in c.outcomes)
        if not ctx.can_afford(cost + len(order) - batch):
            break
        scored = True
        for cand in alive:
            ctx.evaluate(cand, examples)
        alive.sort(key=lambda c: (-c.mean([ex.id for ex in examples]), c.index))
        if len(alive) <= keep or batch >= len(order):
            break
        alive = alive[: max(keep, len(alive) // 2)]
        batch = min(len(order), batch * 2)
    if not scored:
        return []
    ids = [ex.id for ex in order]
    return sorted(alive, key=lambda c: (-c.mean(ids), c.index))
