"""The promptfoo-style metrics (promptmill.metrics.assertions), through the registry."""

from __future__ import annotations

import random

import pytest
from metric_helpers import ex, score

from promptmill.errors import ConfigError
from promptmill.metrics import Metric, Score, get_metric
from promptmill.metrics.assertions import bounded_levenshtein, json_values
from promptmill.metrics.base import MetricError
from promptmill.models import Generation


def test_equals_is_exact_not_normalized():
    assert score("equals", "Paris", ex("Paris")).value == 1.0
    failed = score("equals", "Paris.", ex("Paris"))
    assert failed.value == 0.0
    assert failed.feedback == "expected exactly 'Paris'; the output was 'Paris.'"
    assert score("equals", "paris", ex("Paris")).value == 0.0


def test_equals_as_json_compares_values_not_text():
    metric = get_metric("equals", {"as_json": True})
    assert metric.score('{"b": [1, 2], "a": 1}', ex('{"a": 1, "b": [1, 2]}')).value == 1.0
    assert metric.score('{"a": 2}', ex('{"a": 1}')).value == 0.0
    not_json = metric.score("a: 1", ex('{"a": 1}'))
    assert not_json.value == 0.0 and "not JSON" in not_json.feedback


def test_substring_any_all_and_case():
    assert score("substring", "The capital is Paris.", ex("Paris")).value == 1.0
    # raw substrings, unlike the word-level `contains` metric
    assert score("substring", "Parisian food", ex("Paris")).value == 1.0
    assert score("substring", "paris", ex("Paris")).value == 0.0
    assert score("substring", "paris", ex("Paris"), ignore_case=True).value == 1.0
    assert score("substring", "red and blue", ex("green", "blue")).value == 1.0
    all_of = score("substring", "red and blue", ex("red", "blue", "green"), require="all")
    assert all_of.value == 0.0 and "missing 'green'" in all_of.feedback
    assert score("substring", "red, blue, green", ex("red", "blue", "green"),
                 require="all").value == 1.0


def test_substring_says_what_was_expected_and_what_came():
    failed = score("substring", "London is the capital of England " * 10, ex("Paris"))
    assert failed.feedback.startswith("expected to contain 'Paris'; the output was 'London is")
    assert failed.feedback.endswith("...'")  # a long output is clipped


def test_substring_rejects_an_unknown_rule():
    with pytest.raises(ConfigError, match="'require' must be 'any' or 'all'"):
        get_metric("substring", {"require": "most"})


def test_starts_with():
    assert score("starts_with", "Yes, it is.", ex("Yes")).value == 1.0
    failed = score("starts_with", "Well, yes.", ex("Yes"))
    assert failed.value == 0.0 and "expected to start with 'Yes'" in failed.feedback


def test_json_values_finds_the_objects_in_prose():
    found = json_values('Here: {"a": {"b": 1}} and [2, 3]; not {this}. {"c": 2}')
    assert found == [({"a": {"b": 1}}, '{"a": {"b": 1}}'), ({"c": 2}, '{"c": 2}')]
    assert json_values("see [1] for details") == []  # arrays are prose here, as in promptfoo


def test_contains_json_with_and_without_a_schema():
    assert score("contains_json", 'Sure! {"name": "Ada"} Hope that helps.', ex()).value == 1.0
    none = score("contains_json", "just words", ex())
    assert none.value == 0.0 and "found none" in none.feedback
    schema = {"type": "object", "required": ["age"]}
    metric = get_metric("contains_json", {"schema": schema})
    assert metric.score('x {"name": "Ada"} y {"age": 3}', ex()).value == 1.0
    wrong = metric.score('x {"name": "Ada"}', ex())
    assert wrong.value == 0.0 and "'age' is a required property" in wrong.feedback


def _levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[-1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def test_bounded_levenshtein_agrees_with_the_full_table():
    rng = random.Random(7)
    for _ in range(500):
        a = "".join(rng.choice("abc") for _ in range(rng.randint(0, 12)))
        b = "".join(rng.choice("abc") for _ in range(rng.randint(0, 12)))
        limit = rng.randint(0, 6)
        assert bounded_levenshtein(a, b, limit) == min(_levenshtein(a, b), limit + 1), (a, b)


def test_levenshtein_passes_within_the_allowed_edits():
    assert score("levenshtein", "kitten", ex("sitting"), max_distance=3).value == 1.0
    failed = score("levenshtein", "kitten", ex("sitting"), max_distance=2)
    assert failed.value == 0.0 and "at most 2 edits from 'sitting'" in failed.feedback
    with pytest.raises(ConfigError, match="'max_distance' must be a whole number"):
        get_metric("levenshtein", {"max_distance": -1})


def test_latency_and_cost_judge_the_call():
    fast, slow = Generation("x", seconds=0.2), Generation("x", seconds=2.5)
    latency = get_metric("latency", {"max_ms": 1000})
    assert latency.score_call("x", ex(), fast).value == 1.0
    late = latency.score_call("x", ex(), slow)
    assert late.value == 0.0 and late.feedback == ("expected at most 1000 ms; the call took "
                                                   "2500 ms")
    cost = get_metric("cost", {"max_tokens": 100})
    assert cost.score_call("x", ex(), Generation("x", input_tokens=60, output_tokens=40)
                           ).value == 1.0
    over = cost.score_call("x", ex(), Generation("x", input_tokens=60, output_tokens=41))
    assert over.value == 0.0 and "the call took 101 tokens" in over.feedback


def test_latency_without_a_call_fails_and_says_why():
    result = get_metric("latency", {"max_ms": 1000}).score("x", ex())
    assert result.value == 0.0 and "no model call to measure" in result.feedback


def test_ceilings_must_be_positive():
    with pytest.raises(ConfigError, match="'max_ms' must be a number of milliseconds"):
        get_metric("latency", {"max_ms": 0})
    with pytest.raises(ConfigError, match="bad parameters for metric 'cost'"):
        get_metric("cost", {})


def test_score_call_falls_back_to_the_checked_score():
    class Broken(Metric):
        name = "broken"

        def score(self, prediction, example):
            return Score(1.5)

    with pytest.raises(MetricError, match="outside"):
        Broken().score_call("x", ex(), None)


def test_an_overridden_score_call_is_range_checked_too():
    class BrokenCall(Metric):
        name = "broken-call"

        def score(self, prediction, example):
            return Score(1.0)

        def score_call(self, prediction, example, generation):
            return Score(float("nan"))

    with pytest.raises(MetricError, match="nan"):
        BrokenCall().score_call("x", ex(), None)
