"""The protocol around every search: the gate, resume after a kill, replay, bad input."""

import threading

import numpy as np
import pytest
from optimize_fakes import GOOD_PROPOSALS, PromptSensitiveModel, ScriptedProposer, antonym_task

from promptmill.errors import ConfigError
from promptmill.metrics import get_metric
from promptmill.models.base import Generation, Model
from promptmill.models.replay import CacheOnlyModel
from promptmill.optimize import AcceptanceGate, Budget, optimize
from promptmill.prompt import Prompt
from promptmill.task import Example, Task

SEED = Prompt(instruction="What is the opposite?", template="{{ input }}", name="antonyms")


def test_gate_rejects_a_gain_that_is_only_noise():
    rng = np.random.default_rng(0)
    incumbent = {str(i): float(v) for i, v in enumerate(rng.integers(0, 2, 40))}
    noisy = dict(incumbent)
    flipped = [k for k, v in incumbent.items() if v == 0][:3]  # 3 lucky wins, 1 loss
    for k in flipped:
        noisy[k] = 1.0
    noisy[next(k for k, v in incumbent.items() if v == 1)] = 0.0
    verdict = AcceptanceGate(alpha=0.05).judge(incumbent, noisy)
    assert not verdict.accepted and "not significant" in verdict.reason
    assert AcceptanceGate(enabled=False).judge(incumbent, noisy).accepted  # the switch works
    real = {k: 1.0 for k in incumbent}
    assert AcceptanceGate().judge(incumbent, real).accepted


def _run(store, model, on_event=None, resume=True):
    return optimize(antonym_task(), SEED, model, metric=get_metric("exact"),
                    budget=Budget(calls=200), method="fewshot", store=store,
                    proposer=ScriptedProposer(GOOD_PROPOSALS), on_event=on_event,
                    resume=resume)


def test_killed_optimization_resumes_without_recomputing(store, tmp_path):
    from promptmill.store.db import Store

    reference = _run(Store(f"sqlite:///{tmp_path / 'ref.db'}"), PromptSensitiveModel())

    def kill_after(n):
        seen = {"n": 0}

        def hook(event):
            seen["n"] += 1
            if seen["n"] > n:
                raise KeyboardInterrupt

        return hook

    first = PromptSensitiveModel()
    with pytest.raises(KeyboardInterrupt):
        _run(store, first, on_event=kill_after(2))
    killed_run = store.list_runs()[0]
    assert killed_run["kind"] == "optimize" and killed_run["status"] == "interrupted"
    calls_before_kill = len(first.requests)

    second = PromptSensitiveModel()
    resumed = _run(store, second)
    assert resumed.run_id == killed_run["id"]
    # The finished part came from the cache; only the rest (and the test split) was computed.
    assert resumed.spend["cache_hits"] >= calls_before_kill - 1
    assert [c.prompt.hash for c in resumed.candidates] == \
        [c.prompt.hash for c in reference.candidates]
    assert resumed.best_test.scores == reference.best_test.scores


def test_replay_reproduces_scores_from_cache_only(store):
    original = _run(store, PromptSensitiveModel())
    replayed = optimize(antonym_task(), SEED, CacheOnlyModel("fake-sensitive:sensitive"),
                        metric=get_metric("exact"), budget=Budget(calls=200),
                        method="fewshot", store=store,
                        proposer=CacheOnlyModel(ScriptedProposer(GOOD_PROPOSALS).identity),
                        resume=False)
    assert replayed.run_id != original.run_id
    assert [c.mean() for c in replayed.candidates] == [c.mean() for c in original.candidates]
    assert replayed.best_test.scores == original.best_test.scores


def test_too_few_examples_says_how_many_are_needed(store):
    tiny = Task("t", train=[Example("a", {"input": "x"}, "y")],
                validation=[Example("b", {"input": "x"}, "y")],
                test=[Example(str(i), {"input": "x"}, "y") for i in range(5)])
    with pytest.raises(ConfigError, match="validation split has 1 examples; optimizing needs "
                                          "at least 5"):
        optimize(tiny, SEED, PromptSensitiveModel(), metric=get_metric("exact"),
                 budget=Budget(calls=100), method="fewshot", store=store)


def test_budget_needs_a_limit_and_unknown_methods_fail():
    with pytest.raises(ConfigError, match="needs a budget"):
        Budget()
    from promptmill.optimize import get_optimizer

    with pytest.raises(ConfigError, match="unknown optimization method 'magic'"):
        get_optimizer("magic")


class _Recording(Model):
    """Passes calls to a model and keeps every generation it returned: the true counts."""

    def __init__(self, inner: Model):
        self.inner, self.identity = inner, inner.identity
        self.generations: list[Generation] = []
        self._lock = threading.Lock()

    def generate(self, request, params):
        generation = self.inner.generate(request, params)
        with self._lock:
            self.generations.append(generation)
        return generation


def test_the_ledger_records_input_and_output_tokens_apart(store):
    # The fakes report input and output tokens that differ (10 per task call, 50 per proposal),
    # so a ledger that sums them into one column, or drops one, cannot pass.
    model = _Recording(PromptSensitiveModel())
    proposer = _Recording(ScriptedProposer(GOOD_PROPOSALS))
    result = optimize(antonym_task(), SEED, model, metric=get_metric("exact"),
                      budget=Budget(calls=120), method="ape", store=store, proposer=proposer)
    made = model.generations + proposer.generations
    runs = [store.get_run(result.run_id), *store.child_runs(result.run_id)]  # search + test
    assert sum(r["calls"] for r in runs) == len(made)
    assert sum(r["tokens_in"] for r in runs) == sum(g.input_tokens for g in made)
    assert sum(r["tokens_out"] for r in runs) == sum(g.output_tokens for g in made)
    search = runs[0]
    assert search["tokens_out"] > 0 and search["tokens_in"] > search["tokens_out"]
    assert result.spend["fresh_tokens"] == search["tokens_in"] + search["tokens_out"]
