"""Real token streaming in ``serve``, on a fake backend that streams word by word: chunks go out
as the backend decodes, failures before and after the first piece, the concurrency slot after a
client disconnects, the server's own secrets, and the whole-answer path for extraction."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from helpers import wait_for
from serve_helpers import SERVER_KEY, client, running, save

from promptmill.models.base import Generation, Model
from promptmill.prompt import Prompt
from promptmill.serve import create_app, load_served_prompt
from promptmill.serve.traces import list_traces

pytestmark = pytest.mark.server

ANSWER = "the capital is Paris, of course."


class WordStreamer(Model):
    """Streams ``answer`` one word (with its trailing space) at a time.

    ``hold``: after the first piece, wait until the test sets it. ``fail_at``: raise instead of
    sending that piece (0: before any text). ``barrier``: every stream waits there first, so a
    test can prove several streams run at once.
    """

    identity = "fake:word-streamer"
    concurrency = 8

    def __init__(self, answer: str = ANSWER, *, hold: threading.Event | None = None,
                 fail_at: int | None = None, barrier: threading.Barrier | None = None,
                 delay: float = 0.005):
        self.answer, self.hold, self.fail_at, self.barrier = answer, hold, fail_at, barrier
        self.delay = delay
        self.streams = 0
        self.finished = threading.Event()

    def _words(self) -> list[str]:
        return [w + " " for w in self.answer.split(" ")[:-1]] + [self.answer.split(" ")[-1]]

    def generate(self, request, params) -> Generation:
        words = self._words()
        return Generation(text=self.answer, input_tokens=7, output_tokens=len(words))

    def stream(self, request, params, on_piece) -> Generation:
        self.streams += 1
        if self.barrier is not None:
            self.barrier.wait(10)
        words = self._words()
        for i, word in enumerate(words):
            if i == self.fail_at:
                raise RuntimeError("the backend lost its GPU")
            on_piece(word)
            if i == 0 and self.hold is not None:
                self.hold.wait(30)
            time.sleep(self.delay)
        self.finished.set()
        return Generation(text=self.answer, input_tokens=7, output_tokens=len(words),
                          finish_reason="stop")


def serve_with(store, model: Model, prompt: Prompt | None = None, **limits):
    prompt = prompt or Prompt(name="capital", instruction="Name the capital city.",
                              template="Country: {{ country }}")
    save(store, prompt, "production")
    served = load_served_prompt(store, f"{prompt.name}@production", model=model)
    limits.setdefault("api_key", SERVER_KEY)
    return running(create_app(served, store, **limits))


def chat_stream(c, **extra):
    return c.chat.completions.create(model="x", stream=True, messages=[
        {"role": "user", "content": "France"}], **extra)


def contents(chunks) -> list[str]:
    return [ch.choices[0].delta.content for ch in chunks
            if ch.choices and ch.choices[0].delta.content]


def test_the_first_chunk_arrives_while_the_backend_is_still_decoding(store):
    hold = threading.Event()
    model = WordStreamer(hold=hold)
    with serve_with(store, model) as url:
        chunks = iter(chat_stream(client(url), stream_options={"include_usage": True}))
        opening = next(chunks)
        first = next(chunks)
        still_decoding = not model.finished.is_set()
        hold.set()
        rest = list(chunks)
    assert opening.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content == "the "
    assert still_decoding  # the backend was held after its first piece
    assert [first.choices[0].delta.content, *contents(rest)] == model._words()
    finishes = [ch.choices[0].finish_reason for ch in rest if ch.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert rest[-1].usage.completion_tokens == 6 and rest[-1].usage.prompt_tokens == 7
    [trace] = list_traces(store)  # recorded once, at the end, with the whole answer
    assert trace["status"] == 200 and trace["output"] == ANSWER
    assert trace["tokens_out"] == 6 and trace["seconds"] > 0


def test_legacy_completions_stream_as_decoded_too(store):
    save(store, Prompt(name="echo", template="{{ text }}"), "production")
    model = WordStreamer()
    served = load_served_prompt(store, "echo@production", model=model)
    with running(create_app(served, store, api_key=SERVER_KEY)) as url:
        chunks = list(client(url).completions.create(model="x", prompt="France", stream=True))
    texts = [ch.choices[0].text for ch in chunks if ch.choices[0].text]
    assert texts == model._words() and model.streams == 1
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_a_backend_failing_before_its_first_piece_gets_the_502_json(store):
    with serve_with(store, WordStreamer(fail_at=0)) as url:
        with pytest.raises(openai.InternalServerError) as caught:
            list(chat_stream(client(url)))
    assert caught.value.status_code == 502
    assert "lost its GPU" in caught.value.message
    assert caught.value.body["type"] == "backend_error"
    [trace] = list_traces(store)
    assert trace["status"] == 502 and "lost its GPU" in trace["error"]


def test_a_failure_after_the_first_piece_ends_the_stream_with_an_error_event(store):
    with serve_with(store, WordStreamer(fail_at=2)) as url:
        got: list[str] = []
        with pytest.raises(openai.APIError) as caught:
            for chunk in chat_stream(client(url)):
                got.extend(contents([chunk]))
        raw = raw_stream(url)
    assert got == ["the ", "capital "]
    assert "lost its GPU" in caught.value.message
    events = [line for line in raw if line.startswith("data: ")]
    error = json.loads(events[-2][len("data: "):])["error"]
    assert error["type"] == "backend_error" and events[-1] == "data: [DONE]"
    traces = list_traces(store)
    assert [t["status"] for t in traces] == [502, 502]
    assert traces[0]["output"] == "the capital " and "lost its GPU" in traces[0]["error"]


def test_the_backend_timeout_after_the_first_piece_is_an_error_event(store):
    hold = threading.Event()
    try:
        with serve_with(store, WordStreamer(hold=hold), backend_timeout=0.5) as url:
            got: list[str] = []
            with pytest.raises(openai.APIError) as caught:
                for chunk in chat_stream(client(url)):
                    got.extend(contents([chunk]))
            health = httpx.get(url.removesuffix("/v1") + "/healthz").json()
    finally:
        hold.set()
    assert got == ["the "] and "no answer within 0.5s" in caught.value.message
    assert health["queue"]["in_flight"] == 0  # the slot is free, as for a plain timeout
    [trace] = list_traces(store)
    assert trace["status"] == 502 and "no answer within" in trace["error"]


def test_a_client_that_disconnects_stops_its_generation_and_frees_its_slot(store):
    hold = threading.Event()
    model = WordStreamer(hold=hold)
    with serve_with(store, model, max_concurrency=1) as url:
        health = url.removesuffix("/v1") + "/healthz"
        with httpx.Client(timeout=10) as http:
            with http.stream("POST", f"{url}/chat/completions", json={
                    "messages": [{"role": "user", "content": "France"}], "stream": True},
                    headers={"authorization": f"Bearer {SERVER_KEY}"}) as response:
                lines = response.iter_lines()
                assert next(line for line in lines if '"the "' in line)
            # the client is gone; the backend is still held mid-answer
            busy = http.get(health).json()["queue"]["in_flight"]
            hold.set()
            assert wait_for(lambda: http.get(health).json()["queue"]["in_flight"] == 0, 10)
            # the one slot is really free: the next request is answered
            again = client(url).chat.completions.create(model="x", messages=[
                {"role": "user", "content": "France"}])
    assert busy == 1 and again.choices[0].message.content == ANSWER
    assert wait_for(lambda: len(list_traces(store)) == 2, 10)
    gone, answered = sorted(list_traces(store), key=lambda t: t["status"], reverse=True)
    # the backend stopped at its next piece: the trace has what the client got, and why
    assert (gone["status"], gone["output"]) == (499, "the ")
    assert "disconnected" in gone["error"] and answered["output"] == ANSWER


def test_the_servers_own_secret_never_reaches_a_chunk(store):
    secret = "zq-server-only-8f7d6c5b4a"  # not registered: only the server knows it
    model = WordStreamer(f"your key is {secret} so keep it")
    with serve_with(store, model, secrets=[secret]) as url:
        chunks = contents(chat_stream(client(url)))
    assert "".join(chunks) == "your key is *** so keep it"
    assert not any("zq-" in c or "8f7d" in c for c in chunks)
    assert len(chunks) > 3 and list_traces(store)[0]["output"] == "your key is *** so keep it"


def test_an_extraction_rule_takes_the_whole_answer_path(store):
    prompt = Prompt(name="extracted", template="Country: {{ country }}", extract="after:capital is")
    model = WordStreamer()
    with serve_with(store, model, prompt) as url:
        chunks = contents(chat_stream(client(url)))
    assert model.streams == 0  # generated whole, then extracted
    assert "".join(chunks) == "Paris, of course." and len(chunks) == 3


def test_concurrent_streams_reach_the_backend_together(store):
    clients = 4
    model = WordStreamer(barrier=threading.Barrier(clients))
    with serve_with(store, model) as url:
        c = client(url)
        with ThreadPoolExecutor(clients) as pool:
            answers = list(pool.map(lambda _: "".join(contents(chat_stream(c))),
                                    range(clients)))
        health = httpx.get(url.removesuffix("/v1") + "/healthz").json()
    assert answers == [ANSWER] * clients  # the barrier passed: nothing serialized them
    assert health["queue"]["max_in_flight"] == clients and health["batch_width"] == 1


def raw_stream(url: str) -> list[str]:
    with httpx.Client(timeout=10) as http:
        reply = http.post(f"{url}/chat/completions", json={
            "messages": [{"role": "user", "content": "France"}], "stream": True},
            headers={"authorization": f"Bearer {SERVER_KEY}"})
    return [line for line in reply.text.splitlines() if line]
