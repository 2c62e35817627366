import pytest

from promptmill import strategies
from promptmill.constrain import OutputSpec
from promptmill.errors import ConfigError
from promptmill.extract import extract_answer
from promptmill.optimize.mutations import format_variants
from promptmill.prompt import Prompt
from promptmill.task import Example

SEED = Prompt(instruction="Classify the review.")
LABELLED = [Example(str(i), {"input": f"r{i}"}, "positive" if i % 2 else "negative")
            for i in range(8)]
WORDS = [Example(str(i), {"input": f"w{i}"}, f"word{i}") for i in range(8)]


def test_answer_only_adds_the_note_and_first_line_extraction():
    out = strategies.answer_only(SEED, WORDS)
    assert out.output_format == strategies.ANSWER_ONLY and out.extract == "first_line"
    assert strategies.answer_only(out, WORDS) == out  # idempotent
    multi = [Example("m", {"input": "x"}, "line one\nline two")]
    assert strategies.answer_only(SEED, multi).extract is None


def test_output_format_uses_a_closed_label_set_as_a_grammar():
    out = strategies.output_format(SEED, LABELLED)
    assert out.output_spec == OutputSpec(labels=("negative", "positive"))
    assert "exactly one of: negative, positive" in out.system_text()


def test_output_format_falls_back_to_the_answer_shape():
    out = strategies.output_format(SEED, WORDS)
    assert out.output_spec is None
    assert out.output_format.startswith("Answer with a single word. Write the answer in lowercase.")


def test_output_format_with_an_explicit_spec():
    out = strategies.output_format(SEED, None, spec={"pattern": r"\d+"})
    assert out.output_spec.pattern == r"\d+"


def test_step_by_step_asks_for_reasoning_and_extracts_the_answer_line():
    out = strategies.step_by_step(strategies.answer_only(SEED, WORDS))
    assert "step by step" in out.output_format and strategies.ANSWER_ONLY not in out.output_format
    assert out.extract == "after:Answer:" and out.max_tokens == strategies.REASONING_TOKENS
    assert extract_answer(out.extract, "It is good.\nAnswer: positive") == "positive"


def test_role_and_self_check_compose_in_order():
    both = strategies.compose("role", "self_check")(SEED)
    assert both.instruction.startswith("You are a careful expert")
    assert both.output_format == strategies.SELF_CHECK
    custom = strategies.apply(SEED, ["role"], persona="a film critic")
    assert custom.instruction == "You are a film critic. Classify the review."


def test_unknown_strategy_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown strategy 'cot'.*step_by_step"):
        strategies.compose("cot")


def test_format_variants_offer_labels_for_classification_and_shape_otherwise():
    origins = [o for o, _ in format_variants(SEED, LABELLED)]
    assert origins == ["format:answer-only", "format:labels"]
    origins = [o for o, _ in format_variants(SEED, WORDS)]
    assert origins == ["format:answer-only", "format:shape", "format:grammar:one-lowercase-token"]
