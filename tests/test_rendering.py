"""Rendering is a function of (prompt, example, settings): no model, metric or store needed."""

import pytest

from promptmill.constrain import OutputSpec
from promptmill.context.base import Prepared
from promptmill.errors import PromptmillError
from promptmill.evaluation import Evaluator
from promptmill.metrics import get_metric
from promptmill.models.base import GenerationParams
from promptmill.models.fake import FakeModel
from promptmill.prompt import Demo, DemoSelection, Prompt
from promptmill.rendering import Renderer, build_request, params_for
from promptmill.task import Example

PROMPT = Prompt(instruction="Answer yes or no.", template="Q: {{ input }}",
                demos=[Demo(inputs={"input": "sky blue?"}, output="yes")])
EXAMPLE = Example("e1", {"input": "grass red?"}, "no")
POOL = [Example(f"t{i}", {"input": f"q{i} {'alpha' if i % 2 else 'beta'}"},
                "yes" if i % 2 else "no") for i in range(12)]


class _Slot:
    """A contextualizer that fills the assistant cue with the example's id."""

    def prepare(self, prepared: Prepared, example: Example) -> Prepared:
        prepared.notes.append(f"saw {example.id}")
        prepared.segment = "all"
        return prepared

    def describe(self):
        return {"slot": 1}


def test_chat_request_has_instruction_demos_then_the_example():
    built = build_request(PROMPT, EXAMPLE)
    roles = [m["role"] for m in built.request]
    assert roles[0] == "system" and roles[-1] == "user"
    assert built.request[-1]["content"] == "Q: grass red?"
    assert {"role": "assistant", "content": "yes"} in built.request
    assert built.params == GenerationParams() and built.prompt is PROMPT


def test_completion_mode_renders_one_text():
    built = build_request(PROMPT.model_copy(update={"demos": ()}), EXAMPLE, mode="completion")
    assert built.request == "Answer yes or no.\n\nQ: grass red?\nAnswer:"


def test_output_spec_and_token_limit_reach_the_params():
    prompt = PROMPT.model_copy(update={"output_spec": OutputSpec(labels=("yes", "no")),
                                       "max_tokens": 3})
    built = build_request(prompt, EXAMPLE, params=GenerationParams(max_tokens=40))
    assert built.params.max_tokens == 3
    assert built.params.constraint == prompt.output_spec.key()
    assert params_for(PROMPT, GenerationParams(max_tokens=40)).max_tokens == 40


def test_contextualizer_runs_after_the_prompts_own_demos():
    built = Renderer().build(PROMPT, EXAMPLE, _Slot())
    assert built.prepared.notes == ["saw e1"] and built.prepared.segment == "all"


def test_retrieved_demos_need_a_pool_and_come_from_it():
    prompt = PROMPT.model_copy(update={"demos": (),
                                       "demo_selection": DemoSelection(k=2, mmr_lambda=1.0)})
    with pytest.raises(PromptmillError, match="demos from a training pool"):
        build_request(prompt, EXAMPLE)
    renderer = Renderer(demo_pool=POOL)
    request = renderer.render(prompt, Example("x", {"input": "q5 alpha"}))
    shown = [m["content"] for m in request[1:-1] if m["role"] == "user"]
    assert len(shown) == 2 and all("alpha" in s for s in shown)
    # the selector is built once per setting, not once per example
    assert renderer.demo_selector(prompt) is renderer.demo_selector(prompt)


def test_the_evaluator_sends_exactly_what_build_request_builds(store):
    seen = []
    model = FakeModel(fn=lambda text: seen.append(text) or "no")
    evaluator = Evaluator(model, get_metric("exact"), store, progress=False, demo_pool=POOL)
    prompt = PROMPT.model_copy(update={"demo_selection": DemoSelection(k=2)})
    assert evaluator.render(prompt, EXAMPLE) == build_request(prompt, EXAMPLE,
                                                              demo_pool=POOL).request
