"""Fuzz target for the served endpoint's JSON body: ``fuzz_serve_body(data)`` posts one body.

The first byte of ``data`` picks the endpoint and the served prompt (a one-field template, which
takes any message text, or a two-field one, which needs a JSON object); the rest is the body.
Whatever it is, the reply must be JSON: a 200 completion in OpenAI's shape, or a 4xx error in
OpenAI's error shape. A 5xx, a non-JSON reply or an exception raised through the app fails.

A benchmark can call it N times and count the examples; the Hypothesis suite in
test_fuzz_serve_body.py calls it with random bytes, random JSON and mutated valid bodies.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

ENDPOINTS = ("/v1/chat/completions", "/v1/completions")
TEMPLATES = ("Country: {{ country }}", "Country: {{ country }}; topic: {{ topic }}")


@lru_cache(maxsize=1)
def _clients() -> tuple[Any, ...]:
    """One TestClient per template, on a throwaway SQLite store, with the fake model."""
    from fastapi.testclient import TestClient

    from promptmill.models.fake import FakeModel
    from promptmill.prompt import Prompt
    from promptmill.serve import create_app
    from promptmill.serve.render import load_served_prompt
    from promptmill.store.db import Store

    folder = Path(tempfile.mkdtemp(prefix="promptmill-fuzz-serve-"))
    store = Store(f"sqlite:///{folder / 'store.db'}")
    clients = []
    for i, template in enumerate(TEMPLATES):
        prompt = Prompt(name=f"fuzz{i}", instruction="Answer briefly.", template=template)
        row = store.save_prompt(prompt.name, prompt.content(), prompt.hash)
        served = load_served_prompt(store, f"{prompt.name}@{row['version']}",
                                    model=FakeModel(answers={"France": "Paris"}, default="ok"))
        client = TestClient(create_app(served, store, max_body_bytes=64_000),
                            base_url="http://127.0.0.1")
        client.__enter__()  # runs the lifespan: the trace writer starts
        clients.append(client)

    def close() -> None:
        for c in clients:
            c.__exit__(None, None, None)
        store.close()
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(close)
    return tuple(clients)


def fuzz_serve_body(data: bytes) -> int:
    """Post ``data[1:]`` as a JSON body; check the reply; return its status code."""
    selector, body = (data[0], data[1:]) if data else (0, b"")
    endpoint = ENDPOINTS[selector % 2]
    client = _clients()[(selector // 2) % len(TEMPLATES)]
    reply = client.post(endpoint, content=body, headers={"content-type": "application/json"})
    check_reply(reply, endpoint)
    return reply.status_code


def check_reply(reply: Any, endpoint: str) -> None:
    """200 with a completion, or 4xx with an OpenAI error; anything else is a finding."""
    status = reply.status_code
    assert status == 200 or 400 <= status < 500, f"{endpoint} answered {status}: {reply.text}"
    if status == 200 and "text/event-stream" in reply.headers.get("content-type", ""):
        _check_stream(reply.text)
        return
    try:
        payload = json.loads(reply.content)
    except ValueError:
        raise AssertionError(f"{endpoint} answered {status} with non-JSON: {reply.text!r}") \
            from None
    if status != 200:
        error = payload.get("error") if isinstance(payload, dict) else None
        assert isinstance(error, dict) and isinstance(error.get("message"), str), payload
        assert "Traceback" not in error["message"]
        return
    choice = payload["choices"][0]
    text = choice["message"]["content"] if endpoint.endswith("chat/completions") \
        else choice["text"]
    assert isinstance(text, str), payload


def _check_stream(text: str) -> None:
    events = [line[len("data: "):] for line in text.split("\n\n") if line.startswith("data: ")]
    assert events and events[-1] == "[DONE]", text
    for event in events[:-1]:
        assert isinstance(json.loads(event)["choices"], list)


def encode(endpoint: int, template: int, body: bytes) -> bytes:
    """The ``data`` that makes :func:`fuzz_serve_body` post ``body`` to that endpoint/prompt."""
    return bytes([endpoint % 2 + 2 * (template % len(TEMPLATES))]) + body
