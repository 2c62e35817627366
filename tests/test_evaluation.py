import threading

import pytest

from promptmill.constrain import OutputSpec
from promptmill.errors import ModelError, TemplateError
from promptmill.evaluation import Evaluator, call_key
from promptmill.metrics import get_metric
from promptmill.models.base import GenerationParams
from promptmill.models.fake import FakeModel
from promptmill.prompt import Demo, Prompt
from promptmill.task import Example

EXAMPLES = [Example(str(i), {"input": f"q{i}"}, "yes" if i % 2 else "no") for i in range(40)]
PROMPT = Prompt(instruction="Answer yes or no.", template="{{ input }}")


def _odd_says_yes(text: str) -> str:
    return "yes" if int(text[1:]) % 2 else "maybe"


def make(store, model=None, **kw):
    return Evaluator(model or FakeModel(fn=_odd_says_yes), get_metric("exact"), store,
                     progress=False, **kw)


def test_scores_ledger_and_store(store):
    result = make(store).evaluate(EXAMPLES, PROMPT, task="yn")
    assert result.n == 40 and result.score.mean == 0.5 and result.n_errors == 0
    assert result.score.low < 0.5 < result.score.high
    assert result.ledger.calls == 40 and result.ledger.cache_hits == 0
    rows = list(store.iter_results(result.run_id))
    assert [r["idx"] for r in rows] == list(range(40))
    assert rows[0]["feedback"].startswith("expected 'no'")
    run = store.get_run(result.run_id)
    assert run["status"] == "finished" and run["tokens_in"] > 0
    assert store.get_prompt("yn")["hash"] == PROMPT.hash


def test_rerun_is_served_from_cache_and_no_cache_calls_again(store):
    model = FakeModel(fn=_odd_says_yes)
    first = make(store, model).evaluate(EXAMPLES, PROMPT, task="yn")
    second = make(store, model).evaluate(EXAMPLES, PROMPT, task="yn")
    assert model.calls == 40
    assert second.run_id != first.run_id and second.ledger.cache_hits == 40
    assert second.ledger.calls == 0 and second.scores == first.scores
    make(store, model, cache=False).evaluate(EXAMPLES, PROMPT, task="yn")
    assert model.calls == 80


def test_cache_key_covers_model_request_params_and_sample():
    base = call_key("m1", [{"role": "user", "content": "x"}], GenerationParams())
    assert base != call_key("m2", [{"role": "user", "content": "x"}], GenerationParams())
    assert base != call_key("m1", [{"role": "user", "content": "y"}], GenerationParams())
    assert base != call_key("m1", [{"role": "user", "content": "x"}],
                            GenerationParams(temperature=0.7))
    assert base != call_key("m1", [{"role": "user", "content": "x"}], GenerationParams(), 1)


def test_failing_examples_are_retried_then_recorded_and_run_goes_on(store):
    model = FakeModel(fn=_odd_says_yes, fail_on="q7")
    result = make(store, model, retries=2).evaluate(EXAMPLES, PROMPT, task="yn")
    assert result.n == 40 and result.n_errors == 1
    assert model.calls == 39 + 3  # one example tried three times
    failed = [r for r in store.iter_results(result.run_id) if r["error"]]
    assert failed[0]["example_id"] == "7" and "fake failure" in failed[0]["error"]


def test_backend_that_keeps_failing_stops_the_run_and_keeps_results(store):
    model = FakeModel(fn=lambda t: "no" if int(t[1:]) < 30 else 1 / 0)
    with pytest.raises(ModelError, match="in a row failed"):
        make(store, model, retries=0, max_consecutive_errors=3,
             commit_every=100).evaluate(EXAMPLES, PROMPT, task="yn")
    run = store.list_runs()[0]
    assert run["status"] == "failed" and "in a row failed" in run["error"]
    # Everything before the failing streak was committed; the streak is recorded as errors.
    rows = list(store.iter_results(run["id"]))
    assert {r["example_id"] for r in rows if not r["error"]} == {str(i) for i in range(30)}
    assert sum(1 for r in rows if r["error"]) == 3
    # Once the backend is healthy, resuming retries the failed examples and finishes the rest.
    resumed = make(store, FakeModel(fn=lambda t: "no")).evaluate(EXAMPLES, PROMPT, task="yn")
    assert resumed.run_id == run["id"] and resumed.n == 40 and resumed.n_errors == 0


def test_unfinished_run_resumes_without_redoing_examples(store):
    model = FakeModel(fn=_odd_says_yes)
    evaluator = make(store, model, commit_every=1)
    with pytest.raises(KeyboardInterrupt):
        evaluator.evaluate(EXAMPLES, PROMPT, task="yn",
                           context_fn=_interrupt_after(15))
    interrupted = store.list_runs()[0]
    assert interrupted["status"] == "interrupted"
    done = len(store.done_example_ids(interrupted["id"]))
    calls_before = model.calls
    resumed = make(store, model).evaluate(EXAMPLES, PROMPT, task="yn")
    assert resumed.run_id == interrupted["id"] and resumed.resumed_from == done
    assert model.calls - calls_before == 40 - done
    assert resumed.n == 40 and resumed.score.mean == 0.5


def _interrupt_after(n):
    seen = {"n": 0}

    def context(example):
        seen["n"] += 1
        if seen["n"] > n:
            raise KeyboardInterrupt
        return {}

    return context


def test_missing_template_variable_fails_before_any_call(store):
    model = FakeModel(default="x")
    with pytest.raises(TemplateError, match="question"):
        make(store, model).evaluate(EXAMPLES, Prompt(template="{{ question }}"), task="yn")
    assert model.calls == 0


def test_http_style_backends_run_concurrently(store):
    in_flight, peak = [0], [0]
    lock = threading.Lock()

    def slow(text):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        threading.Event().wait(0.02)
        with lock:
            in_flight[0] -= 1
        return "no"

    model = FakeModel(fn=slow, concurrency=4)
    result = make(store, model).evaluate(EXAMPLES, PROMPT, task="yn")
    assert result.n == 40 and 1 < peak[0] <= 4


def test_one_prompts_examples_run_in_order_with_the_shared_part_first(store):
    seen = []
    model = FakeModel(fn=lambda t: "no")
    model.generate = _recording(model.generate, seen)
    prompt = Prompt(instruction="x", demos=(Demo(inputs={"input": "d"}, output="o"),))
    examples = [Example(str(i), {"input": w}, "no") for i, w in enumerate(["b", "a", "c"])]
    make(store, model).evaluate(examples, prompt, task="order")
    assert [request[-1]["content"] for request in seen] == ["b", "a", "c"]
    assert all(request[:3] == seen[0][:3] for request in seen)  # system + demo pair shared


def _recording(generate, seen):
    def wrapper(request, params):
        seen.append(request)
        return generate(request, params)

    return wrapper


def test_empty_split_is_a_clear_error(store):
    from promptmill.errors import PromptmillError

    with pytest.raises(PromptmillError, match="has no examples"):
        make(store).evaluate([], PROMPT, task="yn")


def test_small_run_against_a_dead_backend_stops_with_a_clear_error(store):
    model = FakeModel(fn=lambda t: 1 / 0)
    with pytest.raises(ModelError, match="2 calls in a row failed"):
        make(store, model, retries=0).evaluate(EXAMPLES[:2], PROMPT, task="yn")


def test_answer_extraction_scores_the_extracted_answer_and_keeps_the_reply(store):
    model = FakeModel(fn=lambda t: "I think so.\nAnswer: yes")
    prompt = PROMPT.model_copy(update={"extract": "after:Answer:"})
    result = make(store, model).evaluate(EXAMPLES, prompt, task="yn")
    assert result.score.mean == 0.5  # odd examples expect "yes"
    row = next(iter(store.iter_results(result.run_id)))
    assert row["output"] == "yes" and row["raw_output"] == "I think so.\nAnswer: yes"


def test_output_spec_reaches_the_backend_and_changes_the_cache_key(store):
    model = FakeModel(fn=lambda t: "well, maybe yes")
    constrained = PROMPT.model_copy(update={"output_spec": OutputSpec(labels=("yes", "no")),
                                            "max_tokens": 3})
    result = make(store, model).evaluate(EXAMPLES, constrained, task="yn")
    assert model.last_params.constraint == '{"labels":["yes","no"]}'
    assert model.last_params.max_tokens == 3
    assert {r["output"] for r in store.iter_results(result.run_id)} == {"yes"}
    assert "exactly one of: yes, no" in constrained.render_messages({"input": "x"})[0]["content"]
    plain = make(store, model).evaluate(EXAMPLES, PROMPT, task="yn")
    assert plain.ledger.cache_hits == 0  # different params, so no stale constrained answers


class _EvenOddRouter:
    """A contextualizer that tags a segment and adds one demo per example."""

    def prepare(self, prepared, example):
        segment = "even" if int(example.id) % 2 == 0 else "odd"
        prepared.prompt = prepared.prompt.model_copy(
            update={"demos": (Demo(inputs={"input": "q0"}, output=segment),)})
        prepared.segment = segment
        prepared.notes.append(f"routed {segment}")
        return prepared

    def describe(self):
        return {"router": "even-odd"}


def test_contextualizer_shapes_each_request_and_records_segments(store):
    seen = []
    model = FakeModel(fn=lambda t: seen.append(t) or "no")
    evaluator = make(store, model)
    result = evaluator.evaluate(EXAMPLES, PROMPT, task="yn", contextualizer=_EvenOddRouter())
    segments = store.segments_by_example(result.run_id)
    assert segments["2"] == "even" and segments["3"] == "odd" and len(segments) == 40
    request = evaluator.render(PROMPT, EXAMPLES[3], _EvenOddRouter())
    assert request[-2] == {"role": "assistant", "content": "odd"}
    rows = list(store.iter_results(result.run_id))
    assert rows[3]["context_notes"] == '["routed odd"]'
    # a different contextualizer is a different run, not a resume of this one
    plain = evaluator.evaluate(EXAMPLES, PROMPT, task="yn")
    assert plain.run_id != result.run_id


def test_a_prompt_with_demo_selection_retrieves_from_the_pool(store):
    from promptmill.errors import PromptmillError
    from promptmill.prompt import DemoSelection

    pool = [Example(f"t{i}", {"input": f"q{i} {'alpha' if i % 2 else 'beta'}"},
                    "yes" if i % 2 else "no") for i in range(20)]
    seen = []
    model = FakeModel(fn=lambda t: seen.append(t) or "no")
    prompt = PROMPT.model_copy(update={"demo_selection": DemoSelection(k=2, mmr_lambda=1.0)})
    with pytest.raises(PromptmillError, match="demos from a training pool.*demo_pool"):
        make(store, model).evaluate(EXAMPLES[:4], prompt, task="yn")
    evaluator = make(store, model, demo_pool=pool)
    query = Example("x", {"input": "q7 alpha"}, "yes")
    request = evaluator.render(prompt, query)
    shown = [m["content"] for m in request[1:-1] if m["role"] == "user"]
    assert len(shown) == 2 and all("alpha" in s for s in shown)
    assert "q7 alpha" not in shown  # an input is never its own demo
    result = evaluator.evaluate(EXAMPLES[:4], prompt, task="yn")
    other_pool = make(store, model, demo_pool=pool[:10]).evaluate(EXAMPLES[:4], prompt,
                                                                   task="yn")
    assert other_pool.run_id != result.run_id  # the pool is part of the run's identity
