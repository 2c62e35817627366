"""Metrics: scores in [0, 1], feedback that says what was expected and what was wrong."""

from __future__ import annotations

import json

import pytest

from promptmill.errors import ConfigError, PromptmillError
from promptmill.metrics import (
    Metric,
    Score,
    available_metrics,
    get_metric,
    last_number,
    normalize,
    parse_judge_score,
    register_metric,
)
from promptmill.models.fake import FakeModel
from promptmill.task import Example


def ex(target: str | None = None, *answers: str, **inputs) -> Example:
    return Example(id="e1", inputs=inputs or {"input": "q"}, target=target, answers=answers)


def score(name: str, prediction: str, example: Example, **params) -> Score:
    return get_metric(name, params).score(prediction, example)


BUILT_INS = ["bleu", "choice", "chrf", "contains", "embedding", "exact", "f1", "json_schema",
             "json_valid", "llm_judge", "numeric", "regex", "rouge"]


def test_every_built_in_is_registered():
    assert set(BUILT_INS) <= set(available_metrics())


def test_normalize_is_squad_style():
    assert normalize("  The Eiffel-Tower! ") == "eiffeltower"


# --- exact, contains, regex -------------------------------------------------------------------


def test_exact_matches_any_accepted_answer_after_normalizing():
    example = ex("Paris", "City of Paris")
    assert score("exact", "paris.", example).value == 1.0
    assert score("exact", "The city of Paris", example).value == 1.0


def test_exact_failure_names_expected_and_got():
    result = score("exact", "London", ex("Paris"))
    assert result.value == 0.0
    assert result.feedback == "expected 'Paris', got 'London'"


def test_exact_keeps_single_letter_answers_apart():
    # "A" is an article, so plain SQuAD normalization would turn it into nothing.
    assert score("exact", "A", ex("A")).value == 1.0
    assert score("exact", "", ex("A")).value == 0.0
    assert score("exact", "B", ex("A")).value == 0.0


def test_exact_without_reference_scores_zero():
    assert score("exact", "x", ex(None)).feedback == "no reference answer for this example"


def test_contains_is_word_boundary_aware():
    example = ex("cat")
    assert score("contains", "I think it is a Cat.", example).value == 1.0
    result = score("contains", "a category error", example)
    assert result.value == 0.0
    assert "expected 'cat' somewhere in the output" in result.feedback


def test_contains_multi_word_answer():
    assert score("contains", "It's New York, of course", ex("new york")).value == 1.0
    assert score("contains", "new yorkshire", ex("new york")).value == 0.0


def test_regex_searches_with_flags():
    assert score("regex", "Answer: YES", ex(), pattern=r"\byes\b", flags="i").value == 1.0
    result = score("regex", "Answer: YES", ex(), pattern=r"\byes\b")
    assert result.value == 0.0
    assert "does not match the pattern" in result.feedback and "YES" in result.feedback


def test_bad_regex_names_the_pattern_and_a_fix():
    with pytest.raises(ConfigError) as err:
        get_metric("regex", {"pattern": "(unclosed"})
    message = str(err.value)
    assert "'(unclosed'" in message and "metric.params.pattern" in message and "Fix:" in message


def test_regex_needs_a_pattern_and_known_flags():
    with pytest.raises(ConfigError, match="bad parameters for metric 'regex'.*pattern"):
        get_metric("regex")
    with pytest.raises(ConfigError, match="unknown regex flag 'q'"):
        get_metric("regex", {"pattern": "x", "flags": "iq"})


# --- numeric ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [
    ("The answer is 42.", 42.0),
    ("from 3 to 1,234", 1234.0),
    ("it fell to -7.5 degrees", -7.5),
    ("pages 3-5", 5.0),
    ("about .5 of it", 0.5),
    ("1,2345", 2345.0),
    ("3e3 apples", 3000.0),
    ("no digits", None),
])
def test_last_number(text, value):
    found = last_number(text)
    assert (found[0] if found else None) == value


def test_numeric_compares_the_last_number():
    assert score("numeric", "5 + 7 = 12", ex("12")).value == 1.0
    assert score("numeric", "Total: $1,234", ex("1234")).value == 1.0
    assert score("numeric", "Total: 1234.0", ex("$1,234")).value == 1.0
    result = score("numeric", "I get 41", ex("42"))
    assert result.value == 0.0
    assert result.feedback == "expected 42, got 41 (the last number in the output)"


def test_numeric_tolerances():
    assert score("numeric", "3.14", ex("3.14159")).value == 0.0
    assert score("numeric", "3.14", ex("3.14159"), abs_tol=0.01).value == 1.0
    assert score("numeric", "101", ex("100"), rel_tol=0.02).value == 1.0
    with pytest.raises(ConfigError, match="'abs_tol' must be a number >= 0"):
        get_metric("numeric", {"abs_tol": "small"})


def test_numeric_without_a_number():
    result = score("numeric", "twelve", ex("12"))
    assert result.value == 0.0 and result.feedback.startswith("no number in the output")
    assert "the reference 'n/a' has no number" in score("numeric", "1", ex("n/a")).feedback


# --- choice -----------------------------------------------------------------------------------

SENTIMENT = ["positive", "negative", "neutral"]


def test_choice_maps_the_output_to_a_label():
    assert score("choice", "Positive.", ex("positive"), labels=SENTIMENT).value == 1.0
    assert score("choice", "The sentiment is positive", ex("positive"),
                 labels=SENTIMENT).value == 1.0


def test_choice_takes_the_label_found_first_in_the_output():
    metric = get_metric("choice", {"labels": SENTIMENT})
    assert metric.find_label("negative, not positive") == "negative"
    assert metric.find_label("positively") is None


def test_choice_feedback_tells_wrong_label_from_no_label():
    wrong = score("choice", "negative", ex("positive"), labels=SENTIMENT)
    assert wrong.value == 0.0 and wrong.feedback == "wrong label 'negative', expected 'positive'"
    none = score("choice", "I cannot tell", ex("positive"), labels=SENTIMENT)
    assert none.value == 0.0
    assert none.feedback.startswith("output is not one of the labels (positive, negative, ")


def test_choice_with_letter_labels():
    labels = ["A", "B", "C", "D"]
    assert score("choice", "B) Paris", ex("B"), labels=labels).value == 1.0
    assert score("choice", "(c)", ex("B"), labels=labels).feedback == \
        "wrong label 'C', expected 'B'"


def test_choice_needs_labels():
    with pytest.raises(ConfigError, match="'labels' must be a non-empty list"):
        get_metric("choice", {"labels": "positive,negative"})


# --- f1, bleu, chrf, rouge --------------------------------------------------------------------


def test_f1_is_squad_token_f1_with_missing_and_extra_words():
    assert score("f1", "the Eiffel Tower", ex("Eiffel Tower")).value == 1.0
    result = score("f1", "tall Eiffel", ex("Eiffel Tower"))
    assert result.value == pytest.approx(0.5)
    assert result.feedback == "token F1 0.50 against 'Eiffel Tower'; missing: tower; extra: tall"


def test_f1_takes_the_best_accepted_answer():
    assert score("f1", "Big Apple", ex("New York City", "the Big Apple")).value == 1.0
    assert score("f1", "", ex("x")).value == 0.0


@pytest.mark.parametrize("name", ["bleu", "chrf", "rouge"])
def test_similarity_metrics_rank_closer_outputs_higher(name):
    example = ex("the cat sat on the mat", "a dog barked")
    same = score(name, "the cat sat on the mat", example)
    close = score(name, "the cat sat on a mat", example)
    far = score(name, "stock prices rose sharply today", example)
    assert same.value == pytest.approx(1.0) and same.feedback is None
    assert 0.0 <= far.value < close.value < 1.0
    assert "against the closest reference 'the cat sat on the mat'" in close.feedback


def test_rouge_variants():
    assert score("rouge", "cat mat", ex("the cat on the mat"), variant="rouge2").value == 0.0
    with pytest.raises(ConfigError, match="unknown ROUGE variant 'rougeX'"):
        get_metric("rouge", {"variant": "rougeX"})


# --- JSON -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ['{"a": 1}', '  [1, 2]\n', '```json\n{"a": 1}\n```',
                                  '```\n{"a": 1}\n```'])
def test_json_valid_accepts_json_and_fenced_json(text):
    assert score("json_valid", text, ex()).value == 1.0


def test_json_valid_feedback_points_at_the_error():
    result = score("json_valid", '{"a": 1,}', ex())
    assert result.value == 0.0
    assert result.feedback.startswith("not valid JSON: Expecting property name")
    assert "line 1 column 9" in result.feedback


PERSON = {"type": "object", "required": ["name", "age"],
          "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}}


def test_json_schema_passes_valid_output():
    assert score("json_schema", '```json\n{"name": "Ada", "age": 36}\n```', ex(),
                 schema=PERSON).value == 1.0


def test_json_schema_feedback_names_the_violation_path():
    result = score("json_schema", '{"name": "Ada", "age": "old"}', ex(), schema=PERSON)
    assert result.value == 0.0
    assert result.feedback == "JSON does not match the schema at $.age: 'old' is not of type " \
                              "'integer'"
    missing = score("json_schema", '{"age": -1}', ex(), schema=PERSON)
    assert "(1 more violations)" in missing.feedback
    assert score("json_schema", "name: Ada", ex(), schema=PERSON).feedback.startswith(
        "not valid JSON")


def test_json_schema_from_a_file_relative_to_base_dir(tmp_path):
    (tmp_path / "person.json").write_text(json.dumps(PERSON))
    metric = get_metric("json_schema", {"schema": "person.json"}, base_dir=tmp_path)
    assert metric.score('{"name": "Ada", "age": 36}', ex()).value == 1.0
    with pytest.raises(ConfigError, match="JSON schema file not found"):
        get_metric("json_schema", {"schema": "missing.json"}, base_dir=tmp_path)


def test_invalid_json_schema_fails_at_construction():
    with pytest.raises(ConfigError, match="invalid JSON schema at type"):
        get_metric("json_schema", {"schema": {"type": "integr"}})


# --- llm_judge --------------------------------------------------------------------------------


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


# --- embedding --------------------------------------------------------------------------------


@pytest.mark.slow
def test_embedding_ranks_a_paraphrase_above_an_unrelated_sentence():
    pytest.importorskip("sentence_transformers")
    metric = get_metric("embedding")
    example = ex("The cat is sleeping on the sofa.")
    paraphrase = metric.score("A cat naps on the couch.", example)
    unrelated = metric.score("Interest rates rose by half a percent.", example)
    assert 0.0 <= unrelated.value < paraphrase.value <= 1.0
    assert "cosine similarity" in unrelated.feedback
    strict = get_metric("embedding", {"threshold": 0.5})
    assert strict.score("A cat naps on the couch.", example).value == 1.0
    below = strict.score("Interest rates rose by half a percent.", example)
    assert below.value == 0.0 and "below the threshold 0.5" in below.feedback


def test_embedding_threshold_is_checked():
    pytest.importorskip("sentence_transformers")
    with pytest.raises(ConfigError, match="'threshold' must be a number from -1 to 1"):
        get_metric("embedding", {"threshold": 5})


# --- python:FILE.py:FUNCTION ------------------------------------------------------------------

USER_METRICS = '''
from promptmill.metrics import Score

def starts_right(prediction, example):
    return prediction.startswith(example.target)

def graded(prediction, example):
    return (0.5, "half right")

def as_score(prediction, example):
    return Score(2.0, "too generous")

def length_ok(prediction, example, limit=5):
    return len(prediction) <= limit

def broken(prediction, example):
    return 1 / 0

def wrong_type(prediction, example):
    return "yes"
'''


@pytest.fixture
def metrics_file(tmp_path):
    path = tmp_path / "my_metrics.py"
    path.write_text(USER_METRICS)
    return path


def test_python_metric_return_kinds(metrics_file):
    example = ex("Par")
    assert score(f"python:{metrics_file}:starts_right", "Paris", example) == Score(1.0)
    assert score(f"python:{metrics_file}:graded", "x", example) == Score(0.5, "half right")
    assert score(f"python:{metrics_file}:as_score", "x", example) == Score(1.0, "too generous")


def test_python_metric_relative_to_base_dir_with_params(metrics_file, tmp_path, monkeypatch):
    metric = get_metric("python:my_metrics.py:length_ok", {"limit": 3}, base_dir=tmp_path)
    assert metric.score("abcd", ex()).value == 0.0
    monkeypatch.chdir(tmp_path)
    assert get_metric("python:my_metrics.py:length_ok").score("abcd", ex()).value == 1.0
    assert metric.describe() == f"python:{metrics_file}:length_ok"


def test_python_metric_missing_file_or_function(metrics_file, tmp_path):
    with pytest.raises(ConfigError, match="metric file not found.*'nope'") as err:
        get_metric("python:nowhere.py:nope", base_dir=tmp_path)
    assert str(tmp_path / "nowhere.py") in str(err.value)
    with pytest.raises(ConfigError, match="no function 'nope'.*starts_right"):
        get_metric(f"python:{metrics_file}:nope")
    with pytest.raises(ConfigError, match="write python:FILE.py:FUNCTION"):
        get_metric(f"python:{metrics_file}")


def test_python_metric_bad_params_or_import_error(metrics_file, tmp_path):
    with pytest.raises(ConfigError, match="cannot be called as starts_right"):
        get_metric(f"python:{metrics_file}:starts_right", {"limit": 3})
    bad = tmp_path / "bad.py"
    bad.write_text("import not_a_module_anywhere\n")
    with pytest.raises(ConfigError, match="importing the metric file failed.*ModuleNotFound"):
        get_metric(f"python:{bad}:f")


def test_python_metric_bugs_raise_errors_naming_the_function(metrics_file):
    with pytest.raises(PromptmillError, match=r"broken: the metric function raised "
                                              r"ZeroDivisionError"):
        score(f"python:{metrics_file}:broken", "x", ex())
    with pytest.raises(PromptmillError, match="wrong_type: the metric function returned 'yes'"):
        score(f"python:{metrics_file}:wrong_type", "x", ex())


# --- registry ---------------------------------------------------------------------------------


def test_unknown_metric_lists_the_known_ones():
    with pytest.raises(ConfigError) as err:
        get_metric("exactly")
    message = str(err.value)
    assert "unknown metric 'exactly'" in message
    assert "exact, f1" in message and "python:FILE.py:FUNCTION" in message


def test_wrong_parameter_names_are_config_errors():
    with pytest.raises(ConfigError, match="parameters of 'numeric' are: abs_tol, rel_tol"):
        get_metric("numeric", {"tolerance": 0.1})


def test_register_metric_and_base_dir_only_for_factories_that_take_it(tmp_path, monkeypatch):
    import promptmill.metrics

    monkeypatch.setattr(promptmill.metrics, "_REGISTRY", dict(promptmill.metrics._REGISTRY))

    class Always(Metric):
        name = "always"

        def score(self, prediction, example):
            return Score(1.0)

    register_metric("always", Always)
    assert get_metric("always", base_dir=tmp_path).score("x", ex()).value == 1.0
    assert "always" in available_metrics()
