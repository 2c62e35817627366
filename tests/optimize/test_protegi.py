"""ProTeGi: textual gradients from failures, edits, rule-based edits, a beam under the budget."""

from random import Random

import pytest
from optimize_fakes import (
    GOOD_PROPOSALS,
    PromptSensitiveModel,
    ScriptedProposer,
    antonym_task,
    fresh_context,
)

from promptmill.evaluation import ScoredExample
from promptmill.metrics import get_metric
from promptmill.models.base import GenerationParams
from promptmill.optimize import Budget, optimize
from promptmill.optimize.proposals import clean_gradient, clean_rewrite
from promptmill.optimize.protegi import (
    BAD_FORMAT,
    EXTRA_TEXT,
    TOO_LONG,
    WRONG,
    ProTeGi,
    diagnose,
    failure_edits,
)
from promptmill.prompt import Prompt
from promptmill.strategies import ANSWER_ONLY
from promptmill.task import Example, Task

SEED = Prompt(instruction="What is the opposite?", template="{{ input }}", name="antonyms")





def failure(output, target="cold", feedback=None):
    return ScoredExample(Example("x", {"input": "hot"}, target), output, 0.0, feedback, None)


def test_diagnose_tells_extra_text_long_output_and_wrong_answers_apart():
    assert diagnose(failure("The opposite of hot is cold.")) == EXTRA_TEXT
    assert diagnose(failure("I am not sure what you mean by that word")) == TOO_LONG
    assert diagnose(failure("warm")) == WRONG
    assert diagnose(failure("{", feedback="output is not valid JSON: line 1")) == BAD_FORMAT
    assert diagnose(failure("format", feedback="expected 'cold', got 'format'")) == WRONG


def test_failure_edits_add_format_notes_for_format_trouble_and_demos_for_missing_answers():
    train = antonym_task().train
    chatty = failure_edits(SEED, [failure("The opposite of hot is cold.")], train,
                           Random(0))
    assert {origin for origin, _ in chatty} == {"format:answer-only", "format:shape",
                                               "format:grammar:one-lowercase-word"}
    rambling = failure_edits(SEED, [failure("I am not sure what you mean by that word")], train,
                             Random(0))
    assert [o for o, _ in rambling] == ["format:answer-only", "format:shape",
                                        "format:grammar:one-lowercase-word", "demos:k=4"]
    wrong = failure_edits(SEED, [failure("warm")], train, Random(0))
    assert [origin for origin, _ in wrong] == ["demos:k=4"]
    assert {d.inputs["input"] for d in wrong[0][1].demos} <= {ex.inputs["input"] for ex in train}


def test_format_trouble_that_survives_a_note_gets_demos():
    noted = SEED.model_copy(update={"output_format": ANSWER_ONLY})
    edits = failure_edits(noted, [failure("cold, I think")], antonym_task().train,
                          Random(0))
    assert "demos:k=4" in [origin for origin, _ in edits]


def test_rewrites_are_read_past_the_lead_in_a_small_proposer_writes():
    assert clean_rewrite('Here is the revised instruction:\n"Give the antonym."') == \
        "Give the antonym."
    assert clean_rewrite('The improved instruction would be: "Give the antonym."') == \
        "Give the antonym."
    assert clean_rewrite("Here's an improved instruction:") == ""
    assert clean_gradient("The problem is: it never says\nto answer in one word.") == \
        "it never says to answer in one word."


def test_the_gradient_request_shows_failing_examples_with_output_and_feedback(store):
    proposer = ScriptedProposer(GOOD_PROPOSALS)
    ctx = fresh_context(store, proposer)
    ProTeGi(rounds=1, errors_per_gradient=3).optimize(ctx)
    gradient = proposer.requests[0][0]["content"]
    assert '"What is the opposite?"' in gradient and "wrong" in gradient
    shown = [line.removeprefix("Input: ") for line in gradient.splitlines()
             if line.startswith("Input: ")]
    assert len(shown) == 3
    validation = {ex.inputs["input"]: ex for ex in ctx.validation}
    for word in shown:  # each failure: a validation input, the model's output, the feedback
        expected = validation[word].target
        assert f"Model output: The opposite of {word} is {expected}." in gradient
        assert f"Feedback: expected '{expected}', got" in gradient


def test_the_edit_request_carries_the_gradient_and_edits_keep_the_rest_of_the_prompt(store):
    proposer = ScriptedProposer(GOOD_PROPOSALS)
    ctx = fresh_context(store, proposer)
    ProTeGi(rounds=1, edits_per_gradient=2).optimize(ctx)
    edit_request = proposer.requests[1][0]["content"]
    assert f"the problem with this instruction is: {GOOD_PROPOSALS[0]}" in edit_request
    edits = [c for c in ctx.candidates if c.origin == "protegi:edit"]
    assert [c.prompt.instruction for c in edits] == GOOD_PROPOSALS[1:3]
    assert all(c.parents == (0,) and c.prompt.template == SEED.template for c in edits)


def test_garbage_proposals_leave_only_rule_based_edits(store):
    garbage = ScriptedProposer(["", "Input: hot\nOutput: cold", "  \n "], name="garbage")
    ctx = fresh_context(store, garbage)
    ProTeGi(rounds=2).optimize(ctx)
    origins = {c.origin for c in ctx.candidates[1:]}
    assert origins and not any(o == "protegi:edit" for o in origins)
    assert ctx.incumbent.mean() > ctx.candidates[0].mean()  # the rule-based edits still help


def test_the_beam_keeps_at_most_beam_width_and_demos_come_from_train(store):
    events = []
    task = antonym_task()
    result = optimize(task, SEED, PromptSensitiveModel(), metric=get_metric("exact"),
                      budget=Budget(calls=200), method="protegi",
                      options={"beam_width": 2}, store=store,
                      proposer=ScriptedProposer(GOOD_PROPOSALS), seed=0,
                      on_event=events.append)
    beams = [e["detail"]["beam"] for e in events if e["event"] == "protegi: beam"]
    assert beams and all(len(beam) <= 2 for beam in beams)
    train_words = {ex.inputs["input"] for ex in task.train}
    shown = {d.inputs["input"] for c in result.candidates for d in c.prompt.demos}
    assert shown and shown <= train_words
    assert result.best_validation == 1.0


def test_a_tight_budget_scores_fewer_successors_and_never_ranks_unscored_ones(store):
    ctx = fresh_context(store, calls=45)
    events = []
    ctx.on_event = events.append
    ProTeGi().optimize(ctx)
    assert ctx.spend.calls <= 45
    assert any(e["event"] == "protegi: budget limits the successors" for e in events)
    beams = [e["detail"]["beam"] for e in events if e["event"] == "protegi: beam"]
    assert all(ctx.candidates[i].scores for beam in beams for i in beam)


# --- the real embedded model --------------------------------------------------------------------
COLORS = [("apple", "red"), ("banana", "yellow"), ("grass", "green"), ("sky", "blue"),
          ("snow", "white"), ("coal", "black"), ("orange", "orange"), ("lemon", "yellow"),
          ("cherry", "red"), ("leaf", "green"), ("ocean", "blue"), ("milk", "white"),
          ("night", "black"), ("carrot", "orange"), ("tomato", "red"), ("lime", "green"),
          ("sun", "yellow"), ("cloud", "white"), ("crow", "black"), ("pumpkin", "orange"),
          ("strawberry", "red"), ("frog", "green"), ("blueberry", "blue"), ("salt", "white"),
          ("ink", "black"), ("corn", "yellow"), ("sapphire", "blue"), ("tangerine", "orange")]


def color_task() -> Task:
    """What colour is it: 8 train, 10 validation, 10 test; one word answers."""
    examples = [Example(f"c{i}", {"input": thing}, color)
                for i, (thing, color) in enumerate(COLORS)]
    return Task("colors", train=examples[:8], validation=examples[8:18], test=examples[18:])


@pytest.mark.real_model
@pytest.mark.slow
def test_protegi_on_the_embedded_model_stays_in_budget_and_never_loses(embedded_model, store):
    seed = Prompt(instruction="What color is this?", template="{{ input }}", name="colors")
    # One small round: a gradient, one edit and the rule-based edits, scored on 4 examples.
    options = {"beam_width": 2, "rounds": 1, "first_batch": 4, "errors_per_gradient": 2,
               "edits_per_gradient": 1}
    result = optimize(color_task(), seed, embedded_model, metric=get_metric("exact"),
                      budget=Budget(calls=60), method="protegi", options=options, store=store,
                      params=GenerationParams(max_tokens=8), seed=0)
    assert result.spend["calls"] <= 60
    assert len(store.candidates(result.run_id)) == len(result.candidates) >= 2
    assert any(s["event"] == "protegi: beam" for s in store.steps(result.run_id))
    assert result.best_validation >= result.seed_validation
