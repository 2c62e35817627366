"""OPRO: the scored history in the meta-prompt, minibatch scoring, offers to the gate."""

import re

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
from promptmill.optimize import Budget, optimize
from promptmill.optimize.bandit import validation_order
from promptmill.optimize.context import Candidate
from promptmill.optimize.opro import OPRO, shown_history, with_instruction
from promptmill.prompt import Prompt
from promptmill.task import Example

SEED = Prompt(instruction="What is the opposite?", template="{{ input }}", name="antonyms")
MANY = [f"Reply with the antonym, version {i}." for i in range(40)]  # never repeats








def run_opro(store, proposer=None, calls=400, **options):
    return optimize(antonym_task(), SEED, PromptSensitiveModel(), metric=get_metric("exact"),
                    budget=Budget(calls=calls), method="opro", options=options, store=store,
                    proposer=proposer or ScriptedProposer(GOOD_PROPOSALS), seed=0)


def meta_scores(request) -> list[int]:
    return [int(s) for s in re.findall(r"^score:\n(\d+)$", request[0]["content"], re.M)]


def meta_texts(request) -> list[str]:
    return re.findall(r"^text:\n(.*)$", request[0]["content"], re.M)


def test_meta_prompt_shows_the_scored_history_worst_first(store):
    proposer = ScriptedProposer(MANY)
    run_opro(store, proposer=proposer, steps=3, per_step=2)
    # Step 1 sees the seed and its three format variants (answer-only, shape, grammar); each
    # step adds its two proposals (each step's request is sent twice: two samples).
    assert [len(meta_texts(r)) for r in proposer.requests] == [4, 4, 6, 6, 8, 8]
    for request in proposer.requests:
        scores = meta_scores(request)
        assert scores == sorted(scores) and all(0 <= s <= 100 for s in scores)
    # The seed scores 0 on the fake, and so does the grammar variant (the fake ignores
    # grammars); of equal scores the newer is shown first, as the worse.
    first = proposer.requests[0]
    assert meta_scores(first)[:2] == [0, 0] and meta_texts(first)[1] == SEED.instruction


def test_only_the_top_of_the_history_is_shown(store):
    proposer = ScriptedProposer(MANY)
    run_opro(store, proposer=proposer, steps=4, per_step=2, history=3)
    assert all(len(meta_texts(r)) <= 3 for r in proposer.requests)
    assert SEED.instruction not in meta_texts(proposer.requests[-1])  # the worst dropped out


def test_shown_history_is_ascending_with_integer_percentages():
    examples = [Example(f"v{i}", {"input": "x"}, "y") for i in range(4)]
    cands = []
    for i, right in enumerate([3, 1, 4, 2]):
        cand = Candidate(i, Prompt(instruction=f"Instruction {i}."))
        cand.scores = {ex.id: float(j < right) for j, ex in enumerate(examples)}
        cands.append(cand)
    shown = shown_history(cands, examples, keep=3)
    assert shown == [("Instruction 3.", 50), ("Instruction 0.", 75), ("Instruction 2.", 100)]


def test_meta_prompt_shows_training_exemplars_only(store):
    proposer = ScriptedProposer(MANY)
    run_opro(store, proposer=proposer, steps=3, per_step=1, exemplars=3)
    task = antonym_task()
    train = {ex.inputs["input"] for ex in task.train}
    for request in proposer.requests:
        shown = set(re.findall(r"^Input: (.*)$", request[0]["content"], re.M))
        assert len(shown) == 3 and shown <= train


def test_new_instructions_are_scored_on_one_fixed_minibatch(store):
    result = run_opro(store, proposer=ScriptedProposer(MANY), steps=3, per_step=2, batch=6)
    proposed = [c for c in result.candidates if c.origin.startswith("opro:step=")]
    assert len(proposed) == 6
    batches = {frozenset(c.scores) for c in proposed if not c.accepted}
    assert len(batches) == 1 and len(next(iter(batches))) == 6


def test_history_starts_with_format_variants_and_one_of_them_wins(store):
    garbage = ScriptedProposer(["", "Output: cold", "\n\n"], name="garbage")
    result = run_opro(store, proposer=garbage, steps=2)
    assert not any(c.origin.startswith("opro:step=") for c in result.candidates)
    assert "opro:format:shape" in {c.origin for c in result.candidates}
    assert result.best_validation > result.seed_validation


def test_steps_bound_the_proposals(store):
    proposer = ScriptedProposer(MANY)
    run_opro(store, proposer=proposer, steps=3, per_step=2)
    assert len(proposer.requests) == 6


def test_steps_stop_while_the_best_can_still_be_checked(store):
    proposer = ScriptedProposer(MANY)
    result = run_opro(store, proposer=proposer, calls=100, steps=50, per_step=2)
    assert result.spend["calls"] <= 100
    assert len(proposer.requests) < 100
    assert result.best_validation > result.seed_validation


def test_a_new_instruction_keeps_the_format_note_unless_it_repeats_it():
    parent = Prompt(instruction="Old.", output_format="Answer with a single word.")
    assert with_instruction(parent, "New.").output_format == "Answer with a single word."
    repeated = with_instruction(parent, "New. Answer with a single word.")
    assert repeated.output_format is None and repeated.instruction.endswith("single word.")


def test_options_are_described_for_the_record():
    assert OPRO(steps=2, per_step=3).describe()["per_step"] == 3


def test_minibatch_is_a_prefix_of_the_shared_validation_order(store):
    from promptmill.optimize import OptimizationContext

    task = antonym_task()
    ctx = OptimizationContext(train=task.train, validation=task.validation,
                              model=PromptSensitiveModel(), metric=get_metric("exact"),
                              store=store, budget=Budget(calls=300), params=GenerationParams(),
                              proposer=ScriptedProposer(MANY))
    ctx.consider(ctx.add(SEED, origin="seed"))
    OPRO(steps=1, per_step=2, batch=5).optimize(ctx)
    prefix = {ex.id for ex in validation_order(ctx)[:5]}
    new = [c for c in ctx.candidates if c.origin.startswith("opro:step=") and not c.accepted]
    assert new and all(set(c.scores) == prefix for c in new)


@pytest.mark.real_model
@pytest.mark.slow
def test_opro_on_the_embedded_model(embedded_model, store):
    seed = Prompt(instruction="Write the word in capital letters.", name="uppercase")
    result = optimize(uppercase_task(), seed, embedded_model, metric=get_metric("exact"),
                      budget=Budget(calls=60), method="opro", store=store,
                      params=GenerationParams(max_tokens=8), seed=0,
                      options={"steps": 2, "per_step": 2, "batch": 4})
    assert result.spend["calls"] <= 60
    assert store.get_run(result.run_id)["status"] == "finished"
    assert len(store.candidates(result.run_id)) == len(result.candidates) > 1
    assert result.best_validation >= result.seed_validation  # the gate only lets gains in
