"""The llm_judge metric: a model grades the response against a rubric."""

from __future__ import annotations

import pytest
from metric_helpers import ex

from promptmill.errors import ConfigError, PromptmillError
from promptmill.metrics import Score, get_metric, parse_judge_score
from promptmill.models.fake import FakeModel


@pytest.mark.parametrize(("text", "grade"), [
    ("Good answer.\nScore: 5", 5),
    ("score of 4 out of 5", 4),
    ("Reasoning here. **Score:** 2/5", 2),
    ("A score of 5 needs more.\nScore: 3", 3),
    ("Mostly right.\n4", 4),
    ("Score: 10", None),
    ("I refuse.", None),
])
def test_parse_judge_score(text, grade):
    assert parse_judge_score(text) == grade


def judge_metric(reply: str, **params):
    judge = FakeModel(default=reply)
    return judge, get_metric("llm_judge", {"rubric": "Correct and concise.", "judge_model": judge,
                                           **params})


def test_llm_judge_maps_the_grade_and_keeps_the_reasoning():
    judge, metric = judge_metric("Good answer.\nScore: 5")
    result = metric.score("Paris", ex("Paris", question="Capital of France?"))
    assert result == Score(1.0, "judge 5/5: Good answer.")
    assert judge.calls == 1
    _, metric = judge_metric("Reason: Wrong city.\nScore: 2")
    assert metric.score("Lyon", ex("Paris")) == Score(0.25, "judge 2/5: Wrong city.")


def test_llm_judge_prompt_shows_rubric_input_references_and_response():
    seen: list[str] = []
    judge = FakeModel(fn=lambda text: seen.append(text) or "Score: 3")
    metric = get_metric("llm_judge", {"rubric": "Names the capital.", "judge_model": judge})
    metric.score("Lyon", ex("Paris", "paris", question="Capital of France?"))
    prompt = seen[0]
    for part in ("Names the capital.", "Capital of France?", "- Paris", "Lyon", "Score: <1 to 5"):
        assert part in prompt


def test_llm_judge_without_a_score():
    _, metric = judge_metric("I am not sure about this one.")
    result = metric.score("x", ex("y"))
    assert result.value == 0.0
    assert result.feedback == "judge gave no score: 'I am not sure about this one.'"


def test_llm_judge_needs_a_rubric():
    with pytest.raises(ConfigError, match="needs a 'rubric'"):
        get_metric("llm_judge", {"rubric": " "})


def test_llm_judge_loads_its_model_from_a_spec_once():
    metric = get_metric("llm_judge", {"rubric": "r", "model": "fake:Fine.\nScore: 4"})
    assert metric.score("a", ex("a")).value == pytest.approx(0.75)
    first = metric.judge()
    metric.score("b", ex("b"))
    assert metric.judge() is first


def test_llm_judge_failure_is_an_error_not_a_zero():
    judge = FakeModel(default="Score: 5", fail_on="boom")
    metric = get_metric("llm_judge", {"rubric": "r", "judge_model": judge})
    with pytest.raises(PromptmillError, match="the judge model failed"):
        metric.score("boom", ex("x"))


@pytest.mark.slow
@pytest.mark.real_model
def test_llm_judge_with_the_embedded_model():
    from promptmill.errors import ModelError

    metric = get_metric("llm_judge", {"rubric": "The answer names the correct capital city.",
                                      "model": "embedded", "model_params": {"n_ctx": 1024},
                                      "max_tokens": 48})
    try:
        result = metric.score("Paris", ex("Paris", question="What is the capital of France?"))
    except ModelError as exc:
        pytest.skip(f"embedded model unavailable: {exc}")
    assert 0.0 <= result.value <= 1.0
    assert result.feedback  # either the reasoning or "judge gave no score: ..."
    assert metric.judge().identity
