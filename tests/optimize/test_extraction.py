"""Extraction chosen on data (promptmill.optimize.extraction)."""

from __future__ import annotations

import pytest

from promptmill.extract import extract_answer
from promptmill.metrics import get_metric
from promptmill.optimize.extraction import (
    candidate_rules,
    choose_extractor,
    complexity,
    markers,
    score_rules,
)
from promptmill.task import Example

EXACT = get_metric("exact")
PAIRS = [("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow"), ("wet", "dry")]
TARGETS = [Example(f"e{i}", {"input": w}, a) for i, (w, a) in enumerate(PAIRS)]


def test_the_answer_on_the_last_line_picks_last_line():
    outputs = [f"Let me think about {w}.\n{a}" for w, a in PAIRS]
    assert choose_extractor(outputs, TARGETS, EXACT) == "last_line"


def test_the_answer_after_a_marker_the_outputs_use():
    outputs = [f"The word is {w}.\nIts opposite...\nAnswer: {a}\nHope this helps!"
               for w, a in PAIRS]
    assert "Answer:" in markers(outputs)
    assert choose_extractor(outputs, TARGETS, EXACT) == "after:Answer:"


def test_chatter_around_a_one_word_answer_picks_the_shape_regex():
    outputs = [f"The opposite of {w} is {a}." for w, a in PAIRS]
    rule = choose_extractor(outputs, TARGETS, EXACT)
    assert rule is not None and rule.startswith("regex:.*")  # the last word-shaped stretch
    assert [extract_answer(rule, o) for o in outputs] == [a for _, a in PAIRS]


def test_a_closed_label_set_picks_the_label_rule():
    labels = ["positive", "negative", "positive", "negative", "positive", "negative"]
    targets = [Example(str(i), {"input": f"review {i}"}, x) for i, x in enumerate(labels)]
    outputs = [f"I would say this review is clearly {x}, given its tone." for x in labels]
    rule = choose_extractor(outputs, targets, EXACT)
    assert rule == "label:negative|positive"


def test_clean_outputs_need_no_rule():
    outputs = [a for _, a in PAIRS]
    assert choose_extractor(outputs, TARGETS, EXACT) is None  # ties with raw text: keep raw


def test_no_rule_that_beats_the_raw_text_gives_none():
    outputs = ["I do not know."] * len(PAIRS)
    assert choose_extractor(outputs, TARGETS, EXACT) is None


def test_ties_go_to_the_simplest_rule():
    outputs = [f"{a}\n" for _, a in PAIRS]  # exact ignores the newline: raw already scores 1
    assert choose_extractor(outputs, TARGETS, EXACT) is None
    single = [f"  {a}  \n\n" for _, a in PAIRS]
    scores = score_rules(single, TARGETS, EXACT, ["regex:(cold)", "last_line", "first_line"])
    assert scores["first_line"] == scores["last_line"] == 1.0
    assert min(scores, key=lambda r: (-scores[r], complexity(r))) == "first_line"
    chatty = [f"{a}\nthat is all" for _, a in PAIRS]  # only the first line has the answer
    assert choose_extractor(chatty, TARGETS, EXACT, rules=["last_line", "regex:(\\w+)",
                                                         "first_line"]) == "first_line"


def test_given_rules_replace_the_derived_ones():
    outputs = [f"The opposite of {w} is {a}." for w, a in PAIRS]
    assert choose_extractor(outputs, TARGETS, EXACT, rules=["first_line"]) is None


def test_targets_may_be_plain_strings_and_the_metric_a_function():
    outputs = [f"Sure! {a}" for _, a in PAIRS]
    targets = [a for _, a in PAIRS]

    def same(prediction, example):
        return float(prediction == example.target)

    rule = choose_extractor(outputs, targets, same)
    assert [extract_answer(rule, o) for o in outputs] == targets


def test_markers_need_several_outputs():
    assert markers(["Answer: x", "y", "z", "w", "v"]) == []
    assert markers(["Final answer: x", "Final answer: y", "z"]) == ["Final answer:"]


def test_candidate_rules_start_simple_and_skip_labels_without_a_closed_set():
    rules = candidate_rules(["a"] * len(PAIRS), TARGETS)
    assert rules[:2] == ["first_line", "last_line"]
    assert not any(r.startswith("label:") for r in rules)
    assert any(r.startswith("regex:") for r in rules)


def test_outputs_and_targets_must_pair_up():
    with pytest.raises(ValueError, match="2 outputs for 5 targets"):
        choose_extractor(["a", "b"], TARGETS, EXACT)
    assert choose_extractor([], [], EXACT) is None
    assert choose_extractor([None] * len(PAIRS), TARGETS, EXACT) is None  # failed calls
