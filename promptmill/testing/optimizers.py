"""The optimizer conformance suite: what every search method must do, built-in or plugin.

Each ``check_*`` function runs an optimizer through :func:`promptmill.optimize.optimize` on the
antonym task of :mod:`promptmill.testing.fakes` and raises :class:`ConformanceFailure` (an
``AssertionError``, so pytest shows it as a failed assertion) naming the broken rule:

- the search sees train and validation only: no test input reaches the model before it ends;
- it spends no more than its budget, counted by the context and by the models themselves;
- every candidate, the trajectory and the best prompt are recorded, and the best prompt is the
  seed or a stored candidate the gate accepted, scoring at least the seed on validation;
- it finds the real gain the antonym task offers within 200 calls;
- the same seed gives the same search;
- garbage proposals are rejected and the run goes on; a seed longer than the proposal limit is
  kept as the seed; a small budget ends the search cleanly; one too small is refused before
  any call.

An optimizer is given as a registered name (``"ape"``), an :class:`Optimizer` subclass, a
function returning an instance, or an instance (copied for every run, so runs share no state).

With pytest, subclass :class:`OptimizerConformance` and give it one fixture, ``optimizer``::

    class TestMyOptimizer(OptimizerConformance):
        @pytest.fixture
        def optimizer(self):
            return MyOptimizer

Without pytest, :func:`check_optimizer` runs every check in a folder of your choice. This
module does not import pytest.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..metrics import get_metric
from ..optimize import Budget, OptimizationResult, Optimizer, optimize
from ..prompt import Prompt
from ..store.db import Store
from .assertions import ConformanceFailure, approx_equal, expect
from .fakes import (
    GOOD_PROPOSALS,
    SEED,
    SEED_NAME,
    PromptSensitiveModel,
    ScriptedProposer,
    antonym_task,
)

OptimizerSpec = str | type[Optimizer] | Callable[[], Optimizer] | Optimizer

SEARCH_ENDS = ("search finished", "budget exhausted")
GARBAGE_PROPOSALS = ["", "x" * 5000, "Input: hot\nOutput: cold"]
MAX_PROPOSAL_CHARS = 1500  # promptmill.optimize.context.MAX_INSTRUCTION_CHARS
SUITE_BUDGET = 200
SMALL_BUDGET = 45
LONG_SEED_BUDGET = 120
TOO_SMALL_BUDGET = 25  # under twice the 20 validation examples


@dataclass
class ConformanceRun:
    """One optimization on the antonym task, with everything a check looks at."""

    result: OptimizationResult
    store: Store
    model: PromptSensitiveModel
    proposer: ScriptedProposer
    events: list[tuple[str, int]]  # (event, task-model requests so far)
    budget_calls: int

    @property
    def search_end(self) -> int:
        """How many requests the task model had received when the search ended."""
        ends = [n for name, n in self.events if name in SEARCH_ENDS]
        expect(ends, "the run never reported the end of the search ('search finished' or "
                     "'budget exhausted'): run the optimizer through promptmill's optimize()")
        return ends[0]


def fresh_optimizer(spec: OptimizerSpec) -> str | Optimizer:
    """What ``optimize(method=...)`` takes: the name as it is, else a new instance."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Optimizer):
        return copy.deepcopy(spec)
    made = spec()
    if not isinstance(made, Optimizer):
        raise TypeError(f"{spec!r} made {made!r}, not a promptmill.optimize.Optimizer")
    return made


def run_on_antonyms(spec: OptimizerSpec, store: Store, *, calls: int = SUITE_BUDGET,
                    proposer: ScriptedProposer | None = None,
                    seed_prompt: Prompt = SEED) -> ConformanceRun:
    """Optimize ``seed_prompt`` on the antonym task with fresh fakes, recording the events."""
    model = PromptSensitiveModel()
    proposer = proposer or ScriptedProposer(GOOD_PROPOSALS)
    events: list[tuple[str, int]] = []
    result = optimize(antonym_task(), seed_prompt, model, metric=get_metric("exact"),
                      budget=Budget(calls=calls), method=fresh_optimizer(spec), store=store,
                      proposer=proposer, seed=0,
                      on_event=lambda e: events.append((e["event"], len(model.requests))))
    return ConformanceRun(result, store, model, proposer, events, calls)


def sqlite_store(folder: Path | str, name: str = "conformance") -> Store:
    return Store(f"sqlite:///{Path(folder) / f'{name}.db'}")


# --- checks on one run ----------------------------------------------------------------------
def check_search_saw_no_test_input(run: ConformanceRun) -> None:
    """Test inputs (marked TEST) reach the task model only after the search ended."""
    expect(not run.model.saw_test_input(upto=run.search_end),
           "the search sent a test input to the model: an optimizer may use only ctx.train "
           "and ctx.validation")


def check_budget_respected(run: ConformanceRun) -> None:
    """Neither the context's count nor the calls the models really received exceed the budget."""
    spent = run.result.spend["calls"]
    expect(spent <= run.budget_calls,
           f"the search spent {spent} calls on a budget of {run.budget_calls}")
    # Fresh calls never exceed logical ones (a cache hit is charged as a call), so this only
    # fails for an optimizer that calls a model without going through the context.
    received = run.search_end + run.proposer.calls
    expect(received <= run.budget_calls,
           f"the models received {received} calls during a search budgeted at "
           f"{run.budget_calls}: call models only through ctx.evaluate, ctx.consider and "
           "ctx.propose")


def check_records(run: ConformanceRun) -> None:
    """Candidates, trajectory, the best prompt as a new version, and the two test runs."""
    result, store = run.result, run.store
    stored = store.candidates(result.run_id)
    expect(len(stored) == len(result.candidates) >= 1,
           f"{len(stored)} candidates stored, {len(result.candidates)} in the result: register "
           "every candidate with ctx.add")
    expect(store.steps(result.run_id), "the run recorded no trajectory steps")
    saved = store.get_prompt(SEED_NAME)["hash"]
    expect(saved == result.best_prompt.hash,
           f"the latest stored version of '{SEED.name}' is {saved[:12]}, not the best prompt")
    splits = [c["split"] for c in store.child_runs(result.run_id)]
    expect(splits == ["test", "test"],
           f"the run's child evaluations are on {splits}, not the seed and the best on test")


def check_best_is_earned(result: OptimizationResult, store: Store) -> None:
    """The best prompt is the seed, or a stored, accepted candidate scoring at least the seed."""
    expect(isinstance(result.best_prompt, Prompt), "the best prompt is not a Prompt")
    rows = {row["hash"]: row for row in store.candidates(result.run_id)}
    seed_row = rows.get(result.seed_prompt.hash)
    expect(seed_row is not None, "the seed prompt is not one of the run's candidates")
    assert seed_row is not None  # for type checkers: expect() raised otherwise
    expect(seed_row["idx"] == 0 and seed_row["origin"] == "seed",
           "the seed is not candidate 0 with origin 'seed'")
    best_row = rows.get(result.best_prompt.hash)
    expect(best_row is not None, "the best prompt is not one of the run's candidates")
    assert best_row is not None
    expect(best_row["accepted"], "the best prompt was never accepted by the gate: replace the "
                                 "incumbent only through ctx.consider")
    n_val = len(antonym_task().validation)
    expect(best_row["val_n"] == seed_row["val_n"] == n_val,
           f"the best prompt and the seed were scored on {best_row['val_n']} and "
           f"{seed_row['val_n']} validation examples, not all {n_val}")
    expect(approx_equal(best_row["val_mean"], result.best_validation),
           f"the stored validation mean {best_row['val_mean']} of the best prompt differs from "
           f"the reported {result.best_validation}")
    expect(best_row["val_mean"] >= seed_row["val_mean"],
           f"the best prompt scores {best_row['val_mean']} on validation, below the seed's "
           f"{seed_row['val_mean']}")
    expect(approx_equal(seed_row["val_mean"], result.seed_validation),
           f"the stored validation mean {seed_row['val_mean']} of the seed differs from the "
           f"reported {result.seed_validation}")


def check_finds_the_gain(run: ConformanceRun) -> None:
    """The antonym task rewards a terse instruction: 200 calls are enough to find it."""
    result = run.result
    expect(result.best_test.score.mean > result.seed_test.score.mean,
           f"the best prompt scores {result.best_test.score.mean} on test, no better than the "
           f"seed's {result.seed_test.score.mean}")
    expect(result.comparison.p_value < 0.05,
           f"the gain on test is not significant (p = {result.comparison.p_value})")


# --- checks that run the optimizer themselves -----------------------------------------------
def check_protocol_budget_and_records(spec: OptimizerSpec, store: Store) -> ConformanceRun:
    """One run at the suite's budget, through every check on one run."""
    run = run_on_antonyms(spec, store)
    check_search_saw_no_test_input(run)
    check_budget_respected(run)
    check_records(run)
    check_best_is_earned(run.result, store)
    check_finds_the_gain(run)
    return run


def check_deterministic(spec: OptimizerSpec, folder: Path | str) -> None:
    """The same seed, in two fresh stores, gives the same candidates and the same test scores."""
    first, second = (_run_in_own_store(spec, folder, name)
                     for name in ("deterministic-a", "deterministic-b"))
    expect([c.prompt.hash for c in first.candidates] == [c.prompt.hash
                                                         for c in second.candidates],
           "two runs with the same seed proposed different candidates: draw randomness from "
           "ctx.rng only")
    expect(first.best_test.scores == second.best_test.scores,
           "two runs with the same seed ended with different test scores")


def _run_in_own_store(spec: OptimizerSpec, folder: Path | str, name: str) -> OptimizationResult:
    store = sqlite_store(folder, name)
    try:
        return run_on_antonyms(spec, store).result
    finally:
        store.close()


def check_garbage_proposals_rejected(spec: OptimizerSpec, store: Store) -> None:
    """Empty, huge and example-shaped proposals never become candidates; the run goes on."""
    run = run_on_antonyms(spec, store, proposer=ScriptedProposer(GARBAGE_PROPOSALS,
                                                                 name="garbage"))
    check_best_is_earned(run.result, store)
    candidates = run.result.candidates
    expect(all(len(c.prompt.instruction) <= MAX_PROPOSAL_CHARS for c in candidates),
           f"a candidate's instruction is over {MAX_PROPOSAL_CHARS} characters")
    expect(all(c.prompt.instruction.strip() for c in candidates),
           "a candidate has an empty instruction")


def check_long_seed_kept(spec: OptimizerSpec, store: Store) -> None:
    """The size limit is for what the proposer writes; the user's own prompt is never refused."""
    long_seed = SEED.model_copy(update={"instruction": "What is the opposite? " * 100})
    proposer = ScriptedProposer(["x" * 5000, *GOOD_PROPOSALS])
    result = run_on_antonyms(spec, store, calls=LONG_SEED_BUDGET, proposer=proposer,
                             seed_prompt=long_seed).result
    first = result.candidates[0]
    expect(first.prompt == long_seed and first.origin == "seed",
           "the long seed is not candidate 0 with origin 'seed'")
    expect(approx_equal(result.seed_validation, first.mean()),
           f"the seed's validation {result.seed_validation} differs from its candidate's "
           f"mean {first.mean()}")
    expect(all(len(c.prompt.instruction) <= len(long_seed.instruction)
               for c in result.candidates),
           "a proposal is longer than the long seed")
    status = store.get_run(result.run_id)["status"]
    expect(status == "finished", f"the run ended '{status}', not 'finished'")


def check_small_budget_stops_cleanly(spec: OptimizerSpec, store: Store) -> None:
    """At 45 calls the search stops within budget and says why."""
    run = run_on_antonyms(spec, store, calls=SMALL_BUDGET)
    spent = run.result.spend["calls"]
    expect(spent <= SMALL_BUDGET, f"the search spent {spent} calls on a budget of "
                                  f"{SMALL_BUDGET}")
    expect(any(name in SEARCH_ENDS for name, _ in run.events),
           "the run never reported the end of the search")


def check_too_small_budget_refused(spec: OptimizerSpec, store: Store) -> None:
    """A budget that cannot score the seed and one candidate is refused before any call."""
    model = PromptSensitiveModel()
    try:
        optimize(antonym_task(), SEED, model, metric=get_metric("exact"),
                 budget=Budget(calls=TOO_SMALL_BUDGET), method=fresh_optimizer(spec),
                 store=store, proposer=ScriptedProposer(GOOD_PROPOSALS), seed=0)
    except ConfigError as exc:
        expect(re.search("at least 40 calls", str(exc)),
               f"the refusal does not name the calls needed: {exc}")
    else:
        raise ConformanceFailure(f"a budget of {TOO_SMALL_BUDGET} calls was not refused")
    expect(model.requests == [], f"the model received {len(model.requests)} calls before the "
                                 "budget was refused")


def check_optimizer(spec: OptimizerSpec, folder: Path | str) -> None:
    """Every check, each in its own SQLite store under ``folder``; the first failure raises."""
    store_checks: list[Callable[[OptimizerSpec, Store], Any]] = [
        check_protocol_budget_and_records, check_garbage_proposals_rejected,
        check_long_seed_kept, check_small_budget_stops_cleanly, check_too_small_budget_refused]
    for check in store_checks:
        store = sqlite_store(folder, check.__name__)
        try:
            check(spec, store)
        finally:
            store.close()
    check_deterministic(spec, folder)


class OptimizerConformance:
    """The suite as pytest tests: subclass it and define the fixture ``optimizer``.

    The fixture returns an :data:`OptimizerSpec`; parametrize it to run several optimizers.
    Each test uses pytest's own ``tmp_path`` for its store, so no other fixture is needed.
    """

    def test_protocol_budget_and_records(self, optimizer: OptimizerSpec, tmp_path: Path):
        self._with_store(check_protocol_budget_and_records, optimizer, tmp_path)

    def test_same_seed_same_search(self, optimizer: OptimizerSpec, tmp_path: Path):
        check_deterministic(optimizer, tmp_path)

    def test_garbage_proposals_are_rejected_and_the_run_goes_on(self, optimizer: OptimizerSpec,
                                                                 tmp_path: Path):
        self._with_store(check_garbage_proposals_rejected, optimizer, tmp_path)

    def test_a_seed_over_the_proposal_limit_is_kept_as_the_seed(self, optimizer: OptimizerSpec,
                                                                 tmp_path: Path):
        self._with_store(check_long_seed_kept, optimizer, tmp_path)

    def test_stops_cleanly_at_a_small_budget(self, optimizer: OptimizerSpec, tmp_path: Path):
        self._with_store(check_small_budget_stops_cleanly, optimizer, tmp_path)

    def test_a_budget_too_small_is_refused_before_any_call(self, optimizer: OptimizerSpec,
                                                           tmp_path: Path):
        self._with_store(check_too_small_budget_refused, optimizer, tmp_path)

    @staticmethod
    def _with_store(check: Callable[[OptimizerSpec, Store], Any], optimizer: OptimizerSpec,
                    folder: Path) -> None:
        store = sqlite_store(folder)
        try:
            check(optimizer, store)
        finally:
            store.close()


__all__ = ["ConformanceFailure", "ConformanceRun", "OptimizerConformance", "OptimizerSpec",
           "check_best_is_earned", "check_budget_respected", "check_deterministic",
           "check_finds_the_gain", "check_garbage_proposals_rejected", "check_long_seed_kept",
           "check_optimizer", "check_protocol_budget_and_records", "check_records",
           "check_search_saw_no_test_input", "check_small_budget_stops_cleanly",
           "check_too_small_budget_refused", "fresh_optimizer", "run_on_antonyms",
           "sqlite_store"]
