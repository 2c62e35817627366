"""``protegi``: edit prompts along "textual gradients" computed from their errors, in a beam.

After Pryzant et al., "Automatic Prompt Optimization with "Gradient Descent" and Beam Search"
(EMNLP 2023). Each round, every prompt in the beam is run on a validation minibatch; a few of
its failures (input, the model's output, the expected answer and the metric's feedback) go to
the proposer, which says what is wrong with the prompt (the gradient) and then rewrites the
instruction to fix it (the edit). Successors are chosen by successive halving, the beam keeps
the best ``beam_width``, and the best of the beam is offered to the acceptance gate each round.

How this differs from the paper:
- One gradient per prompt and round (the paper samples several), and no Monte-Carlo paraphrase
  step: with a budget of a few hundred calls, scoring candidates matters more than breeding them.
- Rule-based edits are added next to the proposer's: the default proposer is a 135M model that
  writes weak instructions. When failures show the right answer buried in extra text, or
  overlong outputs, the prompt gets an answer-only / answer-shape note; when they show wrong
  answers (or a format note that did not help), it gets worked examples from train.
- The failures come from validation minibatches (the paper uses training minibatches), since
  validation is what successive halving and the gate score anyway; demos come from train only,
  so no validation answer ever enters a prompt.
- Successive halving replaces the paper's UCB / successive-rejects bandits (same spirit).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from random import Random

from ..evaluation import ScoredExample
from ..metrics.base import normalize
from ..prompt import Prompt
from ..task import Example
from .bandit import successive_halving, validation_order
from .base import Optimizer
from .context import Candidate, OptimizationContext
from .mutations import format_variants, sample_demos, with_demos
from .proposals import clean_gradient, clean_rewrite, edit_request, gradient_request

DEMO_COUNT = 4
GRADIENT_TOKENS = 120
EDIT_TOKENS = 80

EXTRA_TEXT, TOO_LONG, BAD_FORMAT, WRONG = "extra text", "too long", "bad format", "wrong answer"
FORMAT_TROUBLE = (EXTRA_TEXT, TOO_LONG, BAD_FORMAT)
CONTENT_TROUBLE = (TOO_LONG, WRONG)  # the right answer is nowhere in the output
# Words in a metric's feedback that point at the shape of the output rather than its content;
# quoted text (the output itself, the reference) is left out so its words cannot trigger this.
_FORMAT_FEEDBACK = re.compile(r"\b(format|parse|json|schema|pattern|no number)\b", re.IGNORECASE)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


# --- rule-based edits, shared with ``evolve`` ---------------------------------------------------
def diagnose(failure: ScoredExample) -> str:
    """What a failed output shows: the answer in extra text, a bad format, too long, or wrong.

    TOO_LONG means long and without the answer: both a format and a content problem.
    """
    output = failure.output or ""
    accepted = failure.example.accepted
    if any(_contains_words(normalize(output), normalize(a)) for a in accepted):
        return EXTRA_TEXT
    if failure.feedback and _FORMAT_FEEDBACK.search(_QUOTED.sub("", failure.feedback)):
        return BAD_FORMAT
    longest = max((len(a.split()) for a in accepted), default=1)
    if len(output.split()) > 2 * longest + 2:
        return TOO_LONG
    return WRONG


def _contains_words(text: str, phrase: str) -> bool:
    return bool(phrase) and f" {phrase} " in f" {text} "


def failure_edits(prompt: Prompt, failures: Sequence[ScoredExample], train: Sequence[Example],
                  rng: Random) -> list[tuple[str, Prompt]]:
    """Edits that need no proposer, chosen by what the failures show.

    Format trouble gets the answer-only and answer-shape notes. Missing answers get worked
    examples; so does format trouble that persists under a note, because a small model copies
    the shape of demos more reliably than it follows a note.
    """
    kinds = Counter(diagnose(f) for f in failures if f.error is None)
    format_trouble = sum(kinds[k] for k in FORMAT_TROUBLE)
    content_trouble = sum(kinds[k] for k in CONTENT_TROUBLE)
    edits = list(format_variants(prompt, train)) if format_trouble else []
    if train and (content_trouble or (format_trouble and prompt.output_format)):
        demos = sample_demos(train, min(DEMO_COUNT, len(train)), rng)
        edits.append((f"demos:k={len(demos)}", with_demos(prompt, demos)))
    return edits


# --- the method ---------------------------------------------------------------------------------
class ProTeGi(Optimizer):
    name = "protegi"

    def __init__(self, beam_width: int = 3, rounds: int = 4, errors_per_gradient: int = 4,
                 edits_per_gradient: int = 2, first_batch: int = 8):
        super().__init__(beam_width=beam_width, rounds=rounds,
                         errors_per_gradient=errors_per_gradient,
                         edits_per_gradient=edits_per_gradient, first_batch=first_batch)
        self.beam_width, self.rounds = beam_width, rounds
        self.errors, self.edits, self.first_batch = (errors_per_gradient, edits_per_gradient,
                                                     first_batch)

    def optimize(self, ctx: OptimizationContext) -> None:
        beam, offered = [ctx.leader], set[int]()
        for round_no in range(self.rounds):
            children = [c for parent in beam for c in self._expand(ctx, parent)]
            children = self._affordable(ctx, beam, children)
            if not children:
                ctx.event("protegi: no new candidates", detail={"round": round_no})
                return
            ranked = successive_halving(ctx, beam + children, self.first_batch,
                                        keep=self.beam_width)
            beam = ranked[: self.beam_width]
            ctx.event("protegi: beam", beam[0], detail={"round": round_no,
                                                        "beam": [c.index for c in beam]})
            self._offer(ctx, beam[0], offered)

    def _offer(self, ctx: OptimizationContext, best: Candidate, offered: set[int]) -> None:
        # A candidate the gate already judged gets the same verdict again: do not ask twice.
        if best is not ctx.incumbent and best.index not in offered:
            offered.add(best.index)
            ctx.consider(best)

    def _expand(self, ctx: OptimizationContext, parent: Candidate) -> list[Candidate]:
        """The successors of one beam prompt: gradient edits plus rule-based edits."""
        if not ctx.can_afford(self._expansion_cost(ctx)):
            return []
        failures = self._sample_failures(ctx, parent)
        if not failures:
            ctx.event("protegi: no errors to learn from", parent)
            return []
        # Rule-based edits first: when the budget cannot score every successor, these are the
        # ones a small task model most reliably responds to.
        edits = failure_edits(parent.prompt, failures, ctx.train, ctx.rng)
        edits += self._gradient_edits(ctx, parent, failures)
        added = (ctx.add(prompt, parents=[parent.index], origin=f"protegi:{origin}")
                 for origin, prompt in edits)
        return [c for c in added if c is not None]

    def _expansion_cost(self, ctx: OptimizationContext) -> int:
        # The gradient, its edits, one successor on the first minibatch, and offering it.
        return 1 + self.edits + self.first_batch + self._reserve(ctx)

    def _reserve(self, ctx: OptimizationContext) -> int:
        """Calls kept back to score a minibatch winner on all of validation for the gate."""
        return max(0, len(ctx.validation) - self.first_batch)

    def _affordable(self, ctx: OptimizationContext, beam: list[Candidate],
                    children: list[Candidate]) -> list[Candidate]:
        """The children the first minibatch can score, leaving enough to offer the best.

        Successive halving ranks unscored candidates as if they scored zero; dropping them
        here keeps such blind guesses out of the beam.
        """
        batch = validation_order(ctx)[: self.first_batch]
        cost = self._reserve(ctx) + sum(1 for c in beam for ex in batch
                                        if ex.id not in c.outcomes)
        kept: list[Candidate] = []
        for child in children:
            cost += len(batch)
            if not ctx.can_afford(cost):
                ctx.event("protegi: budget limits the successors",
                          detail={"scored": len(kept), "proposed": len(children)})
                break
            kept.append(child)
        return kept

    def _sample_failures(self, ctx: OptimizationContext,
                         parent: Candidate) -> list[ScoredExample]:
        """Failures on the minibatch, plus any already known on validation (they cost nothing)."""
        ctx.evaluate(parent, validation_order(ctx)[: self.first_batch])
        known = (parent.outcomes.get(ex.id) for ex in validation_order(ctx))
        failed = [o for o in known if o is not None and o.score < 1.0 and o.error is None]
        return ctx.rng.sample(failed, min(self.errors, len(failed)))

    def _gradient_edits(self, ctx: OptimizationContext, parent: Candidate,
                        failures: list[ScoredExample]) -> list[tuple[str, Prompt]]:
        """Ask what is wrong with the instruction, then ask for instructions that fix it."""
        instruction = parent.prompt.instruction
        reply = ctx.propose(gradient_request(instruction, failures), max_tokens=GRADIENT_TOKENS)
        gradient = clean_gradient(reply[0])
        if not gradient:
            ctx.event("protegi: empty gradient", parent)
            return []
        ctx.event("protegi: gradient", parent, detail={"gradient": gradient})
        texts = ctx.propose(edit_request(instruction, failures, gradient), n=self.edits,
                            max_tokens=EDIT_TOKENS)
        cleaned = [clean_rewrite(t) for t in texts]
        return [("edit", parent.prompt.model_copy(update={"instruction": text}))
                for text in cleaned if text]
