"""Helpers for serving tests: uvicorn on a loopback port, the openai client, saved prompts."""

from __future__ import annotations

import threading
from contextlib import contextmanager

from helpers import free_port, skip_or_fail

from promptmill.prompt import Prompt

SERVER_KEY = "pm-test-key-8c1f2e9a7b"


@contextmanager
def running(app):
    """Serve ``app`` with uvicorn in a thread; yields the /v1 base URL; stops it afterwards."""
    try:
        import uvicorn
    except ImportError:
        skip_or_fail("uvicorn is not installed (pip install 'promptmill[serve]')")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    from helpers import wait_for

    if not wait_for(lambda: server.started, timeout=20):
        server.should_exit = True
        skip_or_fail("uvicorn did not start on loopback")
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def client(base_url: str, key: str | None = SERVER_KEY):
    import openai

    return openai.OpenAI(base_url=base_url, api_key=key or "none", max_retries=0, timeout=30)


def save(store, prompt: Prompt, tag: str | None = None) -> dict:
    row = store.save_prompt(prompt.name, prompt.content(), prompt.hash)
    if tag:
        store.tag_prompt(prompt.name, row["version"], tag)
    return row
