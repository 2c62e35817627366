"""Text metrics: exact, contains, regex, numeric, choice, token F1."""

from __future__ import annotations

import pytest
from metric_helpers import ex, score

from promptmill.errors import ConfigError
from promptmill.metrics import get_metric, last_number

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


# --- token F1 ---------------------------------------------------------------------------------


def test_f1_is_squad_token_f1_with_missing_and_extra_words():
    assert score("f1", "the Eiffel Tower", ex("Eiffel Tower")).value == 1.0
    result = score("f1", "tall Eiffel", ex("Eiffel Tower"))
    assert result.value == pytest.approx(0.5)
    assert result.feedback == "token F1 0.50 against 'Eiffel Tower'; missing: tower; extra: tall"


def test_f1_takes_the_best_accepted_answer():
    assert score("f1", "Big Apple", ex("New York City", "the Big Apple")).value == 1.0
    assert score("f1", "", ex("x")).value == 0.0


# --- word set ---------------------------------------------------------------------------------


def test_word_set_ignores_order_repeats_case_and_punctuation():
    assert score("word_set", "Tiger, lion and cat.", ex("cat lion tiger and")).value == 1.0
    assert score("word_set", "cat cat lion", ex("lion cat")).value == 1.0
    assert score("word_set", "lion", ex("dog", "lion")).value == 1.0


def test_word_set_names_the_missing_and_the_extra_words():
    result = score("word_set", "cat dog", ex("cat lion"))
    assert result.value == 0.0
    assert result.feedback == "expected 'cat lion', got 'cat dog'; missing: lion; extra: dog"
    assert score("word_set", "", ex("cat")).value == 0.0
