"""Optuna search: trials train adapters, the study lives in the store and resumes after a kill."""

from __future__ import annotations

import pytest
from tune_helpers import loaded

from promptmill.tune.settings import TuneSettings

pytestmark = pytest.mark.tune


def _search(config, store, tiny_model_dir, trials):
    from promptmill.tune.search import search

    task, prompt, metric, params = loaded(config)
    return search(task, prompt, metric, method="lora", base=str(tiny_model_dir), store=store,
                  trials=trials, max_epochs=2, study_name="study", params=params,
                  fixed=TuneSettings(batch_size=6, max_length=32, patience=0))


def test_a_study_resumes_after_a_kill(tiny_task, store, tiny_model_dir):
    import optuna

    from promptmill.store.db import Store
    from promptmill.tune.registry import find_adapter
    from promptmill.tune.search import storage

    first = _search(tiny_task, store, tiny_model_dir, trials=2)
    assert [t["state"] for t in first.trials] == ["COMPLETE", "COMPLETE"]
    assert first.best_adapter and find_adapter(store, first.best_adapter)["status"] == "finished"

    # A process killed mid-trial leaves that trial RUNNING in the database.
    study = optuna.load_study(study_name="study", storage=storage(store))
    study.ask()
    reopened = Store(store.url)  # promptmill's own schema still opens beside Optuna's tables
    resumed = _search(tiny_task, reopened, tiny_model_dir, trials=3)
    assert resumed.failed_stale == 1
    states = [t["state"] for t in resumed.trials]
    assert states.count("COMPLETE") + states.count("PRUNED") == 3 and states[2] == "FAIL"
    assert [t["params"] for t in resumed.trials[:2]] == [t["params"] for t in first.trials]
    again = _search(tiny_task, reopened, tiny_model_dir, trials=3)
    assert len(again.trials) == len(resumed.trials)  # nothing left to do


def test_suggestions_stay_in_the_method_space():
    import optuna

    from promptmill.tune.search import SPACES, suggest

    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1)).ask()
    settings = suggest(trial, "prompt-tuning", TuneSettings(), max_epochs=3)
    low, high = SPACES["prompt-tuning"]["learning_rate"]
    assert settings.method == "prompt-tuning" and low <= settings.learning_rate <= high
    assert settings.virtual_tokens in SPACES["prompt-tuning"]["virtual_tokens"]
    assert 1 <= settings.epochs <= 3
