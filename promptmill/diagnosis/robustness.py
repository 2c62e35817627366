"""Robustness: does the score survive changes that should not matter?

For each perturbation kind, a few seeded variants are scored on the same sample of examples as
the unperturbed prompt. Reported per kind: the mean score change with a paired bootstrap CI,
the spread of the variants' means, and the flip rate (examples whose pass/fail verdict changed)
with a Wilson CI. Calls go through the store's cache, so a rerun costs nothing.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..evaluation import Evaluator, cached_generate
from ..models.base import GenerationParams, Model
from ..prompt import Prompt
from ..stats import mean_ci
from ..store.db import Store
from ..task import Example
from . import perturb
from .rates import rate_ci

KINDS = ("paraphrase", "demo_order", "whitespace", "casing", "typos", "option_order")
PARAPHRASE_REQUEST = ("Rewrite the following instruction in different words. Keep its meaning "
                      "and every requirement. Reply with the rewritten instruction only.\n\n"
                      "Instruction: {instruction}")


@dataclass
class KindResult:
    kind: str
    applicable: bool
    variants: int = 0
    n: int = 0
    base_mean: float = float("nan")
    variant_means: list[float] = field(default_factory=list)
    delta: float = float("nan")
    delta_low: float = float("nan")
    delta_high: float = float("nan")
    spread: float = float("nan")
    flip_rate: float = float("nan")
    flip_low: float = float("nan")
    flip_high: float = float("nan")
    note: str = ""
    samples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def paraphrases(store: Store, model: Model, instruction: str, count: int, seed: int
                ) -> list[str]:
    """Instruction paraphrases written by a model, cleaned and distinct from the original."""
    out: list[str] = []
    for i in range(count * 2):
        if len(out) == count:
            break
        request = [{"role": "user", "content": PARAPHRASE_REQUEST.format(
            instruction=instruction)}]
        params = GenerationParams(max_tokens=96, temperature=0.8, seed=seed + i)
        text = _clean(cached_generate(store, model, request, params).text)
        if text and text != instruction and text not in out:
            out.append(text)
    return out


def _clean(text: str) -> str:
    text = text.strip().split("\n\n")[0].strip()
    text = re.sub(r"^(rewritten instruction|instruction)\s*:\s*", "", text, flags=re.I)
    return text.strip().strip('"').strip()


class RobustnessCheck:
    def __init__(self, evaluator: Evaluator, prompt: Prompt, examples: list[Example], *,
                 store: Store, proposer: Model | None = None, contextualizer=None,
                 variants: int = 2, seed: int = 0, threshold: float = 1.0,
                 on_step: Callable[[str], None] | None = None):
        self.evaluator, self.prompt, self.examples = evaluator, prompt, examples
        self.store, self.proposer = store, proposer or evaluator.model
        self.contextualizer, self.variants, self.seed = contextualizer, variants, seed
        self.threshold, self.on_step = threshold, on_step or (lambda _: None)

    def _scores(self, prompt: Prompt, examples: list[Example]) -> np.ndarray:
        scored = self.evaluator.score_examples(prompt, examples,
                                               contextualizer=self.contextualizer)
        by_id = {s.example.id: s.score or 0.0 for s in scored}  # cache hits come back first
        return np.array([by_id[ex.id] for ex in examples])

    def _variants(self, kind: str) -> list[tuple[Prompt, list[Example]]] | str:
        rng = random.Random(f"{self.seed}:{kind}")
        if kind == "paraphrase":
            if not self.prompt.instruction.strip():
                return "the prompt has no instruction"
            texts = paraphrases(self.store, self.proposer, self.prompt.instruction,
                                self.variants, self.seed)
            return [(self.prompt.model_copy(update={"instruction": t}), self.examples)
                    for t in texts] or "the model wrote no usable paraphrase"
        if kind == "demo_order":
            if len(self.prompt.demos) < 2:
                return "the prompt has fewer than 2 fixed demos"
            return [(perturb.shuffle_demos(self.prompt, rng) or self.prompt, self.examples)
                    for _ in range(self.variants)]
        if kind == "option_order":
            if not any(perturb.options_in(ex) for ex in self.examples):
                return "no lettered options (A) ... B) ...) in the inputs"
            return [(self.prompt, [perturb.shuffle_options(ex, rng) or ex
                                   for ex in self.examples]) for _ in range(self.variants)]
        noise = perturb.INPUT_NOISE[kind]
        return [(self.prompt, [noise(ex, rng) for ex in self.examples])
                for _ in range(self.variants)]

    def run(self, kinds: tuple[str, ...] = KINDS) -> list[KindResult]:
        self.on_step("base")
        base = self._scores(self.prompt, self.examples)
        return [self._kind(kind, base) for kind in kinds]

    def _kind(self, kind: str, base: np.ndarray) -> KindResult:
        variants = self._variants(kind)
        if isinstance(variants, str):
            return KindResult(kind, applicable=False, note=variants)
        means, deltas, flips, samples = [], [], 0, []
        passed = base >= self.threshold
        for prompt, examples in variants:
            self.on_step(kind)
            scores = self._scores(prompt, examples)
            means.append(float(scores.mean()))
            deltas.append(scores - base)
            changed = (scores >= self.threshold) != passed
            flips += int(changed.sum())
            for i in np.flatnonzero(changed)[:2]:
                samples.append({"example_id": examples[i].id, "input": _text(examples[i]),
                                "before": float(base[i]), "after": float(scores[i]),
                                "instruction": prompt.instruction
                                if kind == "paraphrase" else None})
        per_example = np.mean(deltas, axis=0)
        delta = mean_ci(per_example, resamples=1000, seed=self.seed)
        flip = rate_ci(flips, len(base) * len(variants))
        return KindResult(kind, True, variants=len(variants), n=len(base),
                          base_mean=float(base.mean()), variant_means=means,
                          delta=delta.mean, delta_low=delta.low, delta_high=delta.high,
                          spread=float(np.std(means)), flip_rate=flip.mean,
                          flip_low=flip.low, flip_high=flip.high, samples=samples[:4])


def _text(example: Example) -> str:
    return "\n".join(str(v) for v in example.inputs.values())
