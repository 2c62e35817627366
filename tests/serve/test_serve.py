"""The served endpoint with the real openai client, on a fake backend: answers, streaming,
auth, size and concurrency limits, backend failures, traces and startup errors."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
import yaml
from helpers import free_port, run_main, wait_for, write_jsonl
from serve_helpers import SERVER_KEY, client, running, save

from promptmill.models.base import Generation, Model
from promptmill.models.fake import FakeModel
from promptmill.models.registry import load_model
from promptmill.prompt import Prompt
from promptmill.serve import create_app, load_served_prompt
from promptmill.serve.traces import list_traces, traces_to_dataset
from promptmill.task import FieldMap, load_examples

pytestmark = pytest.mark.server

ANSWERS = {"France": "Paris", "Japan": "Tokyo"}


def make_app(store, ref="capital@production", model=None, **limits):
    model = model or FakeModel(ANSWERS, default="unknown", concurrency=8)
    served = load_served_prompt(store, ref, model=model)
    limits.setdefault("api_key", SERVER_KEY)
    return create_app(served, store, **limits)


def test_completion_applies_the_prompt_and_is_traced(store, capital_prompt):
    app = make_app(store)
    with running(app) as url:
        reply = client(url).chat.completions.create(
            model="anything", messages=[{"role": "system", "content": "ignored"},
                                        {"role": "user", "content": "France"}])
    assert reply.choices[0].message.content == "Paris"
    assert reply.model == "capital@1"
    assert reply.system_fingerprint == f"promptmill:{capital_prompt.hash}"
    assert reply.usage.completion_tokens == 1
    [trace] = list_traces(store)
    assert trace["status"] == 200 and trace["output"] == "Paris"
    assert json.loads(trace["inputs"]) == {"country": "France"}
    sent = json.loads(trace["messages"])  # the stored version was applied, not the client's
    assert sent == capital_prompt.render_messages({"country": "France"})
    assert trace["prompt_id"] == store.get_prompt("capital", "production")["id"]


def test_streaming_sends_chunks_that_add_up_to_the_answer(store):
    save(store, Prompt(name="echo", instruction="Repeat.", template="{{ text }}"))
    model = FakeModel(fn=lambda text: f"you said: {text}", concurrency=4)
    with running(make_app(store, "echo", model=model)) as url:
        c = client(url)
        plain = c.chat.completions.create(model="x", messages=[
            {"role": "user", "content": "one two three"}]).choices[0].message.content
        stream = c.chat.completions.create(model="x", stream=True,
                                           stream_options={"include_usage": True},
                                           messages=[{"role": "user", "content": "one two three"}])
        chunks = list(stream)
    pieces = [ch.choices[0].delta.content for ch in chunks if ch.choices]
    assert plain == "you said: one two three"
    assert "".join(p or "" for p in pieces) == plain
    assert len([p for p in pieces if p]) == 5  # streamed word by word, not in one piece
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == 5


def test_json_message_fills_several_fields_and_missing_ones_get_400(store):
    save(store, Prompt(name="two", template="Q: {{ question }} Topic: {{ topic }}"))
    model = FakeModel(fn=lambda text: text.upper(), concurrency=2)
    with running(make_app(store, "two", model=model)) as url:
        c = client(url)
        ok = c.chat.completions.create(model="x", messages=[
            {"role": "user", "content": json.dumps({"question": "why", "topic": "sky"})}])
        with pytest.raises(openai.BadRequestError) as bad:
            c.chat.completions.create(model="x", messages=[
                {"role": "user", "content": json.dumps({"question": "why"})}])
        with pytest.raises(openai.BadRequestError) as no_user:
            c.chat.completions.create(model="x", messages=[{"role": "system", "content": "x"}])
    assert ok.choices[0].message.content == "Q: WHY TOPIC: SKY"
    assert "missing: topic" in bad.value.message and '"topic": "..."' in bad.value.message
    assert "no user message" in no_user.value.message


def test_bad_or_missing_key_gets_401(store, capital_prompt):
    with running(make_app(store)) as url:
        with pytest.raises(openai.AuthenticationError) as wrong:
            client(url, key="not-the-key").chat.completions.create(
                model="x", messages=[{"role": "user", "content": "France"}])
        missing = httpx.post(f"{url}/chat/completions",
                             json={"messages": [{"role": "user", "content": "France"}]})
        models = httpx.get(f"{url}/models", headers={"authorization": f"Bearer {SERVER_KEY}"})
    assert wrong.value.status_code == 401 and "API key" in wrong.value.message
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"
    assert models.json()["data"][0]["id"] == "capital@1"
    assert [t["status"] for t in list_traces(store)] == [401, 401]


def test_oversized_body_gets_413_by_header_and_by_counting(store, capital_prompt):
    with running(make_app(store, max_body_bytes=2000)) as url:
        with pytest.raises(openai.APIStatusError) as declared:
            client(url).chat.completions.create(
                model="x", messages=[{"role": "user", "content": "France " * 500}])

        def chunked():  # no Content-Length: the server must count the bytes itself
            for _ in range(10):
                yield b"x" * 500

        streamed = httpx.post(f"{url}/chat/completions", content=chunked(),
                              headers={"authorization": f"Bearer {SERVER_KEY}"})
        small = client(url).chat.completions.create(
            model="x", messages=[{"role": "user", "content": "Japan"}])
    assert declared.value.status_code == 413 and "--max-body-bytes" in declared.value.message
    assert streamed.status_code == 413
    assert small.choices[0].message.content == "Tokyo"


def test_dead_backend_gets_502_and_the_server_keeps_serving(store, capital_prompt):
    dead = load_model("openai:m", base_url=f"http://127.0.0.1:{free_port()}/v1",
                      max_retries=0, timeout=5)
    with running(make_app(store, model=dead)) as url:
        for _ in range(2):
            with pytest.raises(openai.InternalServerError) as exc:
                client(url).chat.completions.create(
                    model="x", messages=[{"role": "user", "content": "France"}])
            assert exc.value.status_code == 502
        health = httpx.get(f"{url.removesuffix('/v1')}/healthz")
    message = exc.value.message
    assert "cannot connect" in message and "still running" in message
    assert health.status_code == 200
    assert [t["status"] for t in list_traces(store)] == [502, 502]


def test_a_failing_call_does_not_affect_the_next(store, capital_prompt):
    model = FakeModel(ANSWERS, fail_on="Atlantis", concurrency=4)
    with running(make_app(store, model=model)) as url:
        c = client(url)
        with pytest.raises(openai.InternalServerError) as exc:
            c.chat.completions.create(model="x", messages=[{"role": "user",
                                                            "content": "Atlantis"}])
        after = c.chat.completions.create(model="x", messages=[{"role": "user",
                                                                "content": "Japan"}])
    assert "fake failure" in exc.value.message
    assert after.choices[0].message.content == "Tokyo"


class _Held(Model):
    """A backend whose calls wait for the test to release them; counts calls in flight."""

    identity = "held"
    concurrency = 64

    def __init__(self):
        self.release = threading.Event()
        self.now = self.peak = self.finished = 0
        self.lock = threading.Lock()

    def generate(self, request, params):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        self.release.wait(timeout=120)
        with self.lock:
            self.now -= 1
            self.finished += 1
        return Generation(text="ok", input_tokens=1, output_tokens=1)


def test_slow_backend_times_out_as_502(store, capital_prompt):
    model = _Held()
    with running(make_app(store, model=model, backend_timeout=0.3)) as url:
        try:
            with pytest.raises(openai.InternalServerError) as exc:
                client(url).chat.completions.create(
                    model="x", messages=[{"role": "user", "content": "France"}])
            # The 502 came while the backend still held the call: the timeout ended it.
            assert model.now == 1 and model.finished == 0
        finally:
            model.release.set()
    assert "no answer within 0.3s" in exc.value.message


def test_concurrency_limit_queues_requests_and_drops_none(store, capital_prompt):
    model = _Held()
    app = make_app(store, model=model, max_concurrency=2)
    gate = app.state.promptmill.gate
    with running(app) as url:
        c = client(url)

        def ask(i):
            return c.chat.completions.create(model="x", messages=[
                {"role": "user", "content": f"country {i}"}]).choices[0].message.content

        with ThreadPoolExecutor(10) as pool:
            answers = pool.map(ask, range(10))
            try:  # all ten sent: two reach the backend, eight wait at the gate
                assert wait_for(lambda: gate.stats()["in_flight"] == 2
                                and gate.stats()["waiting"] == 8, timeout=60), gate.stats()
                assert model.now == 2
            finally:
                model.release.set()
            answers = list(answers)
        stats = gate.stats()
    assert answers == ["ok"] * 10 and model.finished == 10
    assert model.peak == 2 and stats["max_in_flight"] == 2 and stats["max_waiting"] == 8


def test_traces_become_a_dataset(store, capital_prompt, tmp_path):
    with running(make_app(store)) as url:
        c = client(url)
        for country in ("France", "Japan", "Peru"):
            c.chat.completions.create(model="x", messages=[{"role": "user", "content": country}])
        with pytest.raises(openai.AuthenticationError):
            client(url, key="wrong").chat.completions.create(
                model="x", messages=[{"role": "user", "content": "Spain"}])
    count = traces_to_dataset(store, tmp_path / "traces.jsonl", "capital")
    examples = load_examples(tmp_path / "traces.jsonl",
                             FieldMap(inputs=("country",), target="output", id="id"))
    assert count == 3  # the 401 is traced but is not a dataset row
    assert [(e.inputs["country"], e.target) for e in examples] == [
        ("France", "Paris"), ("Japan", "Tokyo"), ("Peru", "unknown")]


def test_retrieved_demos_come_from_the_task_config(store, tmp_path, capitals_rows):
    write_jsonl(tmp_path / "data.jsonl", capitals_rows)
    (tmp_path / "task.yaml").write_text(yaml.safe_dump({
        "name": "capitals", "data": {"path": "data.jsonl", "input": ["country"],
                                     "target": "capital", "id": "id"},
        "splits": {"train": 8, "validation": 0, "test": 4}, "model": "fake:Rome",
        "generation": {"max_tokens": 5}}))
    prompt = Prompt(name="retrieving", instruction="Name the capital.",
                    template="Country: {{ country }}", demo_selection={"k": 2})
    save(store, prompt)
    from promptmill.errors import ConfigError

    with pytest.raises(ConfigError, match="--config"):
        load_served_prompt(store, "retrieving", model=FakeModel())
    served = load_served_prompt(store, "retrieving", config=tmp_path / "task.yaml")
    assert served.params.max_tokens == 5
    with running(create_app(served, store, api_key=SERVER_KEY)) as url:
        reply = client(url).chat.completions.create(
            model="x", messages=[{"role": "user", "content": "Italy"}])
    assert reply.choices[0].message.content == "Rome"
    sent = json.loads(list_traces(store)[0]["messages"])
    assert len(sent) == 1 + 2 * 2 + 1  # system, two retrieved demo pairs, the input
    assert sent[-1]["content"] == "Country: Italy"


def test_unknown_prompt_or_tag_is_a_clear_startup_error(store, capital_prompt, capsys,
                                                        sqlite_url):
    code, out = run_main(["--db", sqlite_url, "serve", "--prompt", "capital@staging",
                          "--model", "fake:x"], capsys)
    assert code == 2
    assert "no prompt 'capital@staging'" in out and "Traceback" not in out
    code, out = run_main(["--db", sqlite_url, "serve", "--prompt", "nothing",
                          "--model", "fake:x"], capsys)
    assert code == 2 and "no prompt 'nothing'" in out


def test_public_host_without_a_key_is_refused(store, capital_prompt, capsys, sqlite_url,
                                              monkeypatch):
    monkeypatch.delenv("PROMPTMILL_API_KEY", raising=False)
    code, out = run_main(["--db", sqlite_url, "serve", "--prompt", "capital",
                          "--model", "fake:x", "--host", "0.0.0.0"], capsys)
    assert code == 2 and "PROMPTMILL_API_KEY" in out


def test_cli_traces_table_and_dataset(store, capital_prompt, capsys, sqlite_url, tmp_path):
    with running(make_app(store)) as url:
        client(url).chat.completions.create(model="x", messages=[{"role": "user",
                                                                  "content": "Japan"}])
    code, out = run_main(["--db", sqlite_url, "traces"], capsys)
    assert code == 0 and "Tokyo" in out and "capital" in out
    code, out = run_main(["--db", sqlite_url, "traces", "--prompt", "capital", "--dataset",
                          tmp_path / "d.jsonl"], capsys)
    assert code == 0 and "wrote 1 trace(s)" in out
    assert json.loads((tmp_path / "d.jsonl").read_text()) == {
        "id": "trace-1", "country": "Japan", "output": "Tokyo"}


def test_client_settings_can_lower_max_tokens_and_stream_errors_are_502(store):
    save(store, Prompt(name="echo", template="{{ text }}"))
    model = FakeModel(fn=lambda text: text, fail_on="explode", concurrency=2)
    with running(make_app(store, "echo", model=model)) as url:
        c = client(url)
        short = c.chat.completions.create(model="x", max_tokens=2, messages=[
            {"role": "user", "content": "one two three four"}])
        with pytest.raises(openai.InternalServerError):
            c.chat.completions.create(model="x", stream=True, messages=[
                {"role": "user", "content": "explode now"}])
        with pytest.raises(openai.BadRequestError, match="temperature"):
            c.chat.completions.create(model="x", temperature=5, messages=[
                {"role": "user", "content": "hi"}])
    assert short.choices[0].message.content == "one two"
    assert short.choices[0].finish_reason == "length"
