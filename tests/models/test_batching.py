"""Batched decoding on the real embedded model: the same answers as one at a time, faster.

The rule (docs/inference.md): greedy and seeded answers, and option scores, do not depend on
batching or on which requests share a batch, so the decoding mode is not part of the model's
identity and the call cache serves both paths.
"""

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from promptmill.constrain import OutputSpec
from promptmill.models import GenerationParams, load_model
from promptmill.models.llamacpp import LlamaCppModel

pytestmark = [pytest.mark.real_model]

DEMOS = "".join(f"Input: {w}\nOutput: {w.upper()}\n" for w in
                ("cat", "river", "stone", "garden", "window", "pencil", "orange", "cloud"))
WORDS = ["apple", "banana", "cherry", "dog", "elephant", "fish", "grape", "house", "island",
         "jungle", "kite", "lemon"]


def chat(word: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Write the input in capital letters.\n" + DEMOS},
            {"role": "user", "content": f"Input: {word}\nOutput:"}]


def requests() -> list:
    """Chat requests sharing a long prefix, one unrelated chat, and plain completions."""
    return ([chat(w) for w in WORDS]
            + [[{"role": "user", "content": "Tell me a short story about a brave mouse."}]]
            + [f"The capital of {c} is" for c in ("France", "Japan", "Peru")])


@pytest.fixture(scope="module")
def sequential():
    model = load_model("embedded", n_ctx=1024, batch_width=1)
    yield model
    model.close()


@pytest.fixture(scope="module")
def batched():
    model = load_model("embedded", n_ctx=1024, batch_width=6)
    yield model
    model.close()


def in_threads(model, calls):
    """Each (request, params) from its own thread at once, so the engine batches them."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda c: model.generate(*c), calls))


def test_greedy_answers_equal_the_sequential_path(sequential, batched):
    params = GenerationParams(max_tokens=24)
    one_by_one = [sequential.generate(r, params) for r in requests()]
    together = batched.generate_many(requests(), params)
    assert [g.text for g in together] == [g.text for g in one_by_one]
    assert [g.finish_reason for g in together] == [g.finish_reason for g in one_by_one]
    assert [g.input_tokens for g in together] == [g.input_tokens for g in one_by_one]
    assert batched.batch_width == 6 and sequential.batch_width == 1
    assert batched._engine.steps < sum(g.output_tokens for g in together)  # really batched


def test_seeded_sampling_equals_the_sequential_path(sequential, batched):
    params = GenerationParams(max_tokens=20, temperature=0.9, seed=7)
    one_by_one = [sequential.generate(r, params).text for r in requests()[:8]]
    assert [g.text for g in batched.generate_many(requests()[:8], params)] == one_by_one
    other_seed = GenerationParams(max_tokens=20, temperature=0.9, seed=8)
    assert [g.text for g in batched.generate_many(requests()[:8], other_seed)] != one_by_one


def test_each_sequence_keeps_its_own_stops_grammar_and_length(sequential, batched):
    labels = OutputSpec(labels=("yes", "no", "maybe")).key()
    calls = [(chat("apple"), GenerationParams(max_tokens=24, stop=("L",))),
             (chat("banana"), GenerationParams(max_tokens=1)),  # leaves after one token
             (requests()[12], GenerationParams(max_tokens=40)),
             ([{"role": "user", "content": "Is water wet?"}],
              GenerationParams(max_tokens=8, constraint=labels)),
             ("The capital of Italy is", GenerationParams(max_tokens=12, stop=(".", "\n"))),
             (chat("cherry"), GenerationParams(max_tokens=24))]
    expected = [sequential.generate(*c) for c in calls]
    got = in_threads(batched, calls)
    assert [g.text for g in got] == [g.text for g in expected]
    assert "L" not in got[0].text and got[1].output_tokens == 1
    assert got[3].text in ("yes", "no", "maybe")
    assert not any(s in got[4].text for s in (".", "\n"))


def test_option_scores_equal_the_unbatched_scores(sequential, batched):
    question = [{"role": "user", "content": "Is fire hot or cold? Answer hot or cold."}]
    options = ["hot", "cold", "lukewarm", "I am not sure"]
    alone = sequential.score_options(question, options)
    assert batched.score_options(question, options) == alone
    with ThreadPoolExecutor(max_workers=3) as pool:  # scored while other calls decode
        scoring = pool.submit(batched.score_options, question, options)
        pool.submit(batched.generate, chat("grape"), GenerationParams(max_tokens=16))
        assert scoring.result() == alone
    assert alone[0] > alone[1]


def test_streamed_pieces_arrive_one_by_one_and_make_the_answer(sequential, batched):
    request = requests()[12]
    params = GenerationParams(max_tokens=40, stop=("mouse",))
    pieces: list[str] = []
    streamed = batched.stream(request, params, pieces.append)
    assert len(pieces) > 3 and "".join(pieces) == streamed.text
    assert streamed.text == sequential.generate(request, params).text
    assert not any("mouse" in p for p in pieces)
    assert batched.can_stream


def test_a_request_longer_than_the_batched_sequences_still_gets_its_answer(sequential,
                                                                          batched):
    long_chat = [{"role": "system", "content": "Repeat the last word.\n" + DEMOS * 6},
                 {"role": "user", "content": "Input: zebra\nOutput:"}]
    params = GenerationParams(max_tokens=8)
    assert batched.generate(long_chat, params).text == \
        sequential.generate(long_chat, params).text


def test_too_long_a_prompt_is_a_clear_error(batched):
    from promptmill.errors import ModelError

    huge = "word " * 1500
    with pytest.raises(ModelError, match="context window"):
        batched.generate(huge, GenerationParams(max_tokens=4))


def test_auto_width_is_measured_once_and_remembered(isolated_home):
    model = load_model("embedded", n_ctx=1024)
    try:
        width = model.batch_width
        known = json.loads((isolated_home / "batch-widths.json").read_text())
        assert list(known.values()) == [width] and 1 <= width <= 16
        assert model.runtime_settings()["batch_width"] == f"{width} (measured)"
        assert model.concurrency >= width
        timings = model._engine.timings
        assert timings[1] > timings[max(timings)]  # a wider wave costs less per sequence
    finally:
        model.close()


def test_closing_fails_waiting_calls_instead_of_hanging():
    model = load_model("embedded", n_ctx=1024, batch_width=2)
    assert isinstance(model, LlamaCppModel)
    started = threading.Event()
    errors: list[BaseException] = []

    def call():
        started.set()
        try:
            model.generate(requests()[12], GenerationParams(max_tokens=200))
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    started.wait()
    model.close()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert not errors or "closed" in str(errors[0])
