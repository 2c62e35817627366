"""Constrained output and strategies on the real embedded model."""

import json

import pytest

from promptmill.constrain import OutputSpec
from promptmill.evaluation import Evaluator
from promptmill.metrics import get_metric
from promptmill.models.base import GenerationParams
from promptmill.prompt import Prompt
from promptmill.task import Example

pytestmark = [pytest.mark.real_model, pytest.mark.slow]

REVIEWS = ["I loved it, wonderful!", "Terrible, broke in a day.", "Best purchase ever",
           "Awful service and rude staff", "It is fine I guess", "Never again.",
           "Absolutely fantastic quality", "The worst movie of the year", "Pretty good value",
           "Not worth the money", "Great fun for the kids", "Boring and too long"]
EXAMPLES = [Example(str(i), {"input": text}, None) for i, text in enumerate(REVIEWS)]


def test_labels_grammar_always_returns_a_valid_label(embedded_model, store):
    spec = OutputSpec(labels=("positive", "negative", "neutral"))
    prompt = Prompt(instruction="What is the sentiment of the review?", output_spec=spec)
    unconstrained = Prompt(instruction="What is the sentiment of the review?")
    evaluator = Evaluator(embedded_model, get_metric("exact"), store, progress=False,
                          params=GenerationParams(max_tokens=12))
    scored = evaluator.score_examples(prompt, EXAMPLES)
    assert all(s.error is None and spec.is_valid(s.output) for s in scored)
    free = evaluator.score_examples(unconstrained, EXAMPLES)
    # without the grammar this model explains itself, so the constraint is doing the work
    assert sum(not spec.is_valid(s.output) for s in free) > 0


def test_json_schema_grammar_always_returns_valid_json(embedded_model, store):
    schema = {"type": "object", "properties": {
        "sentiment": {"type": "string", "enum": ["positive", "negative"]},
        "confidence": {"type": "integer"}}, "required": ["sentiment", "confidence"]}
    spec = OutputSpec(json_schema=schema)
    prompt = Prompt(instruction="Rate the review as JSON.", output_spec=spec)
    evaluator = Evaluator(embedded_model, get_metric("json_valid"), store, progress=False,
                          params=GenerationParams(max_tokens=48))
    scored = evaluator.score_examples(prompt, EXAMPLES[:6])
    for s in scored:
        assert spec.is_valid(s.output), s.output
        assert json.loads(s.output)["sentiment"] in ("positive", "negative")


def test_step_by_step_extracts_the_answer_line(embedded_model, store):
    from promptmill.strategies import step_by_step

    prompt = step_by_step(Prompt(instruction="What is 2 plus 3?"), max_tokens=96)
    evaluator = Evaluator(embedded_model, get_metric("contains"), store, progress=False)
    [scored] = evaluator.score_examples(prompt, [Example("a", {"input": "2 + 3"}, "5")])
    assert scored.error is None and scored.generation is not None
    assert len(scored.output) <= len(scored.generation.text)
