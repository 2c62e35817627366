"""Small helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

REQUIRE_SERVICES = os.environ.get("PROMPTMILL_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    """In CI (PROMPTMILL_REQUIRE_SERVICES=1) a missing service fails; elsewhere it skips."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (PROMPTMILL_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def free_port() -> int:
    """A loopback port nothing listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def run_main_streams(args, capsys) -> tuple[int, str, str]:
    """The CLI through main(), which turns PromptmillError into one line and exit status 2:
    the exit status (0 for a clean return), stdout and stderr."""
    import sys

    from promptmill.cli.app import main

    old = sys.argv
    sys.argv = ["promptmill", *map(str, args)]
    try:
        with pytest.raises(SystemExit) as exit_info:
            main()
    finally:
        sys.argv = old
    out = capsys.readouterr()
    code = exit_info.value.code
    return (0 if code is None else code), out.out, out.err


def run_main(args, capsys) -> tuple[int, str]:
    """Like :func:`run_main_streams`, with stdout and stderr as one text."""
    code, out, err = run_main_streams(args, capsys)
    return code, out + err


def start_promptmill_serve(args: list[str], env: dict[str, str], port: int, *, cwd=None,
                           stdout=None, stderr=None, log: Path | None = None):
    """``promptmill serve ARGS --port PORT`` in its own process, once /healthz answers."""
    import subprocess
    import sys

    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "promptmill.cli.app", "serve", *args,
                             "--port", str(port)], env=env, cwd=cwd, stdout=stdout,
                            stderr=stderr)

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        except httpx.HTTPError:
            return proc.poll() is not None
    if not wait_for(up, timeout=60) or proc.poll() is not None:
        proc.kill()
        tail = log.read_text()[-800:] if log is not None and log.exists() else ""
        skip_or_fail(f"promptmill serve did not start: {tail}")
    return proc


@contextmanager
def uvicorn_in_thread(app, port: int, what: str = "the server", **config):
    """``app`` under a real uvicorn server on 127.0.0.1:``port``, in a thread, until the block
    ends; a server that does not start skips (or fails in CI)."""
    import threading

    try:
        import uvicorn
    except ImportError:
        skip_or_fail("uvicorn is not installed (pip install 'promptmill[serve]')")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    if not wait_for(lambda: server.started, timeout=20):
        server.should_exit = True
        skip_or_fail(f"{what} did not start on loopback")
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=20)

