"""What a search method works with: candidates, cached scoring, proposals, the gate, the budget.

Methods never call models or the store directly. Going through the context is what makes every
search budgeted, cached, recorded step by step, and replayable.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..context.base import Contextualizer
from ..distributed import Executor
from ..errors import ConfigError, PromptmillError
from ..evaluation import Evaluator, ScoredExample, cached_generate
from ..metrics import Metric
from ..models.base import Generation, GenerationParams, Messages, Model
from ..prompt import Prompt, canonical_json
from ..store.db import Store
from ..task import Example
from .budget import Budget, BudgetExhausted, Spend
from .gate import AcceptanceGate, Verdict

MAX_INSTRUCTION_CHARS = 1500


@dataclass(eq=False)  # candidates are compared by identity, and can be dict keys
class Candidate:
    """A prompt under consideration, with its scores on the validation examples seen so far."""

    index: int
    prompt: Prompt
    parents: tuple[int, ...] = ()
    origin: str = "seed"
    scores: dict[str, float] = field(default_factory=dict)  # validation examples only
    outcomes: dict[str, ScoredExample] = field(default_factory=dict, repr=False)  # any split
    accepted: bool = False

    def mean(self, ids: Sequence[str] | None = None) -> float:
        keys = list(ids) if ids is not None else list(self.scores)
        values = [self.scores[k] for k in keys if k in self.scores]
        return sum(values) / len(values) if values else 0.0

    def failures(self, limit: int | None = None) -> list[ScoredExample]:
        bad = [o for o in self.outcomes.values() if o.score < 1.0]
        return bad[:limit] if limit else bad


EventHook = Callable[[dict[str, Any]], None]


class OptimizationContext:
    """The shared machinery behind every search method."""

    def __init__(self, *, train: list[Example], validation: list[Example], model: Model,
                 metric: Metric, store: Store, budget: Budget, params: GenerationParams,
                 proposer: Model | None = None, gate: AcceptanceGate | None = None,
                 seed: int = 0, mode: str = "chat", run_id: int | None = None,
                 on_event: EventHook | None = None,
                 contextualizer: Contextualizer | None = None,
                 executor: Executor | None = None):
        self.train, self.validation = train, validation
        self.model, self.proposer = model, proposer or model
        self.metric, self.store, self.params = metric, store, params
        self.gate = gate or AcceptanceGate()
        self.seed = seed
        self.rng = random.Random(seed)
        self.spend = Spend(budget)
        self.run_id = run_id
        self.on_event = on_event
        self.contextualizer = contextualizer
        self.evaluator = Evaluator(model, metric, store, params=params, progress=False,
                                   mode=mode, demo_pool=train, executor=executor)
        self.candidates: list[Candidate] = []
        self.incumbent: Candidate | None = None
        self._hashes: dict[str, int] = {}
        self._val_ids = {ex.id for ex in validation}
        self._step = 0
        self._proposals = 0
        self.max_instruction_chars = MAX_INSTRUCTION_CHARS  # raised by a longer seed
        self._validation_order: list[Example] | None = None  # drawn on first use

    # --- candidates -----------------------------------------------------------------------
    def add_seed(self, prompt: Prompt) -> Candidate:
        """The user's own prompt, the first candidate: kept whatever its length.

        The length limit guards against runaway proposals from the proposer model, not against
        the prompt the user chose; proposals may then be as long as the seed. A seed that does
        not render is the user's error, reported in one line instead of being skipped.
        """
        self.max_instruction_chars = max(MAX_INSTRUCTION_CHARS, len(prompt.instruction))
        self._check_renders(prompt)
        return self._register(prompt, (), "seed")

    def add(self, prompt: Prompt, parents: Sequence[int] = (),
            origin: str = "") -> Candidate | None:
        """Register a candidate; a duplicate or a garbage proposal is rejected and logged."""
        problem = self._problem_with(prompt)
        if problem:
            self.event("rejected", detail={"origin": origin, "reason": problem,
                                           "instruction": prompt.instruction[:200]})
            return None
        if prompt.hash in self._hashes:
            return None  # the same prompt again: nothing new to learn
        return self._register(prompt, parents, origin or "seed")

    def _register(self, prompt: Prompt, parents: Sequence[int], origin: str) -> Candidate:
        cand = Candidate(len(self.candidates), prompt, tuple(parents), origin)
        self.candidates.append(cand)
        self._hashes[prompt.hash] = cand.index
        self._save(cand)
        return cand

    def _problem_with(self, prompt: Prompt) -> str | None:
        if len(prompt.instruction) > self.max_instruction_chars:
            return (f"instruction too long ({len(prompt.instruction)} chars, the limit is "
                    f"{self.max_instruction_chars})")
        if self.candidates and not prompt.instruction.strip() and not prompt.demos:
            return "empty instruction and no demos"
        try:
            self.evaluator.render(prompt, (self.validation or self.train)[0],
                                  self.contextualizer)
        except Exception as exc:  # any render failure disqualifies a proposal
            return f"does not render: {exc}"
        return None

    def _check_renders(self, prompt: Prompt) -> None:
        try:
            self.evaluator.render(prompt, (self.validation or self.train)[0],
                                  self.contextualizer)
        except PromptmillError:
            raise  # already names the prompt field and the fix
        except Exception as exc:  # one line for the user, whatever went wrong
            detail = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise ConfigError(f"the seed prompt does not render ({detail})",
                              where=f"prompt {prompt.name or prompt.hash[:8]}",
                              fix="fix the prompt's template or demos") from None

    # --- scoring --------------------------------------------------------------------------
    def evaluate(self, cand: Candidate, examples: Sequence[Example]) -> list[ScoredExample]:
        """Score a candidate on examples it has not been scored on; cached, and budgeted."""
        todo = [ex for ex in examples if ex.id not in cand.outcomes]
        if todo:
            self.spend.require(len(todo), f"scoring candidate {cand.index}")
            for scored in self.evaluator.score_examples(cand.prompt, todo,
                                                        contextualizer=self.contextualizer):
                self._charge(scored.generation)
                cand.outcomes[scored.example.id] = scored
                if scored.example.id in self._val_ids:  # scores (and the gate) are validation only
                    cand.scores[scored.example.id] = scored.score
            self._save(cand)
        return [cand.outcomes[ex.id] for ex in examples]

    def consider(self, cand: Candidate) -> bool:
        """Score on all validation examples; replace the incumbent only if the gate agrees."""
        self.evaluate(cand, self.validation)
        if self.incumbent is None:
            self._crown(cand, None)
            return True
        if cand is self.incumbent:
            return False
        verdict = self.gate.judge(self.incumbent.scores, cand.scores)
        if verdict.accepted:
            self._crown(cand, verdict)
        else:
            self.event("kept incumbent", cand, detail={"reason": verdict.reason,
                                                       "challenger": round(cand.mean(), 4)})
        return verdict.accepted

    def _crown(self, cand: Candidate, verdict: Verdict | None) -> None:
        cand.accepted = True
        self.incumbent = cand
        self._save(cand)
        self.event("new incumbent", cand,
                   detail={"reason": verdict.reason if verdict else "seed"})

    @property
    def leader(self) -> Candidate:
        """The incumbent a search method starts from and refines.

        ``optimize`` considers the seed before it hands the context to a method, so there is
        always one by then; ``incumbent`` stays Optional for the machinery that runs earlier.
        """
        if self.incumbent is None:
            raise ConfigError("a search method was started before the seed was considered",
                              where="OptimizationContext.leader",
                              fix="call ctx.consider(ctx.add_seed(prompt)) first")
        return self.incumbent

    def validation_order(self) -> list[Example]:
        """One shuffled order of the validation split, so minibatches are nested prefixes.

        Drawn from ``rng`` on first use, not here: a method that never asks for it leaves
        the random stream (and so its results) as it was.
        """
        if self._validation_order is None:
            order = list(self.validation)
            self.rng.shuffle(order)
            self._validation_order = order
        return self._validation_order

    def can_afford(self, calls: int) -> bool:
        return self.spend.can_afford(calls)

    # --- proposals ------------------------------------------------------------------------
    def propose(self, request: Messages | str, *, n: int = 1, temperature: float = 0.8,
                max_tokens: int = 160) -> list[str]:
        """Ask the proposer model for ``n`` texts; each is cached and charged to the budget."""
        texts = []
        for _ in range(n):
            params = GenerationParams(max_tokens=max_tokens, temperature=temperature,
                                      seed=self.seed * 1000 + self._proposals)
            self._proposals += 1
            texts.append(self._proposal(request, params))
        return texts

    def _proposal(self, request: Messages | str, params: GenerationParams) -> str:
        gen = cached_generate(self.store, self.proposer, request, params,
                              before_call=lambda: self.spend.require(1, "a proposal"))
        self._charge(gen)
        return gen.text

    def _charge(self, gen: Generation | None) -> None:
        """Input and output tokens stay apart; a call that failed (no generation) has none."""
        if gen is None:
            self.spend.charge(0, 0, cached=False)
        else:
            self.spend.charge(gen.input_tokens, gen.output_tokens, cached=gen.cached,
                              seconds=gen.seconds)

    # --- record ---------------------------------------------------------------------------
    def event(self, kind: str, cand: Candidate | None = None,
              detail: dict[str, Any] | None = None) -> None:
        inc = self.incumbent
        row = {"step": self._step, "event": kind,
               "candidate_idx": cand.index if cand else None,
               "incumbent_idx": inc.index if inc else None,
               "incumbent_score": round(inc.mean(), 6) if inc else None,
               "calls": self.spend.calls, "tokens": self.spend.tokens,
               "seconds": round(self.spend.seconds, 3),
               "detail": json.dumps(detail, default=str) if detail else None}
        self._step += 1
        if self.run_id is not None:
            self.store.add_step(self.run_id, row)
        if self.on_event:
            self.on_event({**row, "detail": detail or {}})

    def _save(self, cand: Candidate) -> None:
        if self.run_id is None:
            return
        self.store.save_candidate(self.run_id, {
            "idx": cand.index, "hash": cand.prompt.hash,
            "body": canonical_json(cand.prompt.content()),
            "parents": json.dumps(list(cand.parents)), "origin": cand.origin[:200],
            "val_mean": cand.mean() if cand.scores else None, "val_n": len(cand.scores),
            "accepted": cand.accepted})


__all__ = ["BudgetExhausted", "Candidate", "OptimizationContext"]
