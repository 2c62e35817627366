"""``auto``: choose the search method and split the budget from the data, the noise and the budget.

The choice is written down: the ``auto decision`` step records the plan and the reasons, and
``Auto.reasons`` keeps them. It looks at

* the data: how many training examples there are to show as demos, how many validation
  examples there are to measure with;
* the noise: the seed's validation mean ``p`` and its binomial standard error
  ``sqrt(p(1-p)/n)``. A gain smaller than about two standard errors cannot be told from noise,
  so when the seed is closer than that to a perfect score no search can prove anything;
* the budget: the calls left after scoring the seed, in full validation passes.

The policy is tuned for small local models, which learn a task's format from worked examples
far better than from any instruction:

* no room for a detectable gain: spend nothing, and say that a larger validation split would
  help;
* a tiny budget (under 3 validation passes): ``fewshot`` only, the most gain per call;
* a medium budget: ``fewshot``, then ``protegi`` on the incumbent's remaining failures;
* a large budget (8 passes or more): ``mipro`` (instructions and demos jointly) with 60%, then
  ``protegi`` (or ``evolve`` when the rest still allows 8 passes) from the incumbent;
* fewer than 4 training examples: demos cannot be varied, so instruction search
  (``protegi``, then ``evolve``) replaces the demo methods beyond a tiny budget.

The chosen methods run in turn on the same context, which carries the incumbent from one to the
next. Every phase but the last is held to its share of the calls, so the later ones get theirs.

Unlike a fixed default method, ``auto`` adapts to the task and explains itself; unlike a
meta-search over methods, it spends nothing on choosing.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from .base import Optimizer
from .budget import BudgetExhausted
from .context import OptimizationContext
from .registry import get_optimizer

TINY_PASSES = 3  # fewer full validation passes than this: one cheap method only
LARGE_PASSES = 8  # this many or more: joint search, then refinement
MIN_TRAIN_FOR_DEMOS = 4  # fewer training examples leave no choice of demos
FIRST_SHARE = 0.6  # of the calls left, for the first of two phases
Z = 1.96  # two-sided 95%: a gain must exceed about Z standard errors to be detected


@dataclass(frozen=True)
class Situation:
    """What the decision depends on, read from the context after the seed was scored."""

    n_train: int
    n_validation: int
    seed_score: float
    calls_left: int
    calls_estimated: bool = False  # no call budget: derived from tokens or seconds per call

    @property
    def noise(self) -> float:
        """Binomial standard error of the validation mean.

        ``p`` is kept half an example away from 0 and 1: a seed that gets everything wrong on
        20 examples is not measured with zero error.
        """
        n = max(1, self.n_validation)
        p = min(max(self.seed_score, 0.5 / n), 1 - 0.5 / n)
        return math.sqrt(p * (1 - p) / n)

    @property
    def detectable_gain(self) -> float:
        return Z * self.noise

    @property
    def headroom(self) -> float:
        return 1.0 - self.seed_score

    @property
    def passes(self) -> float:
        return self.calls_left / max(1, self.n_validation)

    @property
    def demos_help(self) -> bool:
        return self.n_train >= MIN_TRAIN_FOR_DEMOS


@dataclass
class Phase:
    """One method to run, with at most ``calls`` calls (``None``: whatever is left)."""

    method: str
    calls: int | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "calls": self.calls, "options": self.options}


# --- reading the situation ---------------------------------------------------------------------


def read_situation(ctx: OptimizationContext) -> Situation:
    calls_left, estimated = _calls_left(ctx)
    seed_score = ctx.incumbent.mean() if ctx.incumbent is not None else 0.0
    return Situation(len(ctx.train), len(ctx.validation), seed_score, calls_left, estimated)


def _calls_left(ctx: OptimizationContext) -> tuple[int, bool]:
    """Calls left under the tightest limit; token and time limits become calls at the rate so
    far (the seed's scoring), which is an estimate."""
    spend, budget = ctx.spend, ctx.spend.budget
    limits: list[tuple[int, bool]] = []
    if budget.calls is not None:
        limits.append((budget.calls - spend.calls, False))
    if budget.tokens is not None and spend.tokens > 0:
        limits.append((int((budget.tokens - spend.tokens) * spend.calls / spend.tokens), True))
    if budget.seconds is not None and spend.calls and spend.seconds > 0:
        limits.append((int((budget.seconds - spend.seconds) * spend.calls / spend.seconds), True))
    if not limits:  # nothing measured yet: assume room for the full plan
        return LARGE_PASSES * max(1, len(ctx.validation)), True
    left, estimated = min(limits)
    return max(0, left), estimated


# --- the policy -----------------------------------------------------------------------------


def decide(s: Situation) -> tuple[list[Phase], list[str]]:
    """The plan for this situation, and why."""
    reasons = _facts(s)
    if s.headroom <= s.detectable_gain:
        reasons.append(f"no room: the seed is within {s.headroom:.2f} of a perfect score, less "
                       f"than the smallest detectable gain ({s.detectable_gain:.2f}); searching "
                       "cannot prove an improvement, so nothing is spent (a larger validation "
                       "split would make smaller gains detectable)")
        return [], reasons
    if s.passes < TINY_PASSES:
        reasons.append(f"tiny budget: fewer than {TINY_PASSES} validation passes, so one cheap "
                       "method: fewshot (worked examples and format notes) gives a small model "
                       "the most gain per call")
        return [Phase("fewshot", None, _fewshot_options(s, s.calls_left))], reasons
    if not s.demos_help:
        return _instruction_plan(s, reasons)
    if s.passes < LARGE_PASSES:
        return _medium_plan(s, reasons)
    return _large_plan(s, reasons)


def _facts(s: Situation) -> list[str]:
    estimated = " (estimated from the cost of scoring the seed)" if s.calls_estimated else ""
    return [f"data: {s.n_train} training examples to draw demos from, {s.n_validation} "
            "validation examples to measure with",
            f"noise: the seed scores {s.seed_score:.2f}; the standard error on "
            f"{s.n_validation} examples is {s.noise:.3f}, so gains below about "
            f"{s.detectable_gain:.2f} cannot be told from noise",
            f"budget: {s.calls_left} calls left{estimated}, {s.passes:.1f} full validation "
            "passes"]


def _medium_plan(s: Situation, reasons: list[str]) -> tuple[list[Phase], list[str]]:
    first = int(FIRST_SHARE * s.calls_left)
    reasons.append(f"the seed is {s.headroom:.2f} from perfect and there are {s.n_train} "
                   "training examples: demos help a small model most, so fewshot first")
    reasons.append(f"medium budget ({TINY_PASSES}-{LARGE_PASSES} passes): too little for a "
                   f"joint search; fewshot gets {first} calls, then protegi fixes the "
                   "incumbent's remaining failures with the rest")
    return [Phase("fewshot", first, _fewshot_options(s, first)), Phase("protegi")], reasons


def _large_plan(s: Situation, reasons: list[str]) -> tuple[list[Phase], list[str]]:
    first = int(FIRST_SHARE * s.calls_left)
    follow_up = _follow_up(s, s.calls_left - first)
    reasons.append(f"the seed is {s.headroom:.2f} from perfect and there are {s.n_train} "
                   "training examples: demos help a small model most")
    reasons.append(f"large budget ({s.passes:.0f} passes, at least {LARGE_PASSES}): mipro "
                   f"searches instructions and demo sets jointly with {first} calls, then "
                   f"{follow_up} refines the incumbent with the rest")
    return [Phase("mipro", first, _mipro_options(s, first)), Phase(follow_up)], reasons


def _instruction_plan(s: Situation, reasons: list[str]) -> tuple[list[Phase], list[str]]:
    reasons.append(f"only {s.n_train} training examples (fewer than {MIN_TRAIN_FOR_DEMOS}): "
                   "there is no choice of demos, so search instructions")
    if s.passes < LARGE_PASSES:
        reasons.append("medium budget: protegi alone, fixing the seed's failures")
        return [Phase("protegi")], reasons
    first = int(FIRST_SHARE * s.calls_left)
    reasons.append(f"large budget ({s.passes:.0f} passes): protegi with {first} calls, then "
                   "evolve explores from the incumbent with the rest")
    return [Phase("protegi", first), Phase("evolve")], reasons


def _follow_up(s: Situation, calls: int) -> str:
    """Evolution needs many full passes to pay off; below that, targeted edits do better."""
    return "evolve" if calls >= LARGE_PASSES * s.n_validation else "protegi"


def _fewshot_options(s: Situation, calls: int) -> dict[str, Any]:
    """As many candidates (at most 8) as let successive halving and the winner's full
    validation pass fit in the calls; a second round only if it fits too."""
    batch = max(3, min(8, s.n_validation // 4))  # smaller minibatches are mostly noise
    fitting = [n for n in range(1, 9) if _halving_cost(n, batch, s.n_validation) <= calls]
    candidates = max(fitting, default=1)
    rounds = 2 if 2 * _halving_cost(candidates, batch, s.n_validation) <= calls else 1
    return {"candidates": candidates, "first_batch": batch, "rounds": rounds}


def _halving_cost(candidates: int, batch: int, n_validation: int) -> int:
    """Calls for successive halving (nested minibatches, doubling) and the winner's full pass."""
    alive, size, scored, cost = candidates, min(batch, n_validation), 0, 0
    while True:
        cost += alive * (size - scored)
        if alive <= 1 or size >= n_validation:
            return cost + (n_validation - size)
        alive, scored, size = max(1, alive // 2), size, min(n_validation, 2 * size)


def _mipro_options(s: Situation, calls: int) -> dict[str, Any]:
    """Minibatches of about a quarter of validation; trials to fill the calls after the
    proposals and two full validation passes."""
    minibatch = max(3, min(25, s.n_validation // 4))
    trials = max(6, min(40, (calls - 2 * s.n_validation - 3) // minibatch))
    return {"minibatch": minibatch, "trials": trials}


# --- running the plan --------------------------------------------------------------------------


class Auto(Optimizer):
    name = "auto"

    def __init__(self) -> None:
        super().__init__()
        self.plan: list[Phase] = []
        self.reasons: list[str] = []

    def optimize(self, ctx: OptimizationContext) -> None:
        self.plan, self.reasons = decide(read_situation(ctx))
        method = "+".join(p.method for p in self.plan) or "none"
        ctx.event("auto decision", ctx.incumbent, detail={
            "method": method, "reasons": self.reasons,
            "plan": [p.to_dict() for p in self.plan]})
        for i, phase in enumerate(self.plan):
            last = i == len(self.plan) - 1
            self._run(ctx, phase, capped=not last)

    def _run(self, ctx: OptimizationContext, phase: Phase, capped: bool) -> None:
        optimizer = get_optimizer(phase.method, **phase.options)
        ctx.event("auto phase", ctx.incumbent, detail=phase.to_dict())
        if not capped or phase.calls is None:
            optimizer.optimize(ctx)  # BudgetExhausted here ends the whole search
            return
        try:
            with _capped(ctx, phase.calls):
                optimizer.optimize(ctx)
        except BudgetExhausted as exc:  # only this phase's share is spent: go on
            ctx.event("auto phase over", ctx.incumbent,
                      detail={"method": phase.method, "reason": str(exc)})


@contextmanager
def _capped(ctx: OptimizationContext, calls: int) -> Iterator[None]:
    """Hold a phase to ``calls`` more calls, so the phases after it keep their share."""
    real = ctx.spend.budget
    limit = ctx.spend.calls + max(1, calls)
    ctx.spend.budget = replace(real, calls=min(real.calls, limit) if real.calls else limit)
    try:
        yield
    finally:
        ctx.spend.budget = real
