"""The installed ``promptmill`` command, run as a user runs it: a new process through main()."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def promptmill_command() -> list[str]:
    """The console script next to this Python, or the module when it is not installed."""
    script = Path(sys.executable).with_name("promptmill")
    return [str(script)] if script.exists() else [sys.executable, "-m", "promptmill.cli.app"]


def run_promptmill(*args, timeout: float = 300, **options) -> subprocess.CompletedProcess:
    """Run ``promptmill ARGS``; the environment (PROMPTMILL_HOME of the test) is inherited."""
    env = {**os.environ, "OMP_WAIT_POLICY": "passive", **options.pop("env", {})}
    return subprocess.run([*promptmill_command(), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, **options)


def one_line_error(*args, **options) -> str:
    """Run a command that must fail on bad input: exit status 2 and exactly one line, no
    traceback. Returns that line with its whitespace collapsed."""
    done = run_promptmill(*args, **options)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert lines[0].startswith("error: "), lines[0]
    return " ".join(lines[0].split())
