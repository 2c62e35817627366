"""Evolve: the Pareto front, weighted parent choice, reflective mutation, system-aware merge."""

from random import Random

import pytest
from optimize_fakes import (
    GOOD_PROPOSALS,
    PromptSensitiveModel,
    ScriptedProposer,
    antonym_task,
    fresh_context,
)

from promptmill.metrics import get_metric
from promptmill.models.base import GenerationParams
from promptmill.optimize import Budget, Candidate, optimize
from promptmill.optimize.evolve import Evolve, merge_prompts, pareto_front, pick_weighted
from promptmill.prompt import Demo, Prompt
from promptmill.strategies import ANSWER_ONLY
from promptmill.task import Example, Task

SEED = Prompt(instruction="What is the opposite?", template="{{ input }}", name="antonyms")





def scored(index, scores):
    return Candidate(index, SEED.model_copy(update={"instruction": f"v{index}"}), scores=scores)


def test_the_front_keeps_a_candidate_that_wins_a_single_example():
    generalist = scored(0, {"a": 1.0, "b": 1.0, "c": 0.0, "d": 1.0})
    specialist = scored(1, {"a": 0.0, "b": 0.0, "c": 1.0, "d": 0.0})
    dominated = scored(2, {"a": 0.5, "b": 0.0, "c": 0.0, "d": 0.0})
    front = pareto_front([generalist, specialist, dominated])
    assert front == {generalist: 3, specialist: 1}


def test_the_front_counts_ties_and_only_examples_a_candidate_was_scored_on():
    full = scored(0, {"a": 1.0, "b": 0.5, "c": 0.0})
    partial = scored(1, {"b": 0.5})  # ties the best on "b", never ran "a" or "c"
    assert pareto_front([full, partial]) == {full: 2, partial: 1}


def test_an_example_nobody_solved_is_nobodys_win():
    seed = scored(0, {"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0})  # ran everything, solved nothing
    child = scored(1, {"a": 1.0, "b": 0.0})
    assert pareto_front([seed, child]) == {child: 1}
    assert pareto_front([seed]) == {}


def test_parents_are_sampled_in_proportion_to_their_wins():
    big, small = scored(0, {}), scored(1, {})
    rng = Random(0)
    picks = [pick_weighted({big: 9, small: 1}, rng) for _ in range(1000)]
    assert 850 < picks.count(big) < 950
    assert pick_weighted({}, rng) is None


def test_merge_takes_each_field_from_the_parent_that_changed_it():
    demos = (Demo(inputs={"input": "hot"}, output="cold"),)
    reworded = SEED.model_copy(update={"instruction": "Give the antonym."})
    with_demos = SEED.model_copy(update={"demos": demos, "output_format": ANSWER_ONLY})
    merged = merge_prompts(reworded, with_demos, ancestor=SEED)
    assert merged.instruction == "Give the antonym."
    assert merged.demos == demos and merged.output_format == ANSWER_ONLY
    both = merge_prompts(reworded, SEED.model_copy(update={"instruction": "Other."}), SEED)
    assert both.instruction == "Give the antonym."  # both changed it: the better parent's


def test_a_merge_is_a_child_with_two_parents_from_the_front(store):
    ctx = fresh_context(store)
    events = []
    ctx.on_event = events.append
    Evolve(iterations=4, merge_every=2).optimize(ctx)
    merges = [c for c in ctx.candidates if c.origin == "evolve:merge"]
    assert merges and all(len(set(c.parents)) == 2 for c in merges)
    for child in merges:  # every field from one parent or the other, and not a copy of either
        parents = [ctx.candidates[i].prompt for i in child.parents]
        for name in ("instruction", "demos", "output_format"):
            assert getattr(child.prompt, name) in [getattr(p, name) for p in parents]
        assert child.prompt not in parents
    merge_event = next(e for e in events if e["event"] == "evolve: merge")
    assert merge_event["detail"]["parents"] == list(merges[0].parents)


def test_reflection_shows_the_instruction_failing_inputs_outputs_and_feedback(store):
    proposer = ScriptedProposer(GOOD_PROPOSALS)
    ctx = fresh_context(store, proposer)
    Evolve(iterations=1, minibatch=3).optimize(ctx)
    request = proposer.requests[0][0]["content"]
    assert '"What is the opposite?"' in request
    shown = [line.removeprefix("Input: ") for line in request.splitlines()
             if line.startswith("Input: ")]
    assert len(shown) == 3
    targets = {ex.inputs["input"]: ex.target for ex in ctx.validation}
    for word in shown:
        assert f"Model output: The opposite of {word} is {targets[word]}." in request
        assert f"Feedback: expected '{targets[word]}', got" in request
    reflected = [c for c in ctx.candidates if c.origin == "evolve:reflect"]
    assert [c.prompt.instruction for c in reflected] == GOOD_PROPOSALS[:1]


def test_children_join_only_when_they_beat_their_parent_on_the_minibatch(store):
    unhelpful = ScriptedProposer(["Give the antonym of the input word."], name="unhelpful")
    ctx = fresh_context(store, unhelpful)
    events = []
    ctx.on_event = events.append
    Evolve(iterations=1, minibatch=4).optimize(ctx)
    joined = {e["candidate_idx"] for e in events if e["event"] == "evolve: joined population"}
    origins = {ctx.candidates[i].origin: i in joined for i in range(1, len(ctx.candidates))}
    # The seed scores 0: the format notes beat it, the still-chatty reflection does not, nor
    # does the grammar variant (the fake ignores grammars, and its note is not one it obeys).
    assert origins == {"evolve:reflect": False, "evolve:format:answer-only": True,
                       "evolve:format:shape": True,
                       "evolve:format:grammar:one-lowercase-word": False}


def test_the_best_is_offered_to_the_gate_and_wins_on_the_fakes(store):
    result = optimize(antonym_task(), SEED, PromptSensitiveModel(), metric=get_metric("exact"),
                      budget=Budget(calls=200), method="evolve", store=store,
                      proposer=ScriptedProposer(GOOD_PROPOSALS), seed=0)
    assert result.best_validation == 1.0 and result.best_prompt.demos
    train_words = {ex.inputs["input"] for ex in antonym_task().train}
    assert {d.inputs["input"] for d in result.best_prompt.demos} <= train_words


def test_a_budget_that_cannot_verify_a_finding_stops_before_spending(store):
    ctx = fresh_context(store, calls=40)
    Evolve().optimize(ctx)
    assert ctx.spend.calls == 20 and len(ctx.candidates) == 1  # only the seed's validation


# --- the real embedded model --------------------------------------------------------------------
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
           "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
           "eighteen", "nineteen", "twenty", "thirty", "forty", "fifty", "sixty", "seventy",
           "eighty", "ninety"]
VALUES = [*range(21), 30, 40, 50, 60, 70, 80, 90]


def digits_task() -> Task:
    """Number words to digits: 8 train, 10 validation, 10 test."""
    examples = [Example(f"n{i}", {"input": word}, str(value))
                for i, (word, value) in enumerate(zip(NUMBERS, VALUES, strict=True))]
    order = Random(7).sample(examples, len(examples))
    return Task("digits", train=order[:8], validation=order[8:18], test=order[18:])


@pytest.mark.real_model
@pytest.mark.slow
def test_evolve_on_the_embedded_model_stays_in_budget_and_never_loses(embedded_model, store):
    seed = Prompt(instruction="Convert the number word.", template="{{ input }}", name="digits")
    options = {"iterations": 2, "minibatch": 3, "merge_every": 2}
    result = optimize(digits_task(), seed, embedded_model, metric=get_metric("exact"),
                      budget=Budget(calls=60), method="evolve", options=options, store=store,
                      params=GenerationParams(max_tokens=8), seed=0)
    assert result.spend["calls"] <= 60
    assert len(store.candidates(result.run_id)) == len(result.candidates) >= 2
    assert store.steps(result.run_id)
    assert result.best_validation >= result.seed_validation
