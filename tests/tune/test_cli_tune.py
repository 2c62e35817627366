"""End to end through the CLI: tune, evaluate the tuned model, compare, list; bad input."""

from __future__ import annotations

import re

import pytest
from helpers import run_main, run_main_streams

pytestmark = pytest.mark.tune

NOTE = ("note: 'promptmill tune CONFIG' is deprecated and goes in the next release; use "
        "'promptmill tune run CONFIG'\n")


def _run_ids(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"promptmill show (\d+)", text)]


@pytest.mark.real_model
@pytest.mark.slow
def test_tune_evaluate_and_compare_on_the_embedded_model(letters_task, capsys,
                                                         embedded_base):
    code, out = run_main(["tune", "run", letters_task, "--method", "lora", "--name", "letters-lora",
                          "--lr", "2e-3", "--max-steps", "6", "--batch-size", "4",
                          "--max-length", "48", "--quiet"], capsys)
    assert code in (0, None), out
    assert "Adapter letters-lora (lora)" in out and "peak memory" in out
    loss = re.search(r"loss ([\d.]+) -> ([\d.]+)", out)
    assert loss and float(loss.group(2)) < float(loss.group(1))

    code, base_out = run_main(["eval", letters_task, "--model", "hf:embedded", "-q"], capsys)
    assert code in (0, None), base_out
    code, tuned_out = run_main(["eval", letters_task, "--model", "tuned:letters-lora", "-q"],
                               capsys)
    assert code in (0, None), tuned_out
    base_run, tuned_run = _run_ids(base_out)[-1], _run_ids(tuned_out)[-1]
    code, cmp_out = run_main(["compare", base_run, tuned_run], capsys)
    assert code in (0, None) and f"Verdict (run {tuned_run} vs run {base_run})" in cmp_out

    code, listed = run_main(["tune", "list"], capsys)
    assert "letters-lora" in listed and "finished" in listed


def test_cli_errors_are_one_line(tmp_path, capsys):
    from tune_helpers import write_task

    config = write_task(tmp_path, splits={"train": 0, "validation": 4, "test": 8})
    code, out = run_main(["tune", "run", config], capsys)
    assert code == 2 and "error: splits.train: task 'letters' has no training examples" in out
    assert "Traceback" not in out
    code, out = run_main(["tune", "run", config, "--method", "adapter"], capsys)
    assert code == 2 and "--method: unknown tuning method 'adapter'" in out
    code, out = run_main(["eval", config, "--model", "tuned:ghost"], capsys)
    assert code == 2 and "no adapter named 'ghost'" in out


def test_the_old_tune_form_is_tune_run_with_a_note(tmp_path, capsys):
    from tune_helpers import write_task

    config = write_task(tmp_path, splits={"train": 0, "validation": 4, "test": 8})
    for new, old in ((["tune", "run", config], ["tune", config]),
                     (["tune", "run", config, "--method", "adapter"],
                      ["tune", "--method", "adapter", config])):
        code, out, err = run_main_streams(new, capsys)
        assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error: ")
        assert run_main_streams(old, capsys) == (code, out, NOTE + err)



def test_exporting_a_gguf_without_llama_cpp_says_how_to_get_it(tiny_task, tiny_model_dir,
                                                               capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("LLAMA_CPP_DIR", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    code, out = run_main(["tune", "run", tiny_task, "--name", "tiny", "--base", str(tiny_model_dir),
                          "--max-steps", "1", "--batch-size", "4", "--max-length", "32", "-q"],
                         capsys)
    assert code in (0, None), out
    code, out = run_main(["tune", "export", "tiny", "--out", tmp_path / "merged", "--gguf"],
                         capsys)
    assert "merged model saved to" in out
    assert code == 2 and "convert_hf_to_gguf.py was not found" in out and "LLAMA_CPP_DIR" in out
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    assert not any("lora" in n for n, _ in merged.named_parameters())
