"""The OpenAI-compatible backend, against a real llama_cpp.server and a scripted loopback stub.

The real server proves the requests and responses fit an actual OpenAI-style server; the stub
produces what a healthy server will not on demand: timeouts, 5xx, 429, 4xx, missing usage.
"""

from __future__ import annotations

import threading
import traceback
from concurrent.futures import ThreadPoolExecutor

import pytest
from openai_stub import StubReply, chat_completion_body, error_body

from promptmill.errors import ConfigError, ModelError
from promptmill.models import GenerationParams, load_model
from promptmill.models.openai_compat import DEFAULT_BASE_URL, OpenAICompatModel, openai_model

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
SHORT = GenerationParams(max_tokens=8, temperature=0.0, seed=7)
FAKE_KEY = "sk-promptmill-test-Zq8xW3vK9pL2"


@pytest.fixture
def served(llama_server_url):
    model = openai_model("smollm2", base_url=llama_server_url, max_retries=1, concurrency=2)
    yield model
    model.close()


# -- against a real llama_cpp.server --------------------------------------------------------


@pytest.mark.server
@pytest.mark.real_model
def test_chat_returns_text_and_token_counts(served):
    generation = served.generate(QUESTION, SHORT)
    assert generation.text.strip()
    assert generation.input_tokens > 0
    assert 0 < generation.output_tokens <= SHORT.max_tokens
    assert generation.seconds > 0
    assert generation.finish_reason in ("stop", "length")
    assert generation.logprobs is None


@pytest.mark.server
@pytest.mark.real_model
def test_same_seed_at_temperature_zero_gives_same_text(served):
    first = served.generate(QUESTION, SHORT)
    second = served.generate(QUESTION, SHORT)
    assert first.text == second.text


@pytest.mark.server
@pytest.mark.real_model
def test_plain_string_uses_the_completions_endpoint(served):
    params = GenerationParams(max_tokens=8, stop=("\n",))
    generation = served.generate("The capital of France is", params)
    assert generation.text.strip()
    assert generation.input_tokens > 0 and generation.output_tokens > 0
    assert "\n" not in generation.text


@pytest.mark.server
@pytest.mark.real_model
@pytest.mark.parametrize("request_", [QUESTION, "The capital of France is"], ids=["chat", "text"])
def test_logprobs_are_one_float_per_token(served, request_):
    # llama_cpp.server computes logprobs only with --logits_all (the fixture sets it).
    generation = served.generate(request_, GenerationParams(max_tokens=6, logprobs=True))
    assert generation.logprobs
    assert len(generation.logprobs) == generation.output_tokens
    assert all(isinstance(value, float) and value <= 0.0 for value in generation.logprobs)


@pytest.mark.server
@pytest.mark.real_model
def test_more_threads_than_concurrency_never_exceeds_the_limit(served):
    in_flight = peak = 0
    lock = threading.Lock()
    send = served._send

    def counting_send(request, params):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            return send(request, params)
        finally:
            with lock:
                in_flight -= 1

    served._send = counting_send
    params = GenerationParams(max_tokens=4)
    requests = [[{"role": "user", "content": f"Say the number {i}."}] for i in range(12)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        generations = list(pool.map(lambda r: served.generate(r, params), requests))
    assert len(generations) == 12 and all(g.output_tokens > 0 for g in generations)
    assert 1 <= peak <= served.concurrency == 2


@pytest.mark.server
@pytest.mark.real_model
def test_load_model_builds_it_from_a_spec(llama_server_url):
    model = load_model("openai:whatever", base_url=llama_server_url, max_retries=1)
    try:
        assert isinstance(model, OpenAICompatModel)
        assert model.identity == f"openai:{llama_server_url}#whatever"
        assert model.generate(QUESTION, GenerationParams(max_tokens=4)).text
    finally:
        model.close()


# -- failures, against nothing or a scripted stub ---------------------------------------------


def test_unreachable_server_fails_fast_and_names_the_url(unused_port):
    base_url = f"http://127.0.0.1:{unused_port}/v1"
    model = openai_model("m", base_url=base_url, max_retries=1)
    with pytest.raises(ModelError) as caught:
        model.generate(QUESTION, SHORT)
    message = str(caught.value)
    assert base_url in message and "openai:m" in message
    assert "check the server is running" in message and "2 attempts" in message
    assert "\n" not in message


def test_the_api_key_never_appears_in_errors(unused_port, monkeypatch, openai_stub):
    monkeypatch.setenv("PROMPTMILL_TEST_KEY", FAKE_KEY)
    dead = openai_model("m", base_url=f"http://127.0.0.1:{unused_port}/v1",
                        api_key_env="PROMPTMILL_TEST_KEY", max_retries=1)
    with pytest.raises(ModelError) as caught:
        dead.generate(QUESTION, SHORT)
    assert FAKE_KEY not in _everything_printed(caught.value)

    # A server that echoes the request's Authorization header back in its error message.
    openai_stub.script(StubReply(401, echo_authorization=True))
    echoing = openai_model("m", base_url=openai_stub.base_url,
                           api_key_env="PROMPTMILL_TEST_KEY", max_retries=1)
    with pytest.raises(ModelError) as caught:
        echoing.generate(QUESTION, SHORT)
    assert openai_stub.requests[0].headers["authorization"] == f"Bearer {FAKE_KEY}"
    printed = _everything_printed(caught.value)
    assert FAKE_KEY not in printed and "Bearer ***" in printed
    assert "HTTP 401" in printed and "PROMPTMILL_TEST_KEY" in printed
    assert len(openai_stub.requests) == 1  # 401 is not retried
    assert FAKE_KEY not in repr(echoing) + repr(vars(echoing))


def test_a_slow_server_times_out_with_a_fix(openai_stub):
    openai_stub.script(StubReply(delay=3.0))
    model = openai_model("m", base_url=openai_stub.base_url, timeout=0.3, max_retries=0)
    with pytest.raises(ModelError) as caught:
        model.generate(QUESTION, SHORT)
    # the message proves the client's timeout fired, not the stub's 3 s reply; no clock needed
    assert len(openai_stub.requests) == 1
    message = str(caught.value)
    assert "timed out after 0.3s" in message and "model.params.timeout" in message
    assert openai_stub.base_url in message


def test_5xx_and_429_are_retried_until_success(openai_stub):
    openai_stub.script(StubReply(503, error_body("loading")),
                       StubReply(429, error_body("slow down"), headers={"retry-after": "0"}),
                       StubReply(200, chat_completion_body("Paris")))
    model = openai_model("m", base_url=openai_stub.base_url, max_retries=4)
    generation = model.generate(QUESTION, SHORT)
    assert generation.text == "Paris"
    assert (generation.input_tokens, generation.output_tokens) == (3, 1)
    assert len(openai_stub.requests) == 3


def test_5xx_gives_up_after_max_retries(openai_stub):
    openai_stub.script(StubReply(500, error_body("boom"), headers={"retry-after": "0"}))
    model = openai_model("m", base_url=openai_stub.base_url, max_retries=2)
    with pytest.raises(ModelError) as caught:
        model.generate(QUESTION, SHORT)
    assert len(openai_stub.requests) == 3
    assert "HTTP 500 after 3 attempts: boom" in str(caught.value)


def test_4xx_is_not_retried_and_shows_the_server_message(openai_stub):
    openai_stub.script(StubReply(400, error_body("max_tokens is too large")))
    model = openai_model("m", base_url=openai_stub.base_url, max_retries=4)
    with pytest.raises(ModelError) as caught:
        model.generate(QUESTION, SHORT)
    assert len(openai_stub.requests) == 1
    message = str(caught.value)
    assert "HTTP 400" in message and "max_tokens is too large" in message
    assert openai_stub.base_url in message


def test_missing_usage_is_estimated_from_words(openai_stub):
    openai_stub.script(StubReply(200, chat_completion_body("Paris is nice", usage=False)))
    model = openai_model("m", base_url=openai_stub.base_url)
    generation = model.generate(QUESTION, SHORT)
    assert generation.output_tokens == 3
    assert generation.input_tokens == 6  # words in QUESTION


def test_requests_carry_the_generation_params(openai_stub):
    openai_stub.script(StubReply(200))
    model = openai_model("m", base_url=openai_stub.base_url, extra_body={"min_p": 0.1})
    params = GenerationParams(max_tokens=5, temperature=0.5, top_p=0.9, seed=3, stop=("##",),
                              logprobs=True)
    model.generate(QUESTION, params)
    model.generate(QUESTION, GenerationParams())
    assert model.generate("Once upon", GenerationParams(logprobs=True)).text == "hello"
    chat, plain_chat, text = openai_stub.requests
    assert chat.path == "/v1/chat/completions"
    assert chat.body["messages"] == QUESTION
    expected = {"model": "m", "max_tokens": 5, "temperature": 0.5, "top_p": 0.9, "seed": 3,
                "stop": ["##"], "logprobs": True, "min_p": 0.1}
    assert expected.items() <= chat.body.items()
    assert plain_chat.body.get("stop") is None and "logprobs" not in plain_chat.body
    assert text.path == "/v1/completions"
    assert text.body["prompt"] == "Once upon" and text.body["logprobs"] == 0


# -- configuration --------------------------------------------------------------------------


def test_an_api_key_param_is_refused():
    with pytest.raises(ConfigError, match="environment variable"):
        openai_model("m", api_key="sk-123")


def test_unknown_params_and_bad_values_are_refused():
    with pytest.raises(ConfigError, match="temprature"):
        openai_model("m", temprature=0.5)
    with pytest.raises(ConfigError, match="concurrency"):
        openai_model("m", concurrency=0)
    with pytest.raises(ConfigError, match="openai:MODEL_NAME"):
        openai_model("")


def test_base_url_comes_from_param_then_env_then_default(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert openai_model("m").identity == f"openai:{DEFAULT_BASE_URL}#m"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    assert openai_model("m").identity == "openai:http://127.0.0.1:9/v1#m"
    model = openai_model("m", base_url="http://localhost:8080/v1", concurrency=6)
    assert model.identity == "openai:http://localhost:8080/v1#m"
    assert model.concurrency == 6
    model.close()


def _everything_printed(error: BaseException) -> str:
    return str(error) + repr(error) + "".join(traceback.format_exception(error))


@pytest.mark.server
@pytest.mark.real_model
def test_output_spec_is_enforced_by_the_server(llama_server_url):
    """llama_cpp.server rejects OpenAI's json_schema format, so 'auto' falls back to JSON mode
    with the schema, once; labels come back unwrapped and valid every time."""
    from promptmill.constrain import OutputSpec

    model = openai_model("smollm2", base_url=llama_server_url, max_retries=1)
    labels = OutputSpec(labels=("positive", "negative"))
    params = GenerationParams(max_tokens=16, constraint=labels.key())
    for text in ("I loved this film", "Dreadful service", "It was okay I guess"):
        out = model.generate([{"role": "user", "content": f"Sentiment of: {text}"}], params)
        assert out.text in labels.labels, out.text
    schema = OutputSpec(json_schema={"type": "object", "properties": {
        "city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"]})
    out = model.generate([{"role": "user", "content": "Describe Paris as JSON."}],
                         GenerationParams(max_tokens=48, constraint=schema.key()))
    assert schema.is_valid(out.text), out.text
    grammar = openai_model("smollm2", base_url=llama_server_url, constraint_mode="grammar")
    out = grammar.generate("Is water wet? Answer:", GenerationParams(max_tokens=8,
                                                                     constraint=labels.key()))
    assert out.text in labels.labels
