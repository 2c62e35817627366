"""``mipro``: search instructions and demo sets jointly with a Bayesian optimizer (TPE).

After DSPy's MIPROv2. Three steps:

1. Demo sets: several sets of ``k`` worked examples sampled from train (spread over distinct
   answers), plus the empty set.
2. Instructions: the incumbent's own, its rule-based format variants (answer-only, answer
   shape), and instructions the proposer induces from each demo set (APE's forward template).
3. Search: an Optuna TPE study picks an (instruction, demo set) pair per trial; the combined
   prompt is scored on a random validation minibatch, and the minibatch mean is the trial's
   value. Every few trials, and at the end, the combination with the best mean over all its
   scored validation examples is scored on the whole validation split and offered to the
   acceptance gate.

How it differs from MIPROv2: the program is a single prompt, so demos are sampled labelled
examples rather than bootstrapped traces (for one stage the model's correct outputs would equal
the labels anyway); the instruction proposer sees only the demo pairs, not a dataset summary or
the program's code (a 135M proposer cannot use more); a trial that repeats a combination reuses
its candidate and cached scores; the search keeps enough budget in reserve to score its best
combination on all of validation, and the acceptance gate, not the highest score, decides
whether it replaces the incumbent.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from ..prompt import Demo, Prompt
from ..task import Example
from .base import Optimizer
from .context import Candidate, OptimizationContext
from .mutations import demos_from, format_variants, sample_demos
from .proposals import clean_instruction, induction_request

PROPOSAL_TOKENS = 80  # one sentence is asked for, and only the first sentence is kept
FULL_EVAL_EVERY = 10  # trials between full validation passes of the best combination (DSPy: 10)


@dataclass(frozen=True)
class DemoSet:
    """Worked examples to show, and the training examples they came from (for induction)."""

    label: str
    demos: tuple[Demo, ...]
    examples: tuple[Example, ...] = ()


@dataclass(frozen=True)
class Instruction:
    """One instruction candidate: a demo-free prompt (instruction and format note)."""

    origin: str
    prompt: Prompt


class MIPRO(Optimizer):
    name = "mipro"

    def __init__(self, demo_sets: int = 4, instructions: int = 3, trials: int = 20,
                 minibatch: int = 5, k: int = 3):
        super().__init__(demo_sets=demo_sets, instructions=instructions, trials=trials,
                         minibatch=minibatch, k=k)
        self.n_demo_sets, self.n_instructions = demo_sets, instructions
        self.trials, self.minibatch, self.k = trials, minibatch, k

    def optimize(self, ctx: OptimizationContext) -> None:
        base = ctx.leader
        demo_sets = self._demo_sets(ctx, base.prompt)
        instructions = self._instructions(ctx, base.prompt, demo_sets)
        ctx.event("mipro search space", base, detail={
            "instructions": [i.origin for i in instructions],
            "demo_sets": [d.label for d in demo_sets]})
        search = _Search(ctx, base, instructions, demo_sets, self._batch_size(ctx))
        search.run(self.trials)

    # --- step 1: demo sets ------------------------------------------------------------------
    def _demo_sets(self, ctx: OptimizationContext, base: Prompt) -> list[DemoSet]:
        """No demos, the incumbent's own (if any), then distinct sampled sets of k examples."""
        sets = [DemoSet("none", ())]
        if base.demos:  # so the search can keep what an earlier method found
            sets.append(DemoSet("incumbent", base.demos))
        k = max(1, min(self.k, len(ctx.train)))
        seen: set[tuple[str, ...]] = set()
        for _ in range(max(0, self.n_demo_sets - 1)):
            examples = sample_demos(ctx.train, k, ctx.rng) if ctx.train else []
            key = tuple(ex.id for ex in examples)
            if examples and key not in seen:  # a repeated set would only split TPE's attention
                seen.add(key)
                sets.append(DemoSet(f"sample{len(seen)}:k={k}", demos_from(examples),
                                    tuple(examples)))
        return sets

    # --- step 2: instructions ---------------------------------------------------------------
    def _instructions(self, ctx: OptimizationContext, seed: Prompt,
                      demo_sets: Sequence[DemoSet]) -> list[Instruction]:
        plain = seed.model_copy(update={"demos": ()})
        found = [Instruction("seed", plain)]
        found += [Instruction(origin, p) for origin, p in format_variants(plain, ctx.train)]
        for n, text in enumerate(self._induced(ctx, demo_sets), start=1):
            induced = plain.model_copy(update={"instruction": text})
            found.append(Instruction(f"induced:{n}", induced))
        return _unique(found)

    def _induced(self, ctx: OptimizationContext, demo_sets: Sequence[DemoSet]) -> list[str]:
        """Ask the proposer for an instruction behind each sampled demo set in turn."""
        sources = ([d.examples for d in demo_sets if d.examples]
                   or [tuple(ctx.train[: self.k])])
        texts = []
        for i in range(self.n_instructions):
            # Keep enough budget for one trial and the final full evaluation.
            if not sources[0] or not ctx.can_afford(1 + self._reserve(ctx)):
                break
            request = induction_request(sources[i % len(sources)])
            text = clean_instruction(ctx.propose(request, max_tokens=PROPOSAL_TOKENS)[0])
            if text:  # an empty or garbage proposal cleans to nothing
                texts.append(text)
        return texts

    def _batch_size(self, ctx: OptimizationContext) -> int:
        return max(1, min(self.minibatch, len(ctx.validation)))

    def _reserve(self, ctx: OptimizationContext) -> int:
        return self._batch_size(ctx) + len(ctx.validation)


def _unique(instructions: list[Instruction]) -> list[Instruction]:
    """Drop instructions whose prompt repeats an earlier one (a proposal may echo the seed)."""
    seen, kept = set(), []
    for ins in instructions:
        if ins.prompt.hash not in seen:
            seen.add(ins.prompt.hash)
            kept.append(ins)
    return kept


class _Search:
    """Step 3: the TPE study over (instruction, demo set) and the full evaluations."""

    def __init__(self, ctx: OptimizationContext, base: Candidate,
                 instructions: list[Instruction], demo_sets: list[DemoSet], batch: int):
        self.ctx, self.base = ctx, base
        self.instructions, self.demo_sets, self.batch = instructions, demo_sets, batch
        self.combos: dict[tuple[int, int], Candidate | None] = {}
        self.offered: set[int] = set()

    def run(self, trials: int) -> None:
        study = _new_study(self.ctx.seed)
        for number in range(1, trials + 1):
            # Stop while the best combination can still be scored on all of validation.
            if not self.ctx.can_afford(self.batch + len(self.ctx.validation)):
                break
            self._trial(study)
            if number % FULL_EVAL_EVERY == 0:
                self.offer_best()
        self.offer_best()

    def _trial(self, study) -> None:
        import optuna

        trial = study.ask()
        combo = (trial.suggest_categorical("instruction", list(range(len(self.instructions)))),
                 trial.suggest_categorical("demos", list(range(len(self.demo_sets)))))
        cand = self._candidate(combo)
        if cand is None:  # rejected by the context (e.g. no instruction and no demos)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return
        batch = self.ctx.rng.sample(self.ctx.validation, self.batch)
        self.ctx.evaluate(cand, batch)
        value = cand.mean([ex.id for ex in batch])
        study.tell(trial, value)
        self.ctx.event("mipro trial", cand, detail={
            "trial": trial.number, "instruction": combo[0], "demos": combo[1],
            "minibatch": round(value, 4), "mean": round(cand.mean(), 4), "n": len(cand.scores)})

    def _candidate(self, combo: tuple[int, int]) -> Candidate | None:
        """The combination's candidate: new, or the existing one when the prompt repeats."""
        if combo in self.combos:
            return self.combos[combo]
        ins, demo_set = self.instructions[combo[0]], self.demo_sets[combo[1]]
        prompt = ins.prompt.model_copy(update={"demos": demo_set.demos})
        origin = f"mipro:{ins.origin}+demos:{demo_set.label}"
        cand = self.ctx.add(prompt, parents=[self.base.index], origin=origin)
        # Remember a rejection too, so a repeated suggestion is not rejected and logged again.
        self.combos[combo] = cand or _find(self.ctx, prompt)
        return self.combos[combo]

    def offer_best(self) -> None:
        """Score the best-looking combination on all of validation and offer it to the gate."""
        best = self.best()
        if best is None or best.index in self.offered:
            return  # nothing new looks better than what was already offered
        missing = sum(1 for ex in self.ctx.validation if ex.id not in best.scores)
        if not self.ctx.can_afford(missing):
            return
        self.offered.add(best.index)
        self.ctx.consider(best)

    def best(self) -> Candidate | None:
        """Highest mean over its scored validation examples; more evidence breaks ties."""
        scored = [c for c in self.combos.values() if c is not None and c.scores]
        if not scored:
            return None
        return min(scored, key=lambda c: (-c.mean(), -len(c.scores), c.index))


def _find(ctx: OptimizationContext, prompt: Prompt) -> Candidate | None:
    return next((c for c in ctx.candidates if c.prompt.hash == prompt.hash), None)


def _new_study(seed: int):
    """An in-memory, seeded TPE study; imported here so optuna loads only when mipro runs."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():  # multivariate TPE is marked experimental in optuna 3.x
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # Multivariate: the best demo set depends on the instruction, so model them jointly.
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True)
    return optuna.create_study(direction="maximize", sampler=sampler)
