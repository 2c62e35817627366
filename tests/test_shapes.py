"""Output shapes inferred from training answers (promptmill.shapes)."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promptmill.constrain import OutputSpec
from promptmill.shapes import LINE, RELATIONAL, common_affixes, grammar_shape, infer_shapes
from promptmill.task import Example


def examples(targets, inputs=None):
    return [Example(str(i), {"input": inputs[i] if inputs else f"input {i}"}, t)
            for i, t in enumerate(targets)]


def names(targets, inputs=None):
    return [s.name for s in infer_shapes(examples(targets, inputs))]


@pytest.mark.parametrize("targets, first", [
    (["a", "q", "z"], "one-lowercase-letter"),
    (["A", "q", "Z"], "one-letter"),
    (["3", "0", "9"], "one-digit"),
    (["a", "?", "7"], "one-character"),
    (["12", "007", "3"], "digits"),
    (["12", "-3", "7"], "integer"),
    (["1.5", "-3", "2,000"], "number"),
    (["cold", "small", "well-known"], "one-lowercase-word"),
    (["Paris", "Rome", "Oslo"], "one-capitalized-word"),
    (["COLD", "SMALL", "DOWN"], "one-uppercase-word"),
    (["Cold", "small", "DOWN"], "one-word"),
    (["word1", "word22", "x"], "one-lowercase-token"),
    (["a b c", "d e", "f"], "spaced-lowercase-letters"),
    (["A b ?", "d e", "f"], "spaced-characters"),
    (["red car", "blue", "a big dog"], "at-most-3-lowercase-words"),
    (["Red car", "blue", "a big dog"], "at-most-3-words"),
])
def test_the_most_specific_shape_comes_first(targets, first):
    found = infer_shapes(examples(targets))
    assert found[0].name == first
    assert all(re.fullmatch(found[0].pattern, t) for t in targets)


def test_less_specific_shapes_follow_and_every_one_holds():
    found = names(["a", "q", "z"])
    assert found[:3] == ["one-lowercase-letter", "one-letter", "one-character"]
    assert found.index("one-lowercase-word") < found.index("one-line") < found.index("lowercase")


def test_a_set_with_no_common_shape_gives_nothing():
    assert names(["a", "Hello there\nsecond line", "12"]) == []
    assert names(["x" * 3000, "Y\nz", "ok"]) == []


def test_a_mixed_set_keeps_only_what_all_share():
    found = names(["cold", "New York", "12"])
    assert "one-word" not in found and "integer" not in found
    assert found[0] == "at-most-2-words" and "one-line" in found
    assert "lowercase" not in found  # "New York" has capitals


def test_too_few_answers_say_nothing():
    assert names(["a", "b"]) == []
    assert names(["a", "b", None, ""]) == []  # missing and empty targets do not count


def test_a_fixed_prefix_and_suffix_wrap_the_inner_shape():
    found = infer_shapes(examples(["Answer: 12", "Answer: 15", "Answer: 7"]))
    assert found[0].name == "prefixed-digits"
    assert 'Begin the answer with "Answer:".' in found[0].note
    assert re.fullmatch(found[0].pattern, "Answer: 40")
    assert not re.fullmatch(found[0].pattern, "The answer is 40")
    assert names(["cats.", "dogs.", "a bird."])[0] == "suffixed-at-most-2-lowercase-words"


def test_affixes_are_cut_at_a_word_boundary():
    assert common_affixes(["Answer: 12", "Answer: 15", "Answer: 1x"]) == ("Answer: ", "")
    assert common_affixes(["cats", "dogs", "hats"]) == ("", "")  # "s" is part of the word
    assert common_affixes(["(a)", "(b)", "(cd)"]) == ("(", ")")
    assert common_affixes(["x:", "x:", "x:"]) == ("", ":")  # the prefix would leave nothing


def test_relational_shapes_compare_the_answer_with_its_input():
    inputs = ["John is running to the car.", "Mary has never kissed him.", "I prefer a cat."]
    found = infer_shapes(examples(["running", "never", "cat"], inputs))
    relational = [s for s in found if s.kind == RELATIONAL]
    assert [s.name for s in relational] == ["word-of-input", "substring-of-input"]
    assert all(s.pattern is None for s in relational)
    assert "substring-of-input" in names(["to the car", "never", "a cat"], inputs)
    assert "word-of-input" not in names(["to the car", "never", "a cat"], inputs)
    starts = names(["John ran.", "Mary sang loudly.", "I slept."], inputs)
    assert "starts-with-input-first-word" in starts
    assert "substring-of-input" not in starts
    assert "starts-with-input-first-word" not in names(["ran.", "Mary", "I"], inputs)


def test_relational_shapes_use_every_input_field_when_there_is_no_input_field():
    rows = [Example(str(i), {"sentence": s, "letter": s[0]}, s.split()[1])
            for i, s in enumerate(["the big cat", "a small dog", "my old hat"])]
    assert "word-of-input" in [s.name for s in infer_shapes(rows)]


def test_the_grammar_shape_skips_relational_and_line_shapes():
    inputs = ["the cat sat", "a dog ran", "we all go"]
    found = infer_shapes(examples(["cat", "dog", "all"], inputs))
    assert found[0].name == "word-of-input"
    assert grammar_shape(found).name == "one-lowercase-word"
    lines = infer_shapes(examples(["It rained, said Tom.", "x " * 15, "Fine."]))
    assert lines and all(s.kind == LINE for s in lines)
    assert grammar_shape(lines) is None


def test_every_pattern_compiles_to_a_grammar():
    sets = [["a", "b", "c"], ["12", "-3", "7"], ["Answer: 12", "Answer: 15", "Answer: 7"],
            ["a b c", "d e", "f"], ["cold", "New York", "12"], ["(a)", "(b)", "[c]"],
            ["Ünïcode", "naïve", "café"], ['say "hi"', "x\\y", "tab\there"]]
    for targets in sets:
        for shape in infer_shapes(examples(targets)):
            if shape.pattern is not None:
                assert shape.spec is not None and shape.spec.to_gbnf().startswith("root ::=")


def test_patterns_are_bounded():
    for shape in infer_shapes(examples(["cold", "hot", "warm"])):
        assert shape.pattern is None or not re.search(r"(?<!\\)[+*]", shape.pattern)


# --- the property: a shape is never a guess -----------------------------------------------------
answer = st.one_of(
    st.text(alphabet="abcxyz", min_size=1, max_size=6),
    st.text(alphabet="abAB -'.:?0189\n", min_size=1, max_size=20),
    st.from_regex(r"-?[0-9]{1,5}", fullmatch=True),
    st.from_regex(r"Answer: [a-z]{1,6}", fullmatch=True),
    st.text(min_size=1, max_size=30),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(answer, min_size=3, max_size=8))
def test_every_pattern_fullmatches_every_answer_it_came_from(targets):
    for shape in infer_shapes(examples(targets)):
        if shape.pattern is None:
            continue
        for target in targets:
            if target.strip():  # answers are compared stripped, as OutputSpec.is_valid does
                assert re.fullmatch(shape.pattern, target.strip()), (shape.name, target)
        assert OutputSpec(pattern=shape.pattern).to_gbnf()  # compiles, never raises
