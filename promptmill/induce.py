"""Zero-shot instruction induction: write instructions from a few examples, rank them on data.

The proposer model sees a handful of training input/output pairs and is asked which instruction
produced them (APE's forward template), once per demo subset, so the candidates differ. Each
candidate is optionally passed through strategies from the library (answer-only, an explicit
output format, ...) and every candidate, with the seed prompt as the baseline, is scored on the
validation split. The ranking reports 95% CIs and the paired test of the best against the seed,
so a "better" instruction that is better only by noise is shown as such.

Induced prompts carry no demos: they are zero-shot by design, for a task the model was never
shown examples of at answer time.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import strategies as strategy_library
from .errors import ConfigError
from .evaluation import EvalResult, Evaluator, cached_generate
from .ledger import Ledger
from .metrics import Metric
from .models.base import GenerationParams, Model
from .optimize.proposals import clean_instruction, induction_request
from .prompt import Prompt
from .stats import PairedComparison, paired_test
from .store.db import Store
from .task import Task

PROPOSAL_TOKENS = 64
ALPHA = 0.05  # the paired test's level before the correction for several candidates


@dataclass
class InducedCandidate:
    prompt: Prompt
    origin: str
    result: EvalResult

    @property
    def mean(self) -> float:
        return self.result.score.mean


@dataclass
class InductionResult:
    ranked: list[InducedCandidate]  # best first; the seed is among them, origin "seed"
    seed: InducedCandidate
    best_vs_seed: PairedComparison
    proposals: list[str] = field(default_factory=list)  # raw proposer replies, for the record
    rejected: list[str] = field(default_factory=list)
    ledger: Ledger = field(default_factory=Ledger)

    @property
    def best(self) -> InducedCandidate:
        return self.ranked[0]

    @property
    def improved(self) -> bool:
        """Is the best candidate significantly better than the seed? Only then is it kept."""
        return self.best.origin != "seed" and self.best_vs_seed.winner == self.best.origin

    def to_dict(self) -> dict[str, Any]:
        return {"ranked": [{"origin": c.origin, "instruction": c.prompt.instruction,
                            "output_format": c.prompt.output_format, "hash": c.prompt.hash,
                            "mean": c.mean, "ci": [c.result.score.low, c.result.score.high],
                            "run_id": c.result.run_id} for c in self.ranked],
                "best_vs_seed": self.best_vs_seed.to_dict(), "improved": self.improved,
                "rejected": self.rejected,
                "ledger": self.ledger.to_dict()}


def induce(task: Task, model: Model, metric: Metric, *, seed_prompt: Prompt | None = None,
           proposer: Model | None = None, n: int = 6, shots: int = 5,
           strategies: Sequence[str] = ("answer_only", "output_format"), store: Store | None = None,
           params: GenerationParams | None = None, limit: int | None = None, seed: int = 0,
           mode: str = "chat", progress: bool = False) -> InductionResult:
    """Induce ``n`` instructions from ``shots`` training pairs each and rank them on validation.

    ``strategies`` are applied to every induced instruction as extra candidates (the bare
    instruction is always scored too).
    """
    _check(task, n, shots)
    for name in strategies:
        strategy_library.get_strategy(name)  # unknown names fail before any call
    proposer = proposer or model
    store = store or Store()
    seed_prompt = seed_prompt or Prompt(name=task.name)
    rng = random.Random(seed)
    proposals, rejected, ledger = [], [], Ledger()
    instructions: list[str] = []
    for i in range(n):
        shown = rng.sample(list(task.train), min(shots, len(task.train)))
        # the first proposal is greedy, the rest sampled so they differ; all are cached
        generation = cached_generate(store, proposer, induction_request(shown), GenerationParams(
            max_tokens=PROPOSAL_TOKENS, temperature=0.9 if i else 0.0, seed=seed + i))
        ledger.add_call(generation.input_tokens, generation.output_tokens, generation.seconds,
                        generation.cached)
        proposals.append(generation.text)
        text = clean_instruction(generation.text)
        if not text:
            rejected.append(generation.text[:200])
        elif text not in instructions:
            instructions.append(text)
    candidates = _candidates(seed_prompt, instructions, strategies, task)
    evaluator = Evaluator(model, metric, store, params=params, mode=mode, progress=progress,
                          demo_pool=task.train)
    examples = list(task.validation)[: limit or None]
    scored = []
    for origin, prompt in candidates:
        result = evaluator.evaluate(examples, prompt, task=task.name, split="validation",
                                    prompt_name=prompt.name)
        ledger.merge(result.ledger)
        scored.append(InducedCandidate(prompt, origin, result))
    ranked = sorted(scored, key=lambda c: (-c.mean, c.origin != "seed"))
    seed_cand = scored[0]
    ids = [ex.id for ex in examples]
    # the best of several candidates is compared on the data it was chosen on, so its test
    # runs at a Bonferroni level: alpha over the number of candidates that competed with the seed
    comparison = paired_test([seed_cand.result.scores[i] for i in ids],
                             [ranked[0].result.scores[i] for i in ids],
                             alpha=ALPHA / max(1, len(scored) - 1),
                             label_a="seed", label_b=ranked[0].origin)
    return InductionResult(ranked, seed_cand, comparison, proposals, rejected, ledger)


def _candidates(seed_prompt: Prompt, instructions: Sequence[str], strategies: Sequence[str],
                task: Task) -> list[tuple[str, Prompt]]:
    out = [("seed", seed_prompt)]
    seen = {seed_prompt.hash}
    for i, text in enumerate(instructions, 1):
        bare = seed_prompt.model_copy(update={"instruction": text, "demos": (),
                                              "name": f"{task.name}-induced-{i}"})
        variants = [(f"induced-{i}", bare)]
        for name in strategies:
            shaped = strategy_library.apply(bare, [name], task.train)
            variants.append((f"induced-{i}+{name}", shaped))
        for origin, prompt in variants:
            if prompt.hash not in seen:
                seen.add(prompt.hash)
                out.append((origin, prompt))
    return out


def _check(task: Task, n: int, shots: int) -> None:
    if n < 1 or shots < 1:
        raise ConfigError(f"n and shots must be 1 or more (got n={n}, shots={shots})",
                          where="induce", fix="use e.g. --n 6 --shots 5")
    if len(task.train) < shots:
        raise ConfigError(f"induction shows {shots} training examples, the train split has "
                          f"{len(task.train)}", where=f"task '{task.name}' splits.train",
                          fix=f"give train at least {shots} examples or lower --shots")
    if not task.validation:
        raise ConfigError("induction ranks candidates on the validation split, which is empty",
                          where=f"task '{task.name}' splits.validation",
                          fix="give the validation split some examples")
