"""A backend that answers 200 with something that is not a completion: one line, never a crash.

The openai SDK builds its response objects without validating them, so ``content`` may arrive as
null, a list, a number or a dict, ``choices`` may be missing, and a body that is not an object
makes the SDK itself raise AttributeError. Each must become a ``ModelError`` that names the
backend and what it returned.
"""

from __future__ import annotations

import json

import pytest
import yaml
from helpers import run_main, write_jsonl
from openai_stub import StubReply, chat_completion_body, text_completion_body

from promptmill.errors import ModelError
from promptmill.models import Generation, GenerationParams, Model
from promptmill.models.openai_compat import openai_model

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def _chat(content, **extra) -> dict:
    body = chat_completion_body()
    body["choices"][0]["message"] = {"role": "assistant", "content": content, **extra}
    return body


def _raw(payload: bytes, content_type: str = "application/json") -> StubReply:
    return StubReply(200, raw=payload, content_type=content_type)


# (reply, words the one-line error must contain)
CHAT_REPLIES = {
    "content-null": (StubReply(200, _chat(None)), ["null", "choices[0].message.content"]),
    "content-list": (StubReply(200, _chat([{"type": "text", "text": "Paris"}])),
                     ["list", "choices[0].message.content"]),
    "content-number": (StubReply(200, _chat(42)), ["int", "42"]),
    "content-float": (StubReply(200, _chat(1.5)), ["float"]),
    "content-bool": (StubReply(200, _chat(True)), ["bool"]),
    "content-dict": (StubReply(200, _chat({"answer": "Paris"})), ["dict", "answer"]),
    "content-refusal": (StubReply(200, _chat(None, refusal="I cannot help with that")),
                        ["refusal", "I cannot help"]),
    "message-missing": (StubReply(200, {"choices": [{"index": 0, "finish_reason": "stop"}]}),
                        ["choices[0].message"]),
    "message-string": (StubReply(200, {"choices": [{"message": "Paris"}]}),
                       ["choices[0].message"]),
    "message-null": (StubReply(200, {"choices": [{"message": None}]}), ["choices[0].message"]),
    "choices-missing": (StubReply(200, {"id": "x", "object": "chat.completion"}),
                        ["no choices", "null"]),
    "choices-null": (StubReply(200, {"choices": None}), ["no choices"]),
    "choices-empty": (StubReply(200, {"choices": []}), ["no choices"]),
    "choices-dict": (StubReply(200, {"choices": {"0": "Paris"}}), ["no choices", "dict"]),
    "choice-string": (StubReply(200, {"choices": ["Paris"]}), ["choices[0]"]),
    "body-array": (_raw(b"[1, 2, 3]"), ["not an OpenAI completion"]),
    "body-string": (_raw(b'"Paris"'), ["not an OpenAI completion"]),
    "body-number": (_raw(b"7"), ["not an OpenAI completion"]),
    "body-null": (_raw(b"null"), ["not an OpenAI completion"]),
    "body-invalid-json": (_raw(b"{not json"), ["not an OpenAI completion"]),
    "body-html": (_raw(b"<html>502 Bad Gateway</html>", "text/html"),
                  ["not an OpenAI completion"]),
    "body-empty": (_raw(b""), ["not an OpenAI completion"]),
}

TEXT_REPLIES = {
    "text-null": ({"choices": [{"index": 0, "text": None}]}, ["null", "choices[0].text"]),
    "text-number": ({"choices": [{"index": 0, "text": 3}]}, ["int", "choices[0].text"]),
    "text-list": ({"choices": [{"index": 0, "text": ["a", "b"]}]}, ["list"]),
    "text-missing": ({"choices": [{"index": 0}]}, ["choices[0].text"]),
    "text-choices-missing": ({"object": "text_completion"}, ["no choices"]),
}


def _assert_one_line_naming(error: ModelError, base_url: str, words: list[str]) -> None:
    message = error.one_line()
    assert "\n" not in message
    assert "openai:m" in message and base_url in message  # names the backend
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("case", CHAT_REPLIES, ids=list(CHAT_REPLIES))
def test_a_chat_reply_that_is_not_text_is_a_model_error(openai_stub, case):
    reply, words = CHAT_REPLIES[case]
    openai_stub.script(reply)
    model = openai_model("m", base_url=openai_stub.base_url, max_retries=2)
    with pytest.raises(ModelError) as caught:
        model.generate(QUESTION, GenerationParams(max_tokens=4))
    _assert_one_line_naming(caught.value, openai_stub.base_url, words)
    assert len(openai_stub.requests) == 1  # a malformed reply is not retried


@pytest.mark.parametrize("case", TEXT_REPLIES, ids=list(TEXT_REPLIES))
def test_a_text_reply_that_is_not_text_is_a_model_error(openai_stub, case):
    body, words = TEXT_REPLIES[case]
    openai_stub.script(StubReply(200, body))
    model = openai_model("m", base_url=openai_stub.base_url, max_retries=0)
    with pytest.raises(ModelError) as caught:
        model.generate("The capital of France is", GenerationParams(max_tokens=4))
    _assert_one_line_naming(caught.value, openai_stub.base_url, words)


@pytest.mark.parametrize("usage", [{"prompt_tokens": "3", "completion_tokens": None},
                                   [1, 2], "many", {"prompt_tokens": -1}],
                         ids=["strings", "list", "string", "negative"])
def test_junk_usage_is_estimated_not_stored(openai_stub, usage):
    body = {**chat_completion_body("Paris is nice"), "usage": usage}
    body["choices"][0]["finish_reason"] = 7  # junk finish reasons are dropped too
    openai_stub.script(StubReply(200, body))
    generation = openai_model("m", base_url=openai_stub.base_url).generate(
        QUESTION, GenerationParams())
    assert generation.text == "Paris is nice"
    assert (generation.input_tokens, generation.output_tokens) == (6, 3)
    assert generation.finish_reason is None


def test_junk_logprobs_are_a_model_error(openai_stub):
    body = chat_completion_body("Paris")
    body["choices"][0]["logprobs"] = {"content": [{"token": "Paris", "logprob": "high"}]}
    openai_stub.script(StubReply(200, body))
    with pytest.raises(ModelError, match="logprobs that are not numbers"):
        openai_model("m", base_url=openai_stub.base_url).generate(
            QUESTION, GenerationParams(logprobs=True))


def test_a_text_completion_still_works(openai_stub):
    openai_stub.script(StubReply(200, text_completion_body(" Paris")))
    generation = openai_model("m", base_url=openai_stub.base_url).generate(
        "The capital of France is", GenerationParams())
    assert generation.text == " Paris"


@pytest.mark.parametrize("text", [None, 42, ["Paris"], {"a": 1}, b"Paris"],
                         ids=["null", "number", "list", "dict", "bytes"])
def test_any_backend_returning_non_text_is_a_model_error(text):
    """The check lives in Model itself, so plugin backends get it too."""

    class Sloppy(Model):
        identity = "sloppy:1"

        def generate(self, request, params):
            return Generation(text=text)

    with pytest.raises(ModelError) as caught:
        Sloppy().generate(QUESTION, GenerationParams())
    message = caught.value.one_line()
    assert "sloppy:1" in message and "as the answer text" in message
    assert ("null" if text is None else type(text).__name__) in message


def test_a_backend_returning_no_generation_is_a_model_error():
    class Bare(Model):
        identity = "bare:1"

        def generate(self, request, params):
            return "Paris"

    with pytest.raises(ModelError, match="bare:1.*returned a str"):
        Bare().generate(QUESTION, GenerationParams())


def test_cli_eval_against_a_null_content_backend_is_one_line_exit_2(openai_stub, tmp_path,
                                                                     capsys):
    openai_stub.script(StubReply(200, _chat(None)))
    write_jsonl(tmp_path / "data.jsonl", [{"id": f"r{i}", "q": f"q{i}", "a": "x"}
                                          for i in range(3)])
    config = tmp_path / "task.yaml"
    config.write_text(yaml.safe_dump({
        "name": "t", "data": {"path": "data.jsonl", "input": ["q"], "target": "a", "id": "id"},
        "splits": {"train": 0, "validation": 0, "test": 3},
        "model": {"name": "openai:m", "params": {"base_url": openai_stub.base_url,
                                                 "max_retries": 0}},
        "prompt": {"name": "p", "instruction": "Answer.", "template": "{{ q }}"}}))
    code, output = run_main(["--db", f"sqlite:///{tmp_path / 'store.db'}", "eval", config,
                             "-q"], capsys)
    assert code == 2, output
    assert "Traceback" not in output
    error_lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, output
    assert "openai:m" in error_lines[0] and "null" in error_lines[0]
    assert json.dumps(None) in error_lines[0]  # "null": what the backend returned
