"""auto: the method and the budget split follow from data, noise and budget, and it says why."""

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
from promptmill.optimize.auto import Auto, Situation, decide, read_situation
from promptmill.prompt import Prompt

SEED = Prompt(instruction="What is the opposite?", template="{{ input }}", name="antonyms")


def methods(situation):
    plan, _ = decide(situation)
    return [phase.method for phase in plan]


def test_a_tiny_and_a_large_budget_choose_differently():
    tiny, tiny_reasons = decide(Situation(10, 20, 0.0, calls_left=25))
    large, large_reasons = decide(Situation(10, 20, 0.0, calls_left=400))
    assert [p.method for p in tiny] == ["fewshot"]
    assert [p.method for p in large][0] == "mipro" and len(large) == 2
    for reasons in (tiny_reasons, large_reasons):
        text = " ".join(reasons)
        assert "budget" in text and "noise" in text and "standard error" in text
    assert any("tiny budget" in r for r in tiny_reasons)
    assert any("large budget" in r for r in large_reasons)


def test_a_medium_budget_takes_demos_first_then_fixes_failures():
    plan, _ = decide(Situation(10, 20, 0.2, calls_left=100))
    assert [p.method for p in plan] == ["fewshot", "protegi"]
    assert plan[0].calls == 60 and plan[1].calls is None  # the last phase gets what is left


def test_the_follow_up_after_mipro_depends_on_what_is_left():
    assert methods(Situation(10, 20, 0.0, calls_left=200)) == ["mipro", "protegi"]
    assert methods(Situation(10, 20, 0.0, calls_left=1000)) == ["mipro", "evolve"]


def test_few_training_examples_mean_instruction_search():
    assert methods(Situation(2, 20, 0.3, calls_left=400)) == ["protegi", "evolve"]
    assert methods(Situation(2, 20, 0.3, calls_left=100)) == ["protegi"]
    assert methods(Situation(2, 20, 0.3, calls_left=30)) == ["fewshot"]


def test_no_detectable_room_spends_nothing_and_says_so():
    plan, reasons = decide(Situation(10, 20, 0.95, calls_left=1000))
    assert plan == []
    assert any("no room" in r and "larger validation split" in r for r in reasons)
    # The same headroom is worth searching when validation is large enough to measure it.
    assert methods(Situation(10, 400, 0.95, calls_left=10_000))


def test_noise_is_the_binomial_standard_error():
    assert Situation(10, 100, 0.5, 0).noise == pytest.approx(0.05)
    assert Situation(10, 100, 0.5, 0).detectable_gain == pytest.approx(0.098)
    assert Situation(10, 20, 0.0, 0).noise > 0  # an all-wrong seed is not measured exactly


def seeded_context(store, budget):
    task = antonym_task()
    ctx = OptimizationContext(train=task.train, validation=task.validation,
                              model=PromptSensitiveModel(), metric=get_metric("exact"),
                              store=store, budget=budget, params=GenerationParams(),
                              proposer=ScriptedProposer(GOOD_PROPOSALS))
    ctx.consider(ctx.add(SEED, origin="seed"))
    return ctx


def test_a_token_budget_is_read_as_estimated_calls(store):
    ctx = seeded_context(store, Budget(tokens=2000))
    situation = read_situation(ctx)
    per_call = ctx.spend.tokens / ctx.spend.calls
    assert situation.calls_estimated
    assert situation.calls_left == int((2000 - ctx.spend.tokens) / per_call)
    assert any("estimated" in r for r in decide(situation)[1])


def test_auto_logs_its_decision_and_holds_each_phase_to_its_share(store):
    ctx = seeded_context(store, Budget(calls=200))
    events = []
    ctx.on_event = events.append
    auto = Auto()
    auto.optimize(ctx)
    decision = next(e for e in events if e["event"] == "auto decision")
    assert decision["detail"]["method"] == "mipro+protegi"
    assert decision["detail"]["reasons"] == auto.reasons and auto.reasons
    phases = [e for e in events if e["event"] == "auto phase"]
    assert [p["detail"]["method"] for p in phases] == ["mipro", "protegi"]
    first_share = phases[0]["detail"]["calls"]
    assert phases[1]["calls"] <= phases[0]["calls"] + first_share
    assert ctx.spend.budget == Budget(calls=200)  # the phase limit was lifted again
    assert ctx.incumbent.index != 0 and ctx.spend.calls <= 200


# --- the real model ----------------------------------------------------------------------------


@pytest.mark.real_model
@pytest.mark.slow
def test_auto_on_the_embedded_model(embedded_model, store):
    seed = Prompt(instruction="Write the plural of the word.", template="{{ input }}")
    events = []
    result = optimize(plural_task(), seed, embedded_model, metric=get_metric("exact"),
                      budget=Budget(calls=60), method="auto", store=store, seed=0,
                      params=GenerationParams(max_tokens=8), on_event=events.append)
    assert result.spend["calls"] <= 60
    decision = next(e for e in events if e["event"] == "auto decision")
    assert decision["detail"]["reasons"] and decision["detail"]["method"] != "none"
    assert len(store.candidates(result.run_id)) == len(result.candidates) > 1
    assert result.best_validation >= result.seed_validation
    assert result.best_test.n == 10
