"""APE: induction from training demos, format variants, halving within the budget."""

import pytest
from optimize_fakes import (
    GOOD_PROPOSALS,
    PromptSensitiveModel,
    ScriptedProposer,
    antonym_task,
    uppercase_task,
)

from promptmill.metrics import get_metric
from promptmill.models.base import GenerationParams
from promptmill.optimize import Budget, OptimizationContext, optimize
from promptmill.optimize.ape import APE, affordable_calls, halving_cost
from promptmill.optimize.bandit import successive_halving
from promptmill.prompt import Prompt

SEED = Prompt(instruction="What is the opposite?", template="{{ input }}", name="antonyms")



def run_ape(store, proposer=None, calls=200, **options):
    return optimize(antonym_task(), SEED, PromptSensitiveModel(), metric=get_metric("exact"),
                    budget=Budget(calls=calls), method="ape", options=options, store=store,
                    proposer=proposer or ScriptedProposer(GOOD_PROPOSALS), seed=0)


def fresh_context(store, calls=1000):
    task = antonym_task()
    ctx = OptimizationContext(train=task.train, validation=task.validation,
                              model=PromptSensitiveModel(), metric=get_metric("exact"),
                              store=store, budget=Budget(calls=calls),
                              params=GenerationParams())
    ctx.consider(ctx.add(SEED, origin="seed"))
    return ctx


def test_induced_instructions_are_candidates_built_on_the_seed(store):
    result = run_ape(store)
    induced = [c for c in result.candidates if c.origin == "ape:induced:r1"]
    assert {c.prompt.instruction for c in induced} == set(GOOD_PROPOSALS)
    assert all(c.parents == (0,) and c.prompt.template == SEED.template for c in induced)


def test_induction_shows_several_training_subsets_and_nothing_else(store):
    proposer = ScriptedProposer(GOOD_PROPOSALS)
    result = run_ape(store, proposer=proposer, rounds=1, subsets=3, candidates=6)
    task = antonym_task()
    train_words = {ex.inputs["input"] for ex in task.train}
    other_words = {ex.inputs["input"] for ex in (*task.validation, *task.test)}
    subsets = set()
    for request in proposer.requests:
        text = request[0]["content"]
        shown = {line.removeprefix("Input: ") for line in text.splitlines()
                 if line.startswith("Input: ")}
        assert shown and shown <= train_words and not shown & other_words
        subsets.add(frozenset(shown))
    assert len(proposer.requests) == 6 and len(subsets) == 3
    assert result.spend["calls"] <= 200


def test_format_variants_of_the_seed_and_of_induced_instructions_compete(store):
    origins = {c.origin for c in run_ape(store).candidates}
    assert {"ape:format:shape", "ape:format:answer-only"} <= origins
    assert any(o.startswith("ape:induced") and o.endswith("+format:shape") for o in origins)


def test_garbage_proposals_are_skipped_and_a_format_note_still_wins(store):
    garbage = ScriptedProposer(["", "Input: hot\nOutput: cold", "  \n "], name="garbage")
    result = run_ape(store, proposer=garbage)
    assert not any(c.origin.startswith("ape:induced") for c in result.candidates)
    assert "format" in next(c.origin for c in result.candidates if c.accepted and c.index)
    assert result.best_validation > result.seed_validation


def test_a_small_budget_skips_proposals_but_still_tries_a_format_note(store):
    proposer = ScriptedProposer(GOOD_PROPOSALS)
    result = run_ape(store, proposer=proposer, calls=45)
    assert proposer.requests == []  # 25 calls left cannot pay for proposals and a comparison
    assert result.spend["calls"] <= 45
    assert result.best_validation > result.seed_validation


def test_second_round_resamples_around_the_incumbent(store):
    texts = GOOD_PROPOSALS + [f"Reply with the antonym ({i})." for i in range(12)]
    proposer = ScriptedProposer(texts)  # distinct texts: round 2 must not repeat round 1
    result = run_ape(store, proposer=proposer, calls=400, rounds=2)
    asks = [r[0]["content"] for r in proposer.requests]
    assert sum("variation of the following instruction" in a for a in asks) == 4
    resampled = [c for c in result.candidates if c.origin == "ape:resampled:r2"]
    # Resampling starts from the incumbent or the last winner: both were scored in round 1.
    assert resampled and all(len(result.candidates[c.parents[0]].scores) == 20
                             for c in resampled)
    assert any(c.origin == "ape:induced:r2" for c in result.candidates)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_halving_cost_is_what_halving_and_the_full_check_spend(store, n):
    ctx = fresh_context(store)
    pool = [ctx.add(SEED.model_copy(update={"instruction": f"Variant {i}."}), origin="t")
            for i in range(n)]
    before = ctx.spend.calls
    winner = successive_halving(ctx, pool, first_batch=8)[0]
    ctx.evaluate(winner, ctx.validation)
    assert ctx.spend.calls - before == halving_cost(n, 8, len(ctx.validation))


def test_affordable_calls_reads_the_budget_through_can_afford(store):
    ctx = fresh_context(store, calls=70)
    assert affordable_calls(ctx) == 70 - 20  # the seed was scored on 20 validation examples


def test_options_are_described_for_the_record():
    assert APE(candidates=3, rounds=1).describe()["candidates"] == 3








@pytest.mark.real_model
@pytest.mark.slow
def test_ape_on_the_embedded_model(embedded_model, store):
    seed = Prompt(instruction="Write the word in capital letters.", name="uppercase")
    result = optimize(uppercase_task(), seed, embedded_model, metric=get_metric("exact"),
                      budget=Budget(calls=60), method="ape", store=store,
                      params=GenerationParams(max_tokens=8), seed=0,
                      options={"candidates": 2, "subsets": 2, "first_batch": 4, "rounds": 1})
    assert result.spend["calls"] <= 60
    assert store.get_run(result.run_id)["status"] == "finished"
    assert len(store.candidates(result.run_id)) == len(result.candidates) > 1
    assert result.best_validation >= result.seed_validation  # the gate only lets gains in
