"""A backend that echoes its key: the key must appear nowhere promptmill writes or sends.

The echoing backend (echo_backend.py) puts the ``Authorization`` header it received, the bare
key and fresh key-shaped strings into every completion. Through it, as separate processes with
real stdout and stderr: ``promptmill eval``, ``optimize`` (APE, whose candidate prompts are
themselves model outputs), ``show``, ``export``, ``diagnose`` (with robustness calls),
``serve`` (real uvicorn on loopback, the openai SDK, JSON and ``stream: true`` on both
endpoints, an access log fed query strings that carry the key) and ``traces``. Then every
surface is searched for the secrets' bytes: one test id per path and surface. The keys live in
environment variables whose names do not look secret, so only the configured-key redaction
(not the environment scan) can hide them.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml
from echo_backend import ECHO_MARK, SHAPES_MARK, EchoBackend, secret_part
from helpers import free_port, start_promptmill_serve, write_jsonl

pytest.importorskip("openai")
pytest.importorskip("uvicorn")

pytestmark = [pytest.mark.server, pytest.mark.slow]

BACKEND_ENV, SERVER_ENV = "PM_ECHO_CRED", "PM_SERVE_PASS"  # names the env scan does not match
# keys that are not key-shaped: only knowing them can redact them
BACKEND_KEY = f"pm-echo-{secrets.token_hex(10)}"
SERVER_KEY = f"srv-{secrets.token_hex(10)}"
QUERY_FORMS = ("api_key", "key", "token", "access_token", "apiKey", "api%5Fkey", "x-api-key",
               "unrelated")  # the last: a harmless name, but the value is the server key


@dataclass
class Leaks:
    """What each path wrote or sent, by surface; and which surfaces must show the echo."""

    surfaces: dict[str, bytes] = field(default_factory=dict)
    echoed: set[str] = field(default_factory=set)
    secrets: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, data: bytes | str, *, echoed: bool = False) -> None:
        self.surfaces[name] = data if isinstance(data, bytes) else data.encode()
        if echoed:
            self.echoed.add(name)


def _env(home: Path, db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTMILL_")}
    return {**env, "PROMPTMILL_HOME": str(home), "PROMPTMILL_DB": db_url,
            BACKEND_ENV: BACKEND_KEY, SERVER_ENV: SERVER_KEY, "OMP_WAIT_POLICY": "passive"}


def _cli(env: dict[str, str], *args, cwd: Path) -> tuple[bytes, bytes]:
    done = subprocess.run([sys.executable, "-m", "promptmill.cli.app", *map(str, args)],
                          env=env, cwd=cwd, capture_output=True, timeout=300)
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return done.stdout, done.stderr


def _store_bytes(folder: Path) -> bytes:
    # the database file, its WAL and shared-memory files: anything SQLite left on disk
    return b"".join(p.read_bytes() for p in sorted(folder.glob("store.db*")) if p.is_file())


def _task(folder: Path, backend: EchoBackend) -> Path:
    rows = [{"id": f"r{i}", "text": f"{SHAPES_MARK} word{i}" if i % 2 else f"word{i}",
             "label": "word"} for i in range(16)]
    write_jsonl(folder / "data.jsonl", rows)
    config = folder / "task.yaml"
    config.write_text(yaml.safe_dump({
        "name": "leak", "metric": "contains",
        "data": {"path": "data.jsonl", "input": ["text"], "target": "label", "id": "id"},
        "splits": {"train": 4, "validation": 6, "test": 6, "seed": 0},
        "model": {"name": "openai:echo", "params": {"base_url": backend.base_url,
                                                    "api_key_env": BACKEND_ENV,
                                                    "max_retries": 0}},
        "generation": {"max_tokens": 64},
        "prompt": {"name": "leak", "instruction": "Repeat the text.",
                   "template": "{{ text }}"}}))
    return config


def _run_cli_paths(leaks: Leaks, env: dict[str, str], folder: Path, config: Path) -> None:
    out, err = _cli(env, "eval", config, "-q", cwd=folder)
    leaks.add("eval-stdout", out)
    leaks.add("eval-stderr", err)
    leaks.add("eval-store", _store_bytes(folder), echoed=True)
    out, err = _cli(env, "optimize", config, "--method", "ape", "--budget-calls", "40", "-q",
                    cwd=folder)
    leaks.add("optimize-stdout", out)
    leaks.add("optimize-stderr", err)
    leaks.add("optimize-store", _store_bytes(folder), echoed=True)
    shown, errors = [], []
    for run in ("1", "2", "3"):
        out, err = _cli(env, "show", run, cwd=folder)
        shown.append(out)
        errors.append(err)
    leaks.add("show-stdout", b"".join(shown), echoed=True)
    leaks.add("show-stderr", b"".join(errors))
    exported, said = [], []
    for fmt in ("jsonl", "csv"):
        target = folder / f"run1.{fmt}"
        out, err = _cli(env, "export", "1", "--format", fmt, "-o", target, cwd=folder)
        exported.append(target.read_bytes())
        said.append(out + err)
    leaks.add("export-files", b"".join(exported), echoed=True)
    leaks.add("export-output", b"".join(said))
    # diagnose reads the stored outputs and, for robustness, asks the backend again
    report, data = folder / "diagnosis.html", folder / "diagnosis.json"
    out, err = _cli(env, "diagnose", "1", "--robustness", "--n", "4", "--variants", "1",
                    "--examples", "3", "--html", report, "--json", data, cwd=folder)
    leaks.add("diagnose-output", out + err, echoed=True)
    leaks.add("diagnose-reports", report.read_bytes() + data.read_bytes(), echoed=True)


def _start_server(env: dict[str, str], folder: Path, config: Path, port: int):
    stdout, stderr = folder / "serve.out", folder / "serve.err"
    proc = start_promptmill_serve(["--prompt", "leak@1", "--config", str(config),
                                   "--api-key-env", SERVER_ENV, "--access-log"], env, port,
                                  cwd=folder, stdout=stdout.open("wb"),
                                  stderr=stderr.open("wb"), log=stderr)
    return proc, stdout, stderr


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly and flushes the traces
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _raw_stream(url: str, path: str, body: dict) -> bytes:
    with httpx.stream("POST", f"{url}{path}", json={**body, "stream": True}, timeout=30,
                      headers={"authorization": f"Bearer {SERVER_KEY}"}) as reply:
        assert reply.status_code == 200
        return reply.read()


def _client_traffic(leaks: Leaks, url: str) -> None:
    import openai

    client = openai.OpenAI(base_url=url, api_key=SERVER_KEY, max_retries=0, timeout=30)
    pasted = f"{SHAPES_MARK} my key is {SERVER_KEY}"  # the echo repeats the user's text
    chat = [client.chat.completions.create(model="leak", messages=[
        {"role": "user", "content": text}]).model_dump_json() for text in ("hello", pasted)]
    leaks.add("serve-json-chat", "".join(chat), echoed=True)
    text = [client.completions.create(model="leak", prompt=p).model_dump_json()
            for p in ("hello", pasted)]
    leaks.add("serve-json-completions", "".join(text), echoed=True)
    chunks = [c.model_dump_json() for p in ("hello", pasted) for c in
              client.chat.completions.create(model="leak", stream=True, messages=[
                  {"role": "user", "content": p}])]
    chunks += [c.model_dump_json() for c in client.completions.create(
        model="leak", prompt=pasted, stream=True)]
    leaks.add("serve-stream-chunks", "".join(chunks), echoed=True)
    # the client's stream, reassembled: a secret cut across two chunks shows up only here
    joined = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="leak", stream=True, messages=[{"role": "user", "content": pasted}]) if c.choices)
    leaks.add("serve-stream-joined", joined, echoed=True)
    leaks.add("serve-stream-raw",
              _raw_stream(url, "/chat/completions", {"messages": [
                  {"role": "user", "content": pasted}]})
              + _raw_stream(url, "/completions", {"prompt": pasted}), echoed=True)
    errors = []
    for form in QUERY_FORMS:  # what an access log must not print
        keyed = client.with_options(default_query={form: SERVER_KEY})
        keyed.chat.completions.create(model="leak", messages=[{"role": "user", "content": "q"}])
        errors.append(httpx.get(f"{url}/models?{form}={SERVER_KEY}&{form}={BACKEND_KEY}",
                                headers={"authorization": f"Bearer {SERVER_KEY}"}).text)
    for bad in (f"Bearer {SERVER_KEY}x", f"Bearer {BACKEND_KEY}"):  # wrong keys: 401 bodies
        errors.append(httpx.post(f"{url}/chat/completions", headers={"authorization": bad},
                                 json={"messages": [{"role": "user", "content": "q"}]}).text)
    errors.append(httpx.post(f"{url}/chat/completions", content=SERVER_KEY.encode(),
                             headers={"authorization": f"Bearer {SERVER_KEY}"}).text)
    leaks.add("serve-other-replies", "".join(errors))


def _run_serve(leaks: Leaks, env: dict[str, str], folder: Path, config: Path) -> None:
    port = free_port()
    proc, stdout, stderr = _start_server(env, folder, config, port)
    try:
        _client_traffic(leaks, f"http://127.0.0.1:{port}/v1")
        leaks.add("serve-store-while-running", _store_bytes(folder), echoed=True)
    finally:
        _stop(proc)
    access = stdout.read_bytes()
    assert b"GET /v1/models?" in access and b"POST /v1/chat/completions" in access, access
    leaks.add("serve-access-log", access)
    leaks.add("serve-stderr", stderr.read_bytes())
    leaks.add("serve-store", _store_bytes(folder), echoed=True)
    out, err = _cli(env, "traces", "--limit", "100", cwd=folder)
    leaks.add("traces-output", out + err, echoed=True)
    dataset = folder / "traces.jsonl"
    _cli(env, "traces", "--dataset", dataset, cwd=folder)
    leaks.add("traces-dataset", dataset.read_bytes(), echoed=True)


@pytest.fixture(scope="module")
def leaks(tmp_path_factory) -> Leaks:
    folder = tmp_path_factory.mktemp("echo-leak")
    env = _env(folder / "home", f"sqlite:///{folder / 'store.db'}")
    result = Leaks()
    with EchoBackend() as backend:
        result.secrets = {"backend key": BACKEND_KEY, "server key": SERVER_KEY,
                          **{f"shape {n}": secret_part(v) for n, v in backend.shapes.items()}}
        config = _task(folder, backend)
        _run_cli_paths(result, env, folder, config)
        _run_serve(result, env, folder, config)
        # the echo really carried the key: without redaction, every check below would fail
        assert backend.authorizations and all(a == f"Bearer {BACKEND_KEY}"
                                              for a in backend.authorizations)
    return result


SURFACES = ["eval-store", "eval-stdout", "eval-stderr", "optimize-store", "optimize-stdout",
            "optimize-stderr", "show-stdout", "show-stderr", "export-files", "export-output",
            "diagnose-output", "diagnose-reports",
            "serve-json-chat", "serve-json-completions", "serve-stream-chunks",
            "serve-stream-joined", "serve-stream-raw", "serve-other-replies",
            "serve-access-log", "serve-stderr", "serve-store-while-running", "serve-store",
            "traces-output", "traces-dataset"]


@pytest.mark.parametrize("surface", SURFACES)
def test_no_secret_reaches(leaks, surface):
    data = leaks.surfaces[surface]
    if surface in leaks.echoed:  # the echo arrived here, redacted: the check is not vacuous
        assert ECHO_MARK.encode() in data and b"***" in data, data[:500]
    found = [name for name, value in leaks.secrets.items() if value.encode() in data]
    assert not found, f"{found} in {surface}"
