"""Small helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import os
import socket
import time
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


def run_main(args, capsys) -> tuple[int, str]:
    """The CLI through main(), which turns PromptmillError into one line and exit status 2."""
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
    return exit_info.value.code, out.out + out.err
