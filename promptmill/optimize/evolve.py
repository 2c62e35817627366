"""``evolve``: reflective evolution over a Pareto front of prompts, GEPA-style.

After Agrawal et al., "GEPA: Reflective Prompt Evolution Can Outperform Reinforcement
Learning" (2025). A population of prompts is kept with a Pareto front over validation examples:
a prompt is on the front when, on at least one example it was scored on, no other prompt
scored better (ties allowed). Keeping every such specialist, rather than only the best mean,
keeps strategies alive that solve different parts of the task.

Each iteration picks a parent from the front, weighted by how many examples it wins, runs it on
a random validation minibatch and mutates it: reflectively (the proposer reads the instruction,
the failing inputs, the outputs and the metric's feedback, and writes an improved instruction)
and by rule (format notes or worked examples, by what the failures show; see
``protegi.failure_edits``). Every ``merge_every``-th iteration instead merges a front member with
the front member of another line of descent that best complements it (wins most of what the
first does not); merging a prompt with its own ancestor would give nothing new.
Children are scored on the same minibatch and join the population when they beat their parent
there. Now and then the best by validation mean is offered to the acceptance gate.

How this differs from the paper:
- Minibatches come from validation, not train: validation is what the front and the gate use,
  and worked examples come from train, so a child is never scored on its own demos.
- Examples nobody solved count as nobody's win (see ``pareto_front``).
- A child is not scored on the whole Pareto set when it joins (too costly at a few hundred
  calls): the front is computed over the examples each prompt was scored on, and only the
  candidate offered to the gate is scored on all of validation.
- Rule-based mutations run next to reflection, because the default proposer is a 135M model.
- The merge is over this system's components (instruction, demos, output format): each comes
  from whichever parent changed it since their nearest common ancestor (the better parent's when
  both did), as in GEPA's system-aware merge, with the modules being prompt fields.
- The population is capped (``population_limit``): the members winning the fewest examples go
  first, but never the incumbent.
- An iteration starts only when the budget also covers offering a finding to the gate, so the
  search stops early rather than find something it cannot verify.
"""

from __future__ import annotations

from collections.abc import Sequence
from random import Random

from ..evaluation import ScoredExample
from ..prompt import Prompt
from ..task import Example
from .base import Optimizer
from .context import Candidate, OptimizationContext
from .proposals import clean_rewrite, reflection_request
from .protegi import failure_edits

OFFER_EVERY = 3  # iterations between offers to the gate: each offer scores all of validation
REFLECTION_TOKENS = 80
MAX_CHILDREN = 6  # one reflection and up to five rule-based edits (protegi.failure_edits)
MERGED_FIELDS = ("instruction", "demos", "output_format")


# --- the Pareto front ---------------------------------------------------------------------------
def examples_won(population: Sequence[Candidate]) -> dict[Candidate, set[str]]:
    """For each member, the scored examples it is best on (ties allowed).

    An example nobody scores above 0 on is nobody's win: otherwise the prompt scored on the most
    examples (the incumbent) would "win" every example only it has run, and crowd out the rest.
    """
    best: dict[str, float] = {}
    for cand in population:
        for key, score in cand.scores.items():
            best[key] = max(best.get(key, score), score)
    return {c: {k for k, s in c.scores.items() if s >= best[k] > 0} for c in population}


def pareto_front(population: Sequence[Candidate]) -> dict[Candidate, int]:
    """Members that are best on at least one scored example, with how many they win."""
    return {c: len(won) for c, won in examples_won(population).items() if won}


def pick_weighted(front: dict[Candidate, int], rng: Random) -> Candidate | None:
    """A front member, sampled in proportion to the examples it wins."""
    if not front:
        return None
    members = list(front)
    return rng.choices(members, weights=[front[c] for c in members])[0]


# --- the system-aware merge ---------------------------------------------------------------------
def ancestors(ctx: OptimizationContext, cand: Candidate) -> dict[int, Candidate]:
    """A candidate and everything it descends from, by index."""
    seen, todo = {}, [cand]
    while todo:
        current = todo.pop()
        if current.index not in seen:
            seen[current.index] = current
            todo.extend(ctx.candidates[i] for i in current.parents)
    return seen


def merge_prompts(better: Prompt, other: Prompt, ancestor: Prompt | None) -> Prompt:
    """Each field from the parent that changed it since the ancestor; ``better``'s if both did.

    Without a common ancestor, the instruction comes from ``better`` and the rest from ``other``.
    """
    fields = {}
    for name in MERGED_FIELDS:
        mine, theirs = getattr(better, name), getattr(other, name)
        if ancestor is None:
            fields[name] = mine if name == "instruction" else theirs
        else:
            fields[name] = theirs if mine == getattr(ancestor, name) else mine
    return better.model_copy(update=fields)


# --- the method ---------------------------------------------------------------------------------
class Evolve(Optimizer):
    name = "evolve"

    def __init__(self, iterations: int = 12, minibatch: int = 4, merge_every: int = 4,
                 population_limit: int = 12):
        super().__init__(iterations=iterations, minibatch=minibatch, merge_every=merge_every,
                         population_limit=population_limit)
        self.iterations, self.minibatch = iterations, minibatch
        self.merge_every, self.population_limit = merge_every, population_limit

    def optimize(self, ctx: OptimizationContext) -> None:
        population, offered = [ctx.leader], set[int]()
        for iteration in range(1, self.iterations + 1):
            if not ctx.can_afford(self._iteration_cost() + self._reserve(ctx, population,
                                                                         offered)):
                ctx.event("evolve: budget nearly spent", detail={"iteration": iteration})
                break
            for child in self._step(ctx, population, iteration):
                self._admit(ctx, population, child)
            if iteration % OFFER_EVERY == 0:
                self._offer_best(ctx, population, offered)
        self._offer_best(ctx, population, offered)

    def _step(self, ctx: OptimizationContext, population: list[Candidate],
              iteration: int) -> list[Candidate]:
        """One iteration's promising children: a merge when due and possible, else mutations."""
        # Before anything scores above 0 the front is empty: improve the incumbent.
        front = pareto_front(population) or {ctx.leader: 1}
        if self.merge_every and iteration % self.merge_every == 0:
            merged = self._merge(ctx, population)
            if merged is not None:
                return merged
        parent = pick_weighted(front, ctx.rng)
        return self._mutate(ctx, parent) if parent is not None else []

    def _iteration_cost(self) -> int:
        # The parent's minibatch, every child's, and the reflection.
        return self.minibatch * (1 + MAX_CHILDREN) + 1

    def _reserve(self, ctx: OptimizationContext, population: list[Candidate],
                 offered: set[int]) -> int:
        """Calls kept back to offer the best to the gate, so a finding is never stranded.

        Enough for the best so far, or for a child of this iteration (scored on a minibatch).
        """
        best = self._best(ctx, population, offered)
        pending = len(ctx.validation) - len(best.scores) if best is not None else 0
        return max(pending, len(ctx.validation) - self.minibatch)

    # --- mutation ---------------------------------------------------------------------------
    def _minibatch(self, ctx: OptimizationContext) -> list[Example]:
        return ctx.rng.sample(list(ctx.validation), min(self.minibatch, len(ctx.validation)))

    def _mutate(self, ctx: OptimizationContext, parent: Candidate) -> list[Candidate]:
        """Reflect on the parent's minibatch failures; keep children that beat it there."""
        batch = self._minibatch(ctx)
        outcomes = ctx.evaluate(parent, batch)
        failures = [o for o in outcomes if o.score < 1.0 and o.error is None]
        if not failures:
            ctx.event("evolve: parent solved its minibatch", parent)
            return []
        edits = self._reflect(ctx, parent, failures)
        edits += failure_edits(parent.prompt, failures, ctx.train, ctx.rng)
        children = [c for origin, prompt in edits
                    if (c := ctx.add(prompt, parents=[parent.index],
                                     origin=f"evolve:{origin}")) is not None]
        return self._promising(ctx, children, [parent], batch, strict=True)

    def _reflect(self, ctx: OptimizationContext, parent: Candidate,
                 failures: list[ScoredExample]) -> list[tuple[str, Prompt]]:
        request = reflection_request(parent.prompt.instruction, failures)
        text = clean_rewrite(ctx.propose(request, max_tokens=REFLECTION_TOKENS)[0])
        if not text:
            return []
        return [("reflect", parent.prompt.model_copy(update={"instruction": text}))]

    def _promising(self, ctx: OptimizationContext, children: list[Candidate],
                   parents: list[Candidate], batch: list[Example],
                   strict: bool) -> list[Candidate]:
        """Children scoring above their parents on the minibatch (at least as well, for merges).

        GEPA's rule: a mutation must improve on its parent; a merge must not lose to either.
        """
        ids = [ex.id for ex in batch]
        bar = max(p.mean(ids) for p in parents)
        kept = []
        for child in children:
            ctx.evaluate(child, batch)
            if child.mean(ids) > bar or (not strict and child.mean(ids) >= bar):
                kept.append(child)
        return kept

    # --- merge ------------------------------------------------------------------------------
    def _merge(self, ctx: OptimizationContext,
               population: list[Candidate]) -> list[Candidate] | None:
        """Merge a front member with a complementary one; None when no pair gives anything new.

        The mate is the member of another line that wins most of what the first does not win.
        """
        won = examples_won(population)
        front = {c: len(w) for c, w in won.items() if w}
        first = pick_weighted(front, ctx.rng)
        if first is None:
            return None
        mates = sorted(self._mates(ctx, first, front),
                       key=lambda c: (-len(won[c] - won[first]), -front[c], c.index))
        for mate in mates:
            child = self._merge_pair(ctx, first, mate)
            if child is not None:
                return self._score_merge(ctx, child)
        return None

    def _merge_pair(self, ctx: OptimizationContext, a: Candidate,
                    b: Candidate) -> Candidate | None:
        better, other = sorted((a, b), key=lambda c: (-c.mean(), c.index))
        ancestor = self._common_ancestor(ctx, better, other)
        merged = merge_prompts(better.prompt, other.prompt, ancestor.prompt if ancestor else None)
        child = ctx.add(merged, parents=[better.index, other.index], origin="evolve:merge")
        if child is not None:
            ctx.event("evolve: merge", child, detail={
                "parents": [better.index, other.index],
                "ancestor": ancestor.index if ancestor else None})
        return child

    def _score_merge(self, ctx: OptimizationContext, child: Candidate) -> list[Candidate]:
        parents = [ctx.candidates[i] for i in child.parents]
        batch = self._minibatch(ctx)
        for parent in parents:
            ctx.evaluate(parent, batch)
        return self._promising(ctx, [child], parents, batch, strict=False)

    def _mates(self, ctx: OptimizationContext, first: Candidate,
               front: dict[Candidate, int]) -> list[Candidate]:
        """Front members outside ``first``'s line of descent.

        Merging a prompt with its own ancestor or descendant only gives back one of the two;
        GEPA rules such pairs out too.
        """
        lineage = ancestors(ctx, first)
        return [c for c in front
                if c.index not in lineage and first.index not in ancestors(ctx, c)]

    def _common_ancestor(self, ctx: OptimizationContext, a: Candidate,
                         b: Candidate) -> Candidate | None:
        # The most recent shared ancestor: indexes grow with time.
        shared = ancestors(ctx, a).keys() & ancestors(ctx, b).keys()
        return ctx.candidates[max(shared)] if shared else None

    # --- population and the gate ------------------------------------------------------------
    def _admit(self, ctx: OptimizationContext, population: list[Candidate],
               child: Candidate) -> None:
        """Add a child; past the limit, drop the member that wins fewest examples."""
        population.append(child)
        ctx.event("evolve: joined population", child, detail={"minibatch": child.mean()})
        if len(population) <= self.population_limit:
            return
        front = pareto_front(population)
        removable = [c for c in population if c is not ctx.incumbent]
        # Fewest wins, then lowest mean, then least evidence: that member is the least missed.
        weakest = min(removable, key=lambda c: (front.get(c, 0), c.mean(), len(c.scores),
                                                c.index))
        population.remove(weakest)

    def _best(self, ctx: OptimizationContext, population: list[Candidate],
              offered: set[int]) -> Candidate | None:
        """The best member by validation mean that is new to the gate and beats the incumbent
        on the examples it was scored on (offering anything else would waste the budget)."""
        ranked = sorted(population, key=lambda c: (-c.mean(), -len(c.scores), c.index))
        for cand in ranked:
            if cand is not ctx.incumbent and cand.index not in offered:
                ids = list(cand.scores)
                return cand if cand.mean(ids) > ctx.leader.mean(ids) else None
        return None

    def _offer_best(self, ctx: OptimizationContext, population: list[Candidate],
                    offered: set[int]) -> None:
        best = self._best(ctx, population, offered)
        if best is not None:
            offered.add(best.index)  # the gate would give the same verdict again
            ctx.consider(best)
