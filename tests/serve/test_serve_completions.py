"""The legacy ``/v1/completions`` endpoint, streams that never leak a secret cut across chunks,
and the JSON answer a server bug still gets."""

from __future__ import annotations

import httpx
import openai
import pytest
from serve_helpers import SERVER_KEY, client, running, save

from promptmill.models.fake import FakeModel
from promptmill.prompt import Prompt
from promptmill.serve import create_app, load_served_prompt
from promptmill.serve.traces import list_traces

pytestmark = pytest.mark.server

SPACED_KEY = "open sesame 9931 north"  # a key with spaces: streamed word by word, it straddles


def _echo_app(store, api_key=SERVER_KEY, **options):
    save(store, Prompt(name="echo", instruction="Repeat.", template="{{ text }}"))
    model = FakeModel(fn=lambda text: f"you said: {text}", concurrency=4)
    return create_app(load_served_prompt(store, "echo", model=model), store, api_key=api_key,
                      **options)


def test_legacy_completion_answers_in_text_completion_shape(store):
    with running(_echo_app(store)) as url:
        reply = client(url).completions.create(model="x", prompt="one two three")
        listed = client(url).completions.create(model="x", prompt=["four five"])
    assert reply.object == "text_completion" and reply.id.startswith("cmpl-")
    assert reply.choices[0].text == "you said: one two three"
    assert reply.choices[0].finish_reason == "stop" and reply.model == "echo@1"
    assert reply.usage.completion_tokens == 5
    assert listed.choices[0].text == "you said: four five"
    assert [t["status"] for t in list_traces(store)] == [200, 200]


def test_legacy_completion_streams_text_pieces(store):
    with running(_echo_app(store)) as url:
        chunks = list(client(url).completions.create(
            model="x", prompt="one two three", stream=True,
            stream_options={"include_usage": True}))
    texts = [c.choices[0].text for c in chunks if c.choices]
    assert "".join(texts) == "you said: one two three"
    assert len([t for t in texts if t]) == 5  # word by word
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == 5


@pytest.mark.parametrize("body,where", [
    ({}, "prompt"), ({"prompt": ""}, "prompt"), ({"prompt": ["a", "b"]}, "one prompt"),
    ({"prompt": 5}, "prompt"), ({"prompt": "x", "n": 2}, "n"),
    ({"prompt": "x", "temperature": 3}, "temperature")],
    ids=["missing", "empty", "two", "number", "n", "temperature"])
def test_bad_completion_bodies_get_400_naming_the_field(store, body, where):
    with running(_echo_app(store)) as url:
        reply = httpx.post(f"{url}/completions", json=body,
                           headers={"authorization": f"Bearer {SERVER_KEY}"})
    assert reply.status_code == 400
    message = reply.json()["error"]["message"]
    assert where in message and '{"prompt": "..."}' in message


def test_completions_need_the_key_too(store):
    with running(_echo_app(store)) as url, pytest.raises(openai.AuthenticationError):
        client(url, "wrong").completions.create(model="x", prompt="hi")


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_a_secret_cut_across_stream_chunks_is_redacted_whole(store, endpoint):
    """The answer is redacted before it is cut into words: a key with spaces would otherwise
    reach the client one harmless-looking word per chunk."""
    with running(_echo_app(store, api_key=SPACED_KEY)) as url:
        c = client(url, SPACED_KEY)
        if endpoint == "chat":
            chunks = list(c.chat.completions.create(model="x", stream=True, messages=[
                {"role": "user", "content": f"the key is {SPACED_KEY} ok"}]))
            joined = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        else:
            chunks = list(c.completions.create(model="x", stream=True,
                                               prompt=f"the key is {SPACED_KEY} ok"))
            joined = "".join(ch.choices[0].text for ch in chunks if ch.choices)
        raw = httpx.post(f"{url}/chat/completions", headers={
            "authorization": f"Bearer {SPACED_KEY}"}, json={"stream": True, "messages": [
                {"role": "user", "content": f"the key is {SPACED_KEY} ok"}]}).text
    assert joined == "you said: the key is *** ok"
    assert len(chunks) > 4  # really streamed in pieces
    assert SPACED_KEY not in raw and "sesame" not in raw and "9931" not in raw


def test_a_server_bug_still_answers_openai_json_without_secrets(store):
    app = _echo_app(store)
    served = app.state.promptmill.served

    def broken(rendered, text):
        raise RuntimeError(f"bug while holding {SERVER_KEY}")

    served.answer_text = broken
    with running(app) as url:
        reply = httpx.post(f"{url}/chat/completions",
                           headers={"authorization": f"Bearer {SERVER_KEY}"},
                           json={"messages": [{"role": "user", "content": "hi"}]})
        health = httpx.get(f"{url.removesuffix('/v1')}/healthz")
    assert reply.status_code == 500
    assert reply.json()["error"]["type"] == "server_error"
    assert SERVER_KEY not in reply.text and "Traceback" not in reply.text
    assert health.status_code == 200  # and the server keeps serving
