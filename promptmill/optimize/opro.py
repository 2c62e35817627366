"""``opro``: Optimization by PROmpting (Yang et al., 2024), the proposer as the optimizer.

Each step shows the proposer a meta-prompt: the instructions tried so far with their scores
(integers 0-100, sorted ascending so the best comes last, only the top ``history`` kept) and a
few training exemplars drawn with ``ctx.rng``, and asks for a better instruction. Several
samples are drawn at a high temperature; the new ones are scored on one fixed validation
minibatch (a prefix of ``validation_order``, so every score in the history is comparable) and
join the history. Every ``consider_every`` steps, and at the end, the best so far by minibatch
mean is offered to the acceptance gate.

How it differs from the paper:

- The history starts with the incumbent and its rule-based output-format variants (notes
  derived from the training answers), so a weak proposer (the default is a 135M model) has
  something to improve on, and progress is possible even if it never writes a useful line.
- A new instruction inherits the format note of the best prompt so far unless it already
  contains it; the proposer sees and rewrites the whole instruction text, note included.
- Candidates are scored on a validation minibatch, not the training set, and the winner must
  pass the gate's paired test on all of validation; the paper picks the best training score.
- Proposals are capped at ``proposal_tokens`` (64): only the first line of one is kept.
- Far fewer steps and samples per step (the paper: 8 samples for up to 200 steps); steps stop
  early once the budget could not also pay for scoring the best on all of validation.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..prompt import Prompt
from ..task import Example
from .bandit import validation_order
from .base import Optimizer
from .context import Candidate, OptimizationContext
from .mutations import format_variants
from .proposals import clean_instruction, opro_request

History = list[Candidate]


def one_line(text: str) -> str:
    """A prompt's whole system text on one line, as the meta-prompt shows it."""
    return " ".join(text.split())


def batch_score(cand: Candidate, examples: Sequence[Example]) -> float:
    return cand.mean([ex.id for ex in examples])


def ranked(history: History, examples: Sequence[Example]) -> History:
    """Worst first, best last; of equal scores the older one counts as better (it was first)."""
    return sorted(history, key=lambda c: (batch_score(c, examples), -c.index))


def shown_history(history: History, examples: Sequence[Example],
                  keep: int) -> list[tuple[str, int]]:
    """The top ``keep`` instructions, ascending, with integer scores from 0 to 100."""
    top = ranked(history, examples)[-keep:]
    return [(one_line(c.prompt.system_text()), round(100 * batch_score(c, examples)))
            for c in top]


def with_instruction(parent: Prompt, instruction: str) -> Prompt:
    """The parent with a new instruction; its format note stays unless the text repeats it."""
    note = parent.output_format
    if note and one_line(note) in one_line(instruction):
        note = None
    return parent.model_copy(update={"instruction": instruction, "output_format": note})


class OPRO(Optimizer):
    name = "opro"

    def __init__(self, steps: int = 8, per_step: int = 4, history: int = 20,
                 exemplars: int = 3, batch: int = 8, consider_every: int = 2,
                 temperature: float = 1.0, proposal_tokens: int = 64):
        super().__init__(steps=steps, per_step=per_step, history=history, exemplars=exemplars,
                         batch=batch, consider_every=consider_every, temperature=temperature,
                         proposal_tokens=proposal_tokens)
        self.steps, self.per_step, self.keep = steps, max(1, per_step), max(1, history)
        self.n_exemplars, self.batch = exemplars, max(1, batch)
        self.consider_every, self.temperature = max(1, consider_every), temperature
        self.proposal_tokens = proposal_tokens  # one sentence: only the first line is kept

    def optimize(self, ctx: OptimizationContext) -> None:
        examples = validation_order(ctx)[: self.batch]
        history = self._seed_history(ctx, examples)
        offered: set[int] = set()
        for step in range(1, self.steps + 1):
            if not self._affordable(ctx, self.per_step * (1 + len(examples)), examples):
                break
            history += self._step(ctx, history, examples, step)
            if step % self.consider_every == 0:
                self._offer_best(ctx, history, examples, offered)
        self._offer_best(ctx, history, examples, offered)

    def _affordable(self, ctx: OptimizationContext, calls: int,
                    examples: Sequence[Example]) -> bool:
        """Affordable while still leaving enough to score the best on all of validation."""
        return ctx.can_afford(calls + len(ctx.validation) - len(examples))

    def _seed_history(self, ctx: OptimizationContext, examples: Sequence[Example]) -> History:
        """The incumbent and its format variants: a start a weak proposer can build on."""
        base = ctx.leader
        history = [base]
        ctx.evaluate(base, examples)  # usually cached: the seed was scored on all of validation
        # The note describing the answers' shape is the more informative one: score it first.
        variants = sorted(format_variants(base.prompt, ctx.train),
                          key=lambda v: v[0] != "format:shape")
        for note, prompt in variants:
            if not self._affordable(ctx, len(examples), examples):
                break
            cand = ctx.add(prompt, parents=[base.index], origin=f"opro:{note}")
            if cand is not None:
                ctx.evaluate(cand, examples)
                history.append(cand)
        return history

    def _step(self, ctx: OptimizationContext, history: History, examples: Sequence[Example],
              step: int) -> History:
        """One OPRO step: meta-prompt, several samples, the new ones scored on the minibatch."""
        shown = shown_history(history, examples, self.keep)
        exemplars = ctx.rng.sample(ctx.train, min(self.n_exemplars, len(ctx.train)))
        texts = ctx.propose(opro_request(shown, exemplars), n=self.per_step,
                            temperature=self.temperature, max_tokens=self.proposal_tokens)
        parent = ranked(history, examples)[-1]
        fresh = self._add_instructions(ctx, parent, texts, f"opro:step={step}")
        for cand in fresh:
            ctx.evaluate(cand, examples)
        ctx.event("opro step", parent, detail={
            "step": step, "shown": len(shown), "proposed": len(texts), "new": len(fresh),
            "scores": [round(batch_score(c, examples), 4) for c in fresh],
            "texts": [t[:200] for t in texts]})
        return fresh

    def _add_instructions(self, ctx: OptimizationContext, parent: Candidate,
                          texts: Sequence[str], origin: str) -> History:
        """Cleaned proposals as candidates; garbage and repeats are skipped."""
        added = []
        for text in texts:
            instruction = clean_instruction(text)
            if not instruction:
                continue
            cand = ctx.add(with_instruction(parent.prompt, instruction), parents=[parent.index],
                           origin=origin)
            if cand is not None:
                added.append(cand)
        return added

    def _offer_best(self, ctx: OptimizationContext, history: History,
                    examples: Sequence[Example], offered: set[int]) -> None:
        """Offer the best so far to the gate, once, if it beats the incumbent on the batch."""
        best, inc = ranked(history, examples)[-1], ctx.leader
        if best is inc or best.index in offered:
            return
        if batch_score(best, examples) <= batch_score(inc, examples):
            return
        offered.add(best.index)
        ctx.consider(best)
