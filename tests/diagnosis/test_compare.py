import pytest

from promptmill.diagnosis.compare import compare_runs, holm, output_diff, prompt_changes
from promptmill.errors import PromptmillError
from promptmill.evaluation import Evaluator
from promptmill.metrics import get_metric
from promptmill.models.base import GenerationParams
from promptmill.models.fake import FakeModel
from promptmill.prompt import Demo, Prompt
from promptmill.task import Example

EXAMPLES = [Example(str(i), {"input": f"q{i}"}, "yes") for i in range(30)]


def _run(store, prompt, right: int, max_tokens=8):
    model = FakeModel(fn=lambda t: "yes" if int(t[1:]) < right else "no", name=f"r{right}")
    evaluator = Evaluator(model, get_metric("exact"), store, progress=False,
                          params=GenerationParams(max_tokens=max_tokens))
    return evaluator.evaluate(EXAMPLES, prompt, task="t", prompt_name="p").run_id


def test_three_runs_side_by_side_with_holm_and_prompt_changes(store):
    base = Prompt(instruction="Answer.")
    better = Prompt(instruction="Answer yes or no.", demos=(Demo(inputs={"input": "a"},
                                                                  output="yes"),))
    a = _run(store, base, 5)
    b = _run(store, better, 28, max_tokens=16)
    c = _run(store, base.model_copy(update={"extract": "first_line"}), 6)
    result = compare_runs([a, b, c], store=store)
    assert result.n == 30 and [r["id"] for r in result.runs] == [a, b, c]
    assert result.runs[1]["mean"] == pytest.approx(28 / 30)
    test_b, test_c = result.tests
    assert test_b["significant"] and test_b["p_adjusted"] >= test_b["p_value"]
    assert f"run {b} is better" in test_b["verdict"]
    assert not test_c["significant"]
    changes_b = result.changes[0]
    assert any(line.startswith("instruction:") for line in changes_b["prompt"])
    assert "demos: 0 → 1" in changes_b["prompt"]
    assert any("params.max_tokens: 8 → 16" == s for s in changes_b["settings"])
    assert result.changes[1]["prompt"] == ['extract: null → "first_line"']
    assert result.n_differing == 23 and result.differing[0]["outputs"] == ["no", "yes", "yes"]
    assert result.differing[0]["inputs"] == "q5"


def test_compare_needs_two_runs_on_shared_examples(store):
    a = _run(store, Prompt(instruction="x"), 3)
    with pytest.raises(PromptmillError, match="at least two runs"):
        compare_runs([a], store=store)


def test_holm_and_output_diff():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert output_diff("the cat sat", "the dog sat") == "the [-cat-] {+dog+} sat"
    assert prompt_changes({"instruction": "a"}, {"instruction": "a"}) == []
