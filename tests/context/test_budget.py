"""ContextBudget: drop passages, then demos, until the rendered prompt fits."""

from __future__ import annotations

import json
import logging

import pytest

from promptmill.context.base import Chain, Prepared
from promptmill.context.budget import (
    ContextBudget,
    ContextOverflowError,
    estimate_tokens,
)
from promptmill.errors import ConfigError, PromptmillError
from promptmill.models.fake import FakeModel
from promptmill.prompt import Demo, Prompt
from promptmill.task import Example


def words(n: int, word: str = "w") -> str:
    return " ".join([word] * n)


def count_words(text: str) -> int:
    """An exact, easy-to-reason-about counter for the tests."""
    return len(text.split())


DEMOS = tuple(Demo(inputs={"q": f"demo{i} " + words(9)}, output="ok") for i in range(1, 4))
PROMPT = Prompt(instruction="Answer.", template="{{ q }}", demos=DEMOS,
                context_slots=("knowledge",))
EXAMPLE = Example(id="q7", inputs={"q": "what?"}, target="ok")


def prepared(n_passages: int = 3, prompt: Prompt = PROMPT) -> Prepared:
    found = [(f"manual.md#{i}", words(20)) for i in range(1, n_passages + 1)]
    return Prepared(prompt, passages={"knowledge": found})


def budget(max_tokens: int, **kwargs) -> ContextBudget:
    return ContextBudget(max_tokens, reserve_output=0, count_tokens=count_words, **kwargs)


def size(p: Prepared) -> int:
    return budget(10_000).measure(p, EXAMPLE)


def test_a_prompt_that_fits_is_left_alone():
    p = prepared()
    out = budget(size(p)).prepare(p, EXAMPLE)
    assert out.notes == [] and len(out.passages["knowledge"]) == 3 and out.prompt is PROMPT


def test_lowest_ranked_passages_go_first_then_the_first_demo():
    full = size(prepared())
    # passages are 21 words each ('[id]' + 20 words), and an emptied slot still reads
    # '(no relevant passage found)': dropping all three saves 59, one demo saves 19 more
    limit = full - 3 * 21 - 5
    out = budget(limit).prepare(prepared(), EXAMPLE)
    assert [s for s, _ in out.passages["knowledge"]] == []
    assert [d.inputs["q"].split()[0] for d in out.prompt.demos] == ["demo2", "demo3"]
    assert out.notes[0] == f"budget: dropped passage manual.md#3 ({full} > {limit} tokens)"
    assert out.notes[1].startswith("budget: dropped passage manual.md#2 (")
    assert out.notes[2].startswith("budget: dropped passage manual.md#1 (")
    assert out.notes[3].startswith("budget: dropped demo 1 of 3 'demo1 w w")
    assert size(out) <= limit


def test_it_stops_as_soon_as_it_fits():
    full = size(prepared())
    out = budget(full - 1).prepare(prepared(), EXAMPLE)
    assert [s for s, _ in out.passages["knowledge"]] == ["manual.md#1", "manual.md#2"]
    assert len(out.prompt.demos) == 3 and len(out.notes) == 1


def test_demos_first_when_priority_says_so():
    full = size(prepared())
    out = budget(full - 1, priority=("demos", "passages")).prepare(prepared(), EXAMPLE)
    assert len(out.passages["knowledge"]) == 3
    assert [d.inputs["q"].split()[0] for d in out.prompt.demos] == ["demo2", "demo3"]


def test_the_longest_slot_loses_a_passage_first():
    prompt = PROMPT.model_copy(update={"context_slots": ("a", "b"), "demos": ()})
    p = Prepared(prompt, passages={"a": [("a1", "x"), ("a2", "x")],
                                   "b": [("b1", "x"), ("b2", "x"), ("b3", "x")]})
    out = budget(size(p) - 1).prepare(p, EXAMPLE)
    assert out.passages == {"a": [("a1", "x"), ("a2", "x")], "b": [("b1", "x"), ("b2", "x")]}


def test_input_lists_are_not_mutated():
    shared = [("s1", words(50)), ("s2", words(50))]
    p = Prepared(PROMPT, passages={"knowledge": shared})
    budget(size(p) - 1).prepare(p, EXAMPLE)
    assert len(shared) == 2


def test_overflow_with_nothing_left_says_by_how_much_and_how_to_fix():
    p = prepared()
    bare = Prepared(PROMPT.model_copy(update={"demos": ()}),
                    passages={"knowledge": []})
    need = size(bare)
    with pytest.raises(ContextOverflowError) as info:
        budget(need - 5).prepare(p, EXAMPLE)
    err = info.value
    assert isinstance(err, PromptmillError) and err.where == "example q7"
    assert f"needs about {need} tokens but only {need - 5} fit (5 too many)" in err.message
    assert "shorten the instruction or the input" in err.fix
    assert "raise the context window" in err.fix


def test_overflow_suggests_priority_when_it_kept_something_droppable():
    with pytest.raises(ContextOverflowError, match="add demos to priority"):
        budget(20, priority=("passages",)).prepare(prepared(), EXAMPLE)


def test_drops_are_logged(caplog):
    with caplog.at_level(logging.INFO, logger="promptmill.context"):
        budget(size(prepared()) - 1).prepare(prepared(), EXAMPLE)
    assert "example q7: budget: dropped passage manual.md#3" in caplog.text


def test_reserve_output_is_kept_free():
    full = size(prepared())
    b = ContextBudget(full, reserve_output=10, count_tokens=count_words)
    assert b.limit == full - 10
    assert len(b.prepare(prepared(), EXAMPLE).notes) == 1


def test_default_counter_is_words_times_1_3_plus_4_per_message():
    assert estimate_tokens("one two three") == 4
    assert estimate_tokens("") == 0
    p = Prepared(Prompt(instruction=words(10), template="{{ q }}"))
    # system: ceil(13) + 4, user 'what?': ceil(1.3) + 4
    assert ContextBudget(1000).measure(p, EXAMPLE) == 13 + 4 + 2 + 4


def test_from_model_uses_the_context_window():
    model = FakeModel()
    model.context_window = 512
    b = ContextBudget.from_model(model, reserve_output=32)
    assert (b.max_tokens, b.limit) == (512, 480)
    assert ContextBudget.from_model(FakeModel(), max_tokens=300).max_tokens == 300
    with pytest.raises(ConfigError, match="does not report its context window.*max_tokens"):
        ContextBudget.from_model(FakeModel())


@pytest.mark.parametrize("kwargs,match", [
    ({"max_tokens": 64}, "leaves no room"),
    ({"max_tokens": 100, "reserve_output": -1}, "reserve_output"),
    ({"max_tokens": 100, "priority": ("passages", "instruction")}, "bad priority"),
    ({"max_tokens": 100, "priority": ("demos", "demos")}, "bad priority"),
])
def test_bad_settings_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ContextBudget(**kwargs)


def test_runs_last_in_a_chain_and_describes_itself():
    def add_passages(p, example):
        p.passages["knowledge"] = [("doc#1", words(400))]
        return p

    class Retrieve:
        prepare = staticmethod(add_passages)

        def describe(self):
            return {"contextualizer": "retrieve"}

    b = budget(200)
    out = Chain(Retrieve(), b)(PROMPT, EXAMPLE)
    assert out.passages == {"knowledge": []} and out.notes[0].startswith("budget: dropped")
    assert "(no relevant passage found)" in out.context_values()["knowledge"]
    assert json.loads(json.dumps(b.describe())) == {
        "contextualizer": "budget", "max_tokens": 200, "reserve_output": 0,
        "priority": ["passages", "demos"], "counter": "count_words"}
    assert ContextBudget(100).describe()["counter"] == "words*1.3"
