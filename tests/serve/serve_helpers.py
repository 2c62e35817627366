"""Helpers for serving tests: uvicorn on a loopback port, the openai client, saved prompts."""

from __future__ import annotations

from contextlib import contextmanager

from helpers import free_port, uvicorn_in_thread

from promptmill.prompt import Prompt

SERVER_KEY = "pm-test-key-8c1f2e9a7b"


@contextmanager
def running(app):
    """Serve ``app`` with uvicorn in a thread; yields the /v1 base URL; stops it afterwards."""
    port = free_port()
    with uvicorn_in_thread(app, port, "uvicorn", lifespan="on"):
        yield f"http://127.0.0.1:{port}/v1"


def client(base_url: str, key: str | None = SERVER_KEY):
    import openai

    return openai.OpenAI(base_url=base_url, api_key=key or "none", max_retries=0, timeout=30)


def save(store, prompt: Prompt, tag: str | None = None) -> dict:
    row = store.save_prompt(prompt.name, prompt.content(), prompt.hash)
    if tag:
        store.tag_prompt(prompt.name, row["version"], tag)
    return row
