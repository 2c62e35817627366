"""Training on the real embedded model and on a tiny one: loss, checkpoints, resume, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from tune_helpers import loaded

from promptmill.tune.settings import TuneSettings

pytestmark = pytest.mark.tune


def _tune(config, name, base, store, **settings):
    from promptmill.tune.train import tune

    task, prompt, metric, params = loaded(config)
    return tune(task, prompt, metric, name=name, base=base, store=store, params=params,
                settings=TuneSettings(**settings), threads=1)


@pytest.mark.real_model
@pytest.mark.slow
@pytest.mark.parametrize("method,lr", [("lora", 1e-3), ("prompt-tuning", 3e-2)])
def test_a_few_steps_on_the_embedded_model_lower_the_training_loss(letters_task, store,
                                                                    embedded_base, method, lr):
    from promptmill.tune.registry import get_adapter

    result = _tune(letters_task, f"real-{method}", "embedded", store, method=method,
                   learning_rate=lr, max_steps=3, batch_size=4, max_length=48, epochs=1,
                   virtual_tokens=8)
    assert result.steps == 3
    assert result.final_loss < result.initial_loss - 0.5, (result.initial_loss,
                                                           result.final_loss)
    row = get_adapter(store, f"real-{method}")
    assert row["status"] == "finished" and row["method"] == method
    assert row["metrics"]["steps"] == 3 and row["metrics"]["history"]
    assert (Path(row["path"]) / "best" / "adapter_model.safetensors").exists()
    assert 0 < result.peak_rss_mb < 8000


def test_prefix_tuning_trains_and_validates_per_epoch(tiny_task, store, tiny_model_dir):
    result = _tune(tiny_task, "tiny-prefix", str(tiny_model_dir), store, method="prefix",
                   learning_rate=1e-2, epochs=2, batch_size=4, max_length=32, patience=0,
                   virtual_tokens=4)
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert all(0.0 <= h["validation"] <= 1.0 for h in result.history)
    assert result.steps == 6  # 12 training examples / batch 4, two epochs
    assert result.final_loss < result.initial_loss


def test_early_stopping_keeps_the_best_epoch(tiny_task, store, tiny_model_dir, monkeypatch):
    from promptmill.tune import train

    scores = iter([0.5, 0.25, 0.25, 0.9])
    monkeypatch.setattr(train._Loop, "validate", lambda self: next(scores))
    result = _tune(tiny_task, "tiny-stop", str(tiny_model_dir), store, epochs=4, batch_size=6,
                   max_length=32, patience=2)
    assert result.stopped_early and [h["validation"] for h in result.history] == [0.5, 0.25,
                                                                                   0.25]
    assert result.best_epoch == 1 and result.best_score == 0.5


def test_an_interrupted_run_resumes_from_its_last_checkpoint(tiny_task, store,
                                                             tiny_model_dir):
    from promptmill.tune.registry import get_adapter
    from promptmill.tune.train import tune

    task, prompt, metric, params = loaded(tiny_task)
    settings = TuneSettings(epochs=3, batch_size=4, max_length=32, patience=0)

    def killed(epoch, score):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tune(task, prompt, metric, name="tiny-kill", base=str(tiny_model_dir), store=store,
             params=params, settings=settings, on_epoch=killed)
    assert get_adapter(store, "tiny-kill")["status"] == "interrupted"
    resumed = tune(task, prompt, metric, name="tiny-kill", base=str(tiny_model_dir),
                   store=store, params=params, settings=settings)
    assert resumed.resumed_at_step == 3  # one epoch of 12 examples at batch 4
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3] and resumed.steps == 9
    assert get_adapter(store, "tiny-kill")["status"] == "finished"


def test_a_checkpoint_resumes_to_the_same_weights_as_an_unbroken_run(tiny_task, store,
                                                                     tiny_model_dir):
    from promptmill.tune.train import tune

    task, prompt, metric, params = loaded(tiny_task)
    common = dict(batch_size=4, max_length=32, patience=0, dropout=0.0, epochs=1)
    whole = tune(task, prompt, metric, name="whole", base=str(tiny_model_dir), store=store,
                 params=params, settings=TuneSettings(**common))
    tune(task, prompt, metric, name="split", base=str(tiny_model_dir), store=store,
         params=params, settings=TuneSettings(**common, max_steps=1))
    resumed = tune(task, prompt, metric, name="split", base=str(tiny_model_dir), store=store,
                   params=params, settings=TuneSettings(**common, max_steps=3))
    assert resumed.resumed_at_step == 1 and resumed.steps == whole.steps == 3
    assert resumed.losses == pytest.approx(whole.losses, rel=1e-4)


def test_other_settings_under_an_existing_name_are_refused(tiny_task, store, tiny_model_dir):
    from promptmill.tune.errors import TuneError

    _tune(tiny_task, "tiny-same", str(tiny_model_dir), store, max_steps=1, batch_size=4,
          max_length=32)
    with pytest.raises(TuneError, match="already exists with other settings.*--fresh"):
        _tune(tiny_task, "tiny-same", str(tiny_model_dir), store, max_steps=1, batch_size=4,
              max_length=32, rank=4)


def test_a_task_without_a_train_split_is_refused(tmp_path, store):
    from tune_helpers import write_task

    from promptmill.tune.errors import TuneError

    config = write_task(tmp_path, splits={"train": 0, "validation": 4, "test": 8})
    with pytest.raises(TuneError, match="splits.train: .*no training examples"):
        _tune(config, "none", "embedded", store)


def test_running_out_of_memory_is_explained(tiny_task, store, tiny_model_dir, monkeypatch):
    from promptmill.tune import data
    from promptmill.tune.errors import TuneError
    from promptmill.tune.registry import get_adapter

    def no_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't "
                           "allocate memory: you tried to allocate 9999999999 bytes")

    monkeypatch.setattr(data, "collate", no_memory)
    with pytest.raises(TuneError) as info:
        _tune(tiny_task, "tiny-oom", str(tiny_model_dir), store, batch_size=4, max_length=32)
    message = info.value.one_line()
    assert "out of memory at batch size 4" in message and "--grad-accum" in message
    assert get_adapter(store, "tiny-oom")["status"] == "failed"


def test_training_text_has_the_demos_evaluation_would_retrieve(tiny_task, store,
                                                               embedded_base):
    from promptmill.evaluation import Evaluator
    from promptmill.prompt import DemoSelection
    from promptmill.tune.data import IGNORE, encode_all

    task, prompt, metric, params = loaded(tiny_task)
    retrieving = prompt.model_copy(update={"demo_selection": DemoSelection(k=2,
                                                                            method="random")})
    renderer = Evaluator(None, metric, store, params=params, demo_pool=task.train)
    tokenizer = embedded_base.tokenizer
    sequences = encode_all(tokenizer, lambda ex: renderer.render(retrieving, ex), task.train,
                           max_length=256)
    for ex, seq in zip(task.train, sequences, strict=True):
        shown = tokenizer.decode([t for t, label in zip(seq.input_ids, seq.labels, strict=True)
                                  if label == IGNORE])
        others = [o for o in task.train if o.id != ex.id and f"\n{o.inputs['input']}<" in shown]
        assert len(others) == 2 and shown.count(f"\n{ex.inputs['input']}<") == 1
        assert tokenizer.decode([t for t in seq.labels if t != IGNORE]) == ex.target + "<|im_end|>"
