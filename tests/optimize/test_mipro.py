"""mipro: joint TPE search over instructions and demo sets, on the fakes and the real model."""

import subprocess
import sys

import pytest
from optimize_fakes import (
    GOOD_PROPOSALS,
    PromptSensitiveModel,
    ScriptedProposer,
    antonym_task,
    plural_task,
)

from promptmill.metrics import get_metric
from promptmill.models.base import GenerationParams
from promptmill.optimize import Budget, OptimizationContext, optimize
from promptmill.optimize.mipro import MIPRO
from promptmill.optimize.mutations import demos_from
from promptmill.prompt import Prompt

SEED = Prompt(instruction="What is the opposite?", template="{{ input }}", name="antonyms")


def seeded_context(store, calls=200, proposals=GOOD_PROPOSALS):
    """A context as ``optimize`` leaves it for a method: the seed scored on validation."""
    task = antonym_task()
    ctx = OptimizationContext(train=task.train, validation=task.validation,
                              model=PromptSensitiveModel(), metric=get_metric("exact"),
                              store=store, budget=Budget(calls=calls),
                              params=GenerationParams(), proposer=ScriptedProposer(proposals))
    ctx.consider(ctx.add(SEED, origin="seed"))
    return ctx


def mipro_events(ctx):
    events = []
    ctx.on_event = lambda e: events.append(e)
    return events


def test_candidates_combine_instructions_and_demo_sets(store):
    ctx = seeded_context(store)
    events = mipro_events(ctx)
    MIPRO(trials=20).optimize(ctx)
    space = next(e["detail"] for e in events if e["event"] == "mipro search space")
    assert space["instructions"][:3] == ["seed", "format:answer-only", "format:shape"]
    assert any(origin.startswith("induced") for origin in space["instructions"])
    assert space["demo_sets"][0] == "none"
    assert all(label.endswith("k=3") for label in space["demo_sets"][1:])
    found = ctx.candidates[1:]
    assert all(c.origin.startswith("mipro:") for c in found)
    instructions = {(c.prompt.instruction, c.prompt.output_format) for c in found}
    demo_sets = {tuple(d.output for d in c.prompt.demos) for c in found}
    assert len(instructions) >= 3 and len(demo_sets) >= 3
    induced = [c for c in found if c.prompt.instruction in GOOD_PROPOSALS]
    assert any(c.prompt.demos for c in induced), "an induced instruction paired with demos"


def test_the_best_combination_is_fully_scored_and_wins(store):
    ctx = seeded_context(store)
    MIPRO(trials=12).optimize(ctx)
    best = ctx.incumbent
    assert best.index != 0 and best.prompt.demos
    assert len(best.scores) == len(ctx.validation) and best.mean() == 1.0


def test_a_repeated_combination_reuses_its_candidate(store):
    # No proposals and only the empty demo set: three combinations for ten trials.
    ctx = seeded_context(store)
    events = mipro_events(ctx)
    MIPRO(demo_sets=1, instructions=0, trials=10).optimize(ctx)
    trials = [e for e in events if e["event"] == "mipro trial"]
    assert len(trials) == 10
    assert len(ctx.candidates) <= 4  # the seed and its three format variants
    assert len({e["candidate_idx"] for e in trials}) < len(trials)
    assert 0 in {e["candidate_idx"] for e in trials}, "the seed combination is the seed itself"


def test_the_incumbents_own_demos_stay_in_the_search_space(store):
    ctx = seeded_context(store)
    with_two = SEED.model_copy(update={"demos": demos_from(ctx.train[:2])})
    ctx.consider(ctx.add(with_two, origin="earlier method"))  # becomes the incumbent
    events = mipro_events(ctx)
    MIPRO(trials=4).optimize(ctx)
    space = next(e["detail"] for e in events if e["event"] == "mipro search space")
    assert space["demo_sets"][:2] == ["none", "incumbent"]


def test_garbage_proposals_add_no_instruction(store):
    ctx = seeded_context(store, proposals=["", "Input: hot\nOutput: cold"])
    events = mipro_events(ctx)
    MIPRO(trials=4).optimize(ctx)
    space = next(e["detail"] for e in events if e["event"] == "mipro search space")
    assert space["instructions"] == ["seed", "format:answer-only", "format:shape",
                                     "format:grammar:one-lowercase-word"]


def test_a_small_budget_keeps_enough_for_the_final_full_evaluation(store):
    ctx = seeded_context(store, calls=45)  # 25 calls left after the seed
    MIPRO().optimize(ctx)
    assert ctx.spend.calls <= 45
    assert ctx.incumbent.index != 0 and len(ctx.incumbent.scores) == len(ctx.validation)


def test_optuna_is_imported_only_when_mipro_runs():
    code = "import sys, promptmill.optimize.mipro; assert 'optuna' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- the real model ----------------------------------------------------------------------------






@pytest.mark.real_model
@pytest.mark.slow
def test_mipro_on_the_embedded_model(embedded_model, store):
    seed = Prompt(instruction="Write the plural of the word.", template="{{ input }}")
    result = optimize(plural_task(), seed, embedded_model, metric=get_metric("exact"),
                      budget=Budget(calls=60), method="mipro", store=store, seed=0,
                      options={"instructions": 1, "demo_sets": 3, "minibatch": 4},
                      params=GenerationParams(max_tokens=8))
    assert result.spend["calls"] <= 60
    assert len(store.candidates(result.run_id)) == len(result.candidates) > 1
    assert any(s["event"] == "mipro trial" for s in store.steps(result.run_id))
    assert result.best_validation >= result.seed_validation
    assert result.best_test.n == 10
