"""Every optimizer passes the same suite: protocol, budget, records, determinism, robustness."""

import pytest
from optimize_fakes import GOOD_PROPOSALS, PromptSensitiveModel, ScriptedProposer, antonym_task

from promptmill.metrics import get_metric
from promptmill.optimize import Budget, available_optimizers, optimize
from promptmill.prompt import Prompt
from promptmill.store.db import Store

SEED = Prompt(instruction="What is the opposite?", template="{{ input }}", name="antonyms")
BUILTINS = ["ape", "auto", "evolve", "fewshot", "mipro", "opro", "protegi"]


def run(method, store, model=None, proposer=None, calls=200, **kw):
    model = model or PromptSensitiveModel()
    events = []
    result = optimize(antonym_task(), SEED, model, metric=get_metric("exact"),
                      budget=Budget(calls=calls), method=method, store=store,
                      proposer=proposer or ScriptedProposer(GOOD_PROPOSALS), seed=0,
                      on_event=lambda e: events.append((e["event"], len(model.requests))), **kw)
    return result, model, events


def assert_best_is_earned(result, store):
    """The best prompt is the seed, or a stored, accepted candidate scoring at least the seed."""
    assert isinstance(result.best_prompt, Prompt)
    rows = {row["hash"]: row for row in store.candidates(result.run_id)}
    seed_row = rows[SEED.hash]
    assert seed_row["idx"] == 0 and seed_row["origin"] == "seed"
    best_row = rows.get(result.best_prompt.hash)
    assert best_row is not None, "the best prompt is not one of the run's candidates"
    assert best_row["accepted"]
    assert best_row["val_n"] == seed_row["val_n"] == len(antonym_task().validation)
    assert best_row["val_mean"] == pytest.approx(result.best_validation)
    assert best_row["val_mean"] >= seed_row["val_mean"] == pytest.approx(result.seed_validation)


def test_every_builtin_is_registered():
    assert set(BUILTINS) <= set(available_optimizers())


@pytest.mark.parametrize("method", BUILTINS)
def test_protocol_budget_and_records(method, store):
    result, model, events = run(method, store)
    # The search never saw a test input: test inputs appear only after the search ended.
    search_end = next(n for name, n in events if name in ("search finished", "budget exhausted"))
    assert not model.saw_test_input(upto=search_end)
    assert result.spend["calls"] <= 200
    # Records: candidates, trajectory and the best prompt as a new version.
    assert len(store.candidates(result.run_id)) == len(result.candidates) >= 1
    assert store.steps(result.run_id)
    assert store.get_prompt("antonyms")["hash"] == result.best_prompt.hash
    assert_best_is_earned(result, store)
    children = store.child_runs(result.run_id)
    assert [c["split"] for c in children] == ["test", "test"]
    # The gain is real on this task, so every method should find it within 200 calls.
    assert result.best_test.score.mean > result.seed_test.score.mean
    assert result.comparison.p_value < 0.05


@pytest.mark.parametrize("method", BUILTINS)
def test_same_seed_same_search(method, tmp_path):
    first, _, _ = run(method, Store(f"sqlite:///{tmp_path / 'a.db'}"))
    second, _, _ = run(method, Store(f"sqlite:///{tmp_path / 'b.db'}"))
    assert [c.prompt.hash for c in first.candidates] == [c.prompt.hash for c in second.candidates]
    assert first.best_test.scores == second.best_test.scores


@pytest.mark.parametrize("method", BUILTINS)
def test_garbage_proposals_are_rejected_and_the_run_goes_on(method, store):
    garbage = ScriptedProposer(["", "x" * 5000, "Input: hot\nOutput: cold"], name="garbage")
    result, _, _ = run(method, store, proposer=garbage)
    assert_best_is_earned(result, store)
    assert all(len(c.prompt.instruction) <= 1500 for c in result.candidates)
    assert all(c.prompt.instruction.strip() for c in result.candidates)


@pytest.mark.parametrize("method", BUILTINS)
def test_a_seed_over_the_proposal_limit_is_kept_as_the_seed(method, store):
    # The size limit is for what the proposer writes; the user's own prompt is never refused.
    long_seed = SEED.model_copy(update={"instruction": "What is the opposite? " * 100})
    model = PromptSensitiveModel()
    result = optimize(antonym_task(), long_seed, model, metric=get_metric("exact"),
                      budget=Budget(calls=120), method=method, store=store,
                      proposer=ScriptedProposer(["x" * 5000, *GOOD_PROPOSALS]), seed=0)
    assert result.candidates[0].prompt == long_seed and result.candidates[0].origin == "seed"
    assert result.seed_validation == pytest.approx(result.candidates[0].mean())
    assert all(len(c.prompt.instruction) <= len(long_seed.instruction)
               for c in result.candidates)
    assert store.get_run(result.run_id)["status"] == "finished"


@pytest.mark.parametrize("method", BUILTINS)
def test_stops_cleanly_at_a_small_budget(method, store):
    result, _, events = run(method, store, calls=45)
    assert result.spend["calls"] <= 45
    assert any(name in ("budget exhausted", "search finished") for name, _ in events)


def test_a_budget_too_small_is_refused_before_any_call(store):
    from promptmill.errors import ConfigError

    model = PromptSensitiveModel()
    with pytest.raises(ConfigError, match="at least 40 calls"):
        run("fewshot", store, model=model, calls=25)
    assert model.requests == []
