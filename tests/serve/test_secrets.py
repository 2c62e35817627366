"""API keys never reach logs, the store or error messages: `promptmill serve` as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from helpers import free_port, start_promptmill_serve, write_jsonl
from serve_helpers import client, save

from promptmill.prompt import Prompt
from promptmill.serve.traces import list_traces
from promptmill.store.db import Store

pytestmark = [pytest.mark.server, pytest.mark.slow]

SERVER_SECRET = "srv-5b7d1e0c9a2f4e6b8d3c"
BACKEND_SECRET = "sk-backend-0f9e8d7c6b5a4f3e"


def _task(folder: Path, model: dict) -> Path:
    write_jsonl(folder / "data.jsonl", [{"id": "a", "text": "hi", "label": "x"}])
    path = folder / f"task-{model['name'].split(':')[0]}.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "data": {"path": "data.jsonl",
                                    "input": ["text"], "target": "label", "id": "id"},
                                    "splits": {"train": 0, "validation": 0, "test": 1},
                                    "model": model}))
    return path


def _serve(db_url: str, config: Path, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PM_SERVER_KEY": SERVER_SECRET, "PM_BACKEND_KEY": BACKEND_SECRET,
           "PROMPTMILL_DB": db_url}
    proc = start_promptmill_serve(["--prompt", "echo@live", "--config", str(config),
                                   "--api-key-env", "PM_SERVER_KEY", "--access-log"], env, port,
                                  stdout=log.open("ab"), stderr=subprocess.STDOUT, log=log)
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly and flushes traces
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _exchanges(url: str) -> list[str]:
    """Good, bad-key, key-in-message and error requests; returns every body the client saw."""
    seen = []
    good = client(url, SERVER_SECRET)
    reply = good.chat.completions.create(model="x", messages=[
        {"role": "user", "content": f"my key is {SERVER_SECRET} and {BACKEND_SECRET}"}])
    seen.append(reply.model_dump_json())
    for key in (SERVER_SECRET[:-1], SERVER_SECRET + "x", BACKEND_SECRET):
        with pytest.raises(openai.AuthenticationError) as exc:
            client(url, key).chat.completions.create(
                model="x", messages=[{"role": "user", "content": "hello"}])
        seen.append(exc.value.response.text)
    bad = httpx.post(f"{url}/chat/completions", content=b"{not json",
                     headers={"authorization": f"Bearer {SERVER_SECRET}"})
    seen.append(bad.text)
    return seen


def test_keys_never_reach_logs_store_or_error_bodies(tmp_path):
    db_path = tmp_path / "store.db"
    db_url = f"sqlite:///{db_path}"
    store = Store(db_url)
    save(store, Prompt(name="echo", instruction="Repeat the text.", template="{{ text }}"),
         "live")
    store.close()
    log = tmp_path / "server.log"
    echo = _task(tmp_path, {"name": "fake", "params": {"default": "fine"}})
    dead = _task(tmp_path, {"name": "openai:m", "params": {
        "base_url": f"http://127.0.0.1:{free_port()}/v1", "api_key_env": "PM_BACKEND_KEY",
        "max_retries": 0, "timeout": 5}})
    bodies = []
    for config in (echo, dead):
        port = free_port()
        proc = _serve(db_url, config, port, log)
        try:
            url = f"http://127.0.0.1:{port}/v1"
            if config is echo:
                bodies += _exchanges(url)
            else:
                with pytest.raises(openai.InternalServerError) as exc:
                    client(url, SERVER_SECRET).chat.completions.create(
                        model="x", messages=[{"role": "user", "content": BACKEND_SECRET}])
                bodies.append(exc.value.response.text)
                assert "cannot connect" in exc.value.message
        finally:
            _stop(proc)
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("store.db*"))
    check = Store(db_url)
    statuses = [t["status"] for t in list_traces(check)]
    check.close()
    assert statuses == [200, 401, 401, 401, 400, 502]
    logged = log.read_text()
    assert "POST /v1/chat/completions" in logged  # the access log really was on
    for secret in (SERVER_SECRET, BACKEND_SECRET):
        assert secret.encode() not in stored
        assert secret not in logged
        assert not [b for b in bodies if secret in b]
    assert b"my key is ***" in stored  # a key pasted into a message is scrubbed too
