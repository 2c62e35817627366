"""fewshot: fixed demo sets of several sizes, and demos retrieved per input."""

import pytest

from promptmill.metrics import get_metric
from promptmill.models.base import Generation, GenerationParams, Model
from promptmill.optimize import Budget, optimize
from promptmill.optimize import fewshot as fewshot_module
from promptmill.prompt import Prompt
from promptmill.task import Example, Task

KINDS = {"fruit": ["apple", "pear", "plum", "fig", "lime", "kiwi", "mango", "peach"],
         "vehicle": ["car", "bus", "tram", "van", "truck", "bike", "taxi", "boat"],
         "tool": ["saw", "drill", "hammer", "wrench", "chisel", "rake", "spade", "file"]}


def kinds_task() -> Task:
    examples = [Example(f"{kind}-{i}-{n}", {"input": f"a {word} number {n}"}, kind)
                for kind, words in KINDS.items() for i, word in enumerate(words)
                for n in range(2)]
    train = [ex for ex in examples if ex.id.endswith("-0")]
    rest = [ex for ex in examples if ex.id.endswith("-1")]
    return Task("kinds", train=train, validation=rest[::2], test=rest[1::2])


class LastDemoModel(Model):
    """Answers with the last demo's answer: right exactly when the nearest demo is shown last."""

    identity = "fake:last-demo"

    def generate(self, request, params: GenerationParams) -> Generation:
        answers = [m["content"] for m in request if m["role"] == "assistant"]
        return Generation(answers[-1] if answers else "unknown", 5, 1)


def test_retrieved_demos_win_when_the_nearest_example_carries_the_answer(store, monkeypatch):
    monkeypatch.setattr(fewshot_module, "_embeddings_available", lambda: False)
    result = optimize(kinds_task(), Prompt(instruction="What kind of thing?", name="kinds"),
                      LastDemoModel(), metric=get_metric("exact"), budget=Budget(calls=200),
                      method="fewshot", store=store, seed=0)
    origins = [c.origin for c in result.candidates]
    assert any(o.startswith("fewshot:retrieved-bm25") for o in origins)
    assert any(o.startswith("fewshot:k=8") for o in origins)  # k, 2k and k/2 are all tried
    assert result.best_prompt.demo_selection is not None
    assert result.best_test.score.mean == 1.0 and result.seed_test.score.mean == 0.0


def test_no_retrieval_when_the_pool_is_too_small(store):
    small = kinds_task()
    small = Task("kinds", train=small.train[:8], validation=small.validation,
                 test=small.test)
    result = optimize(small, Prompt(instruction="Kind?", name="kinds"), LastDemoModel(),
                      metric=get_metric("exact"), budget=Budget(calls=150), method="fewshot",
                      store=store, seed=0)
    assert not any("retrieved" in c.origin for c in result.candidates)


@pytest.mark.real_model
@pytest.mark.slow
def test_fewshot_with_retrieval_on_the_embedded_model(embedded_model, store):
    from optimize_fakes import PLURALS

    examples = [Example(f"p{i}", {"input": w}, p) for i, (w, p) in enumerate(PLURALS)]
    task = Task("plurals", train=examples[:16], validation=examples[16:22],
                test=examples[22:])
    result = optimize(task, Prompt(instruction="Write the plural of the word.", name="plurals"),
                      embedded_model, metric=get_metric("exact"), budget=Budget(calls=70),
                      method="fewshot", store=store, seed=0,
                      params=GenerationParams(max_tokens=8))
    assert result.spend["calls"] <= 70
    assert any("retrieved" in c.origin for c in result.candidates)
    assert result.best_validation >= result.seed_validation
    assert result.best_test.n == 6


class EchoWhenShownModel(Model):
    """Echoes the input once any demo shows an echo; otherwise answers 'unknown'. The metric
    accepts the input itself as an alternative answer, as the rhymes task's data does."""

    identity = "fake:echo-when-shown"

    def generate(self, request, params: GenerationParams) -> Generation:
        pairs = list(zip(request[1::2], request[2::2], strict=False))
        echoed = any(u["content"] == a["content"] for u, a in pairs if a["role"] == "assistant")
        labelled = any(a["role"] == "assistant" for _, a in pairs)
        word = request[-1]["content"]
        return Generation(word if echoed or (labelled and len(word) % 2) else "unknown", 5, 1)


def test_bootstrapped_demos_are_the_models_own_accepted_answers(store):
    words = [f"w{'x' * (i % 5)}{i}" for i in range(40)]
    examples = [Example(f"e{i}", {"input": w}, f"gold{i}", (w,)) for i, w in enumerate(words)]
    task = Task("echo", train=examples[:20], validation=examples[20:32], test=examples[32:])
    result = optimize(task, Prompt(instruction="Rhyme it.", name="echo"), EchoWhenShownModel(),
                      metric=get_metric("exact"), budget=Budget(calls=200), method="fewshot",
                      store=store, seed=0)
    boot = next(c for c in result.candidates if c.origin.startswith("fewshot:bootstrapped"))
    assert all(d.output == d.inputs["input"] for d in boot.prompt.demos)  # not the gold labels
    assert result.best_test.score.mean == 1.0
    assert "bootstrapped" in result.summary()["best_candidate_origin"]
