"""``ape``: Automatic Prompt Engineer (Zhou et al., 2023), instruction induction plus selection.

Round 1 shows the proposer a few training pairs and asks which instruction produced them (APE's
forward template), from several different demo subsets drawn with ``ctx.rng``. Every induced
instruction replaces the incumbent's instruction (template, demos and format note are kept).
Later rounds resample around the incumbent and the last round's winner (APE's iterative Monte
Carlo search: "generate a variation of this instruction") and re-induce from a fresh subset.
The pool is scored by successive halving on nested validation minibatches; the winner is
offered to the acceptance gate.

How it differs from the paper:

- The pool also holds rule-based variants (output-format notes derived from the training
  answers) of the incumbent and of each new instruction. The default proposer is a 135M model
  whose instructions are weak; such models gain most from format notes.
- The paper scores every candidate on a fixed subset and keeps the top ones; successive halving
  spends the same idea more frugally. Rounds share the budget evenly, and each round's pool is
  trimmed, format-noted candidates first, to what its share can carry through halving and the
  winner's full-validation check. So with a small budget the bare induced instructions may
  never be scored (their format-noted versions are); with a tiny one there are no proposals.
- Proposals are capped at ``proposal_tokens`` (64): only the first line of one is kept.
- The paper's "winner" is the best mean; here it must also pass the paired test of the gate.
- No log-probability scoring: candidates are scored by the task metric only.
"""

from __future__ import annotations

from collections.abc import Sequence

from .bandit import successive_halving
from .base import Optimizer
from .context import Candidate, OptimizationContext
from .mutations import format_variants, sample_demos
from .proposals import clean_instruction, induction_request, resample_request

# Pool order when the budget cannot score everything: a format note derived from the training
# answers helps a small model most, a generic answer-only note or a learned shape (as a grammar
# or a note, "format:grammar:<shape>") next, a bare instruction last.
FORMAT_TIER = {"format:shape": 0, "format:answer-only": 1, "format:grammar": 1, "format:note": 1}
BARE_TIER = 2
CALLS_CAP = 1_000_000  # "unlimited" when the budget is in tokens or seconds only


def format_tier(note: str) -> int:
    """The pool tier of a format variant, by its origin or the family before ``:<shape>``."""
    family = note if note in FORMAT_TIER else note.rpartition(":")[0]
    return FORMAT_TIER.get(family, BARE_TIER)


def affordable_calls(ctx: OptimizationContext, cap: int = CALLS_CAP) -> int:
    """The most calls the budget allows right now (binary search on ``can_afford``)."""
    lo, hi = 0, cap
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ctx.can_afford(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def halving_cost(n: int, first_batch: int, n_val: int, keep: int = 1) -> int:
    """Worst-case calls to halve ``n`` fresh candidates and fully score the winner."""
    alive, seen, batch, cost = n, 0, min(first_batch, n_val), 0
    while True:
        cost += alive * (batch - seen)
        if alive <= keep or batch >= n_val:
            return cost + (n_val - batch)
        alive, seen, batch = max(keep, alive // 2), batch, min(n_val, batch * 2)


def shorten(texts: Sequence[str], limit: int = 200) -> list[str]:
    """Raw proposals for the trajectory log, cut so a rambling proposer cannot bloat it."""
    return [t[:limit] for t in texts]


def beats_incumbent(ctx: OptimizationContext, cand: Candidate) -> bool:
    """Worth a full validation run: better than the incumbent on the examples both have seen."""
    inc = ctx.leader
    if cand is inc:
        return False
    shared = [k for k in cand.scores if k in inc.scores]
    return bool(shared) and cand.mean(shared) > inc.mean(shared)


class APE(Optimizer):
    name = "ape"

    def __init__(self, candidates: int = 8, subsets: int = 4, demos_per_prompt: int = 5,
                 first_batch: int = 8, rounds: int = 2, temperature: float = 0.9,
                 proposal_tokens: int = 64):
        super().__init__(candidates=candidates, subsets=subsets,
                         demos_per_prompt=demos_per_prompt, first_batch=first_batch,
                         rounds=rounds, temperature=temperature, proposal_tokens=proposal_tokens)
        self.n, self.subsets, self.k = max(1, candidates), max(1, subsets), demos_per_prompt
        self.first_batch, self.rounds, self.temperature = first_batch, rounds, temperature
        # Only a proposal's first line is kept (clean_instruction): a one-sentence budget
        # saves a small proposer from rambling for seconds on text that is thrown away.
        self.proposal_tokens = proposal_tokens

    def optimize(self, ctx: OptimizationContext) -> None:
        winner = ctx.leader
        for round_no in range(1, self.rounds + 1):
            pool = self._pool(ctx, round_no, winner)
            if not pool:
                return
            ranked = successive_halving(ctx, pool, self.first_batch)
            if not ranked:
                return
            winner = ranked[0]
            if beats_incumbent(ctx, winner):
                ctx.consider(winner)

    # --- the pool of one round ------------------------------------------------------------
    def _pool(self, ctx: OptimizationContext, round_no: int,
              winner: Candidate) -> list[Candidate]:
        """New instructions and format variants, best bets first, cut to this round's share."""
        base = ctx.leader
        fresh = []
        if self._can_afford_proposals(ctx):  # else: format variants only, still a chance
            fresh = self._propose(ctx, base, winner, round_no)
        tiered = [(BARE_TIER, c) for c in fresh] + self._format_variants(ctx, [base, *fresh])
        pool = [c for _, c in sorted(tiered, key=lambda tc: (tc[0], tc[1].index))]
        kept = self._fit_budget(ctx, pool, self._round_share(ctx, round_no))
        ctx.event("ape pool", detail={"round": round_no, "proposed": len(fresh),
                                      "pool": len(pool), "scored": len(kept)})
        return kept

    def _can_afford_proposals(self, ctx: OptimizationContext) -> bool:
        """Proposals pay off only if at least two candidates can then be compared."""
        return ctx.can_afford(self.n + halving_cost(2, self.first_batch, len(ctx.validation)))

    def _round_share(self, ctx: OptimizationContext, round_no: int) -> int:
        """An even share of what is left, after setting aside the later rounds' proposals."""
        later = self.rounds - round_no
        return max(0, affordable_calls(ctx) - later * self.n) // (later + 1)

    def _fit_budget(self, ctx: OptimizationContext, pool: list[Candidate],
                    calls: int) -> list[Candidate]:
        """The longest prefix of the pool that halving (and the winner's check) can afford."""
        n, n_val = len(pool), len(ctx.validation)
        while n > 1 and halving_cost(n, self.first_batch, n_val) > calls:
            n -= 1
        return pool[:n]

    # --- proposals ------------------------------------------------------------------------
    def _propose(self, ctx: OptimizationContext, base: Candidate, winner: Candidate,
                 round_no: int) -> list[Candidate]:
        if round_no == 1:
            return self._induce(ctx, base, round_no)
        return self._resample(ctx, base, winner, round_no)

    def _induce(self, ctx: OptimizationContext, base: Candidate, round_no: int,
                subsets: int | None = None, total: int | None = None) -> list[Candidate]:
        """APE's forward generation, over several demo subsets drawn with ``ctx.rng``."""
        subsets, total = subsets or self.subsets, total or self.n
        fresh = []
        for i in range(subsets):
            share = total // subsets + (1 if i < total % subsets else 0)
            if share == 0:
                continue
            demos = sample_demos(ctx.train, max(1, min(self.k, len(ctx.train))), ctx.rng)
            texts = ctx.propose(induction_request(demos), n=share, temperature=self.temperature,
                                max_tokens=self.proposal_tokens)
            fresh += self._add_instructions(ctx, base, texts, f"ape:induced:r{round_no}")
            ctx.event("ape induction", detail={"round": round_no, "demos": [e.id for e in demos],
                                               "asked": share, "texts": shorten(texts)})
        return fresh

    def _resample(self, ctx: OptimizationContext, base: Candidate, winner: Candidate,
                  round_no: int) -> list[Candidate]:
        """APE's iterative search: variations of the best instructions, plus a re-induction."""
        parents = list(dict.fromkeys([base, winner]))
        per_parent = max(1, self.n // (2 * len(parents)))
        fresh = []
        for parent in parents:
            request = resample_request(parent.prompt.instruction)
            texts = ctx.propose(request, n=per_parent, temperature=self.temperature,
                                max_tokens=self.proposal_tokens)
            fresh += self._add_instructions(ctx, parent, texts, f"ape:resampled:r{round_no}")
            ctx.event("ape resampling", parent, detail={"round": round_no, "texts": shorten(texts)})
        reinduce = max(1, self.n - per_parent * len(parents))
        return fresh + self._induce(ctx, base, round_no, subsets=1, total=reinduce)

    def _add_instructions(self, ctx: OptimizationContext, base: Candidate, texts: Sequence[str],
                          origin: str) -> list[Candidate]:
        """The cleaned texts as the base prompt's instruction; garbage and repeats are skipped."""
        added = []
        for text in texts:
            instruction = clean_instruction(text)
            if not instruction:
                continue
            prompt = base.prompt.model_copy(update={"instruction": instruction})
            cand = ctx.add(prompt, parents=[base.index], origin=origin)
            if cand is not None:
                added.append(cand)
        return added

    def _format_variants(self, ctx: OptimizationContext,
                         parents: Sequence[Candidate]) -> list[tuple[int, Candidate]]:
        """Each parent with each output-format note derived from the training answers."""
        tiered = []
        for parent in parents:
            for note, prompt in format_variants(parent.prompt, ctx.train):
                origin = f"ape:{note}"
                if parent.origin.startswith("ape:"):  # keep the lineage readable
                    origin = f"{parent.origin}+{note}"
                cand = ctx.add(prompt, parents=[parent.index], origin=origin)
                if cand is not None:
                    tiered.append((format_tier(note), cand))
        return tiered
