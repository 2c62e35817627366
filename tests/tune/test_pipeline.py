"""Prompt -> tune -> re-optimize, each stage on test; and augmentation's effect on validation."""

from __future__ import annotations

import pytest
from helpers import run_main
from tune_helpers import loaded, write_task

from promptmill.tune.settings import TuneSettings

pytestmark = pytest.mark.tune


def test_the_pipeline_reports_every_stage_on_test(tmp_path, store, tiny_model_dir):
    from promptmill.tune.pipeline import run_pipeline
    from promptmill.tune.registry import get_adapter

    config = write_task(tmp_path, model=f"hf:{tiny_model_dir}",
                        splits={"train": 12, "validation": 6, "test": 6, "seed": 0})
    task, prompt, metric, params = loaded(config)
    rows = run_pipeline(task, prompt, metric, name="pipe", base=str(tiny_model_dir),
                        store=store, params=params, budget_calls=12,
                        settings=TuneSettings(max_steps=2, batch_size=6, max_length=32))
    assert [r["stage"] for r in rows] == ["seed", "optimized prompt",
                                          "optimized prompt + tuned",
                                          "re-optimized prompt + tuned"]
    assert rows[0]["model"] == rows[1]["model"] == f"hf:{tiny_model_dir}"
    assert rows[2]["model"] == rows[3]["model"] == "tuned:pipe"
    assert all(0.0 <= r["test"] <= 1.0 and 0.0 <= r["p_vs_seed"] <= 1.0 for r in rows)
    assert get_adapter(store, "pipe")["config"]["prompt_hash"] == rows[2]["prompt_hash"]
    test_runs = [r for r in store.list_runs(limit=100) if r["split"] == "test"]
    assert {r["model"] for r in test_runs} >= {f"hf:{tiny_model_dir}", "tuned:pipe"}


def test_augment_writes_data_and_reports_both_validation_scores(tiny_task, tiny_model_dir,
                                                                tmp_path, capsys):
    out = tmp_path / "augmented.jsonl"
    code, text = run_main(["tune", "augment", tiny_task, "--out", out, "--rules", "case,punct",
                           "--compare", "--max-steps", "1"], capsys)
    assert code in (0, None), text
    lines = out.read_text().splitlines()
    assert "12 -> " in text and len(lines) > 12
    assert "validation: plain " in text and "augmented " in text
