"""Kill a real `promptmill tune` process with SIGKILL and resume it from its last checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from helpers import wait_for

pytestmark = [pytest.mark.tune, pytest.mark.slow]


def test_a_killed_training_resumes_from_its_last_checkpoint(tiny_task, tiny_model_dir,
                                                            sqlite_url, isolated_home):
    state = isolated_home / "adapters" / "killed" / "checkpoint" / "state.json"
    command = [sys.executable, "-m", "promptmill.cli.app", "--db", sqlite_url, "tune", "run",
               str(tiny_task), "--name", "killed", "--base", str(tiny_model_dir),
               "--batch-size", "4", "--max-length", "32", "--epochs", "1000", "--patience", "0",
               "--checkpoint-every", "2", "--quiet"]
    proc = subprocess.Popen([*command, "--max-steps", "100000"], env={**os.environ},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: state.exists() and json.loads(state.read_text())["step"] >= 4,
                        timeout=240)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    saved = json.loads(state.read_text())["step"]

    resumed = subprocess.run([*command, "--max-steps", str(saved + 3)], capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed at step {saved}" in resumed.stdout
    assert json.loads(state.read_text())["step"] == saved + 3
    from promptmill.store.db import Store
    from promptmill.tune.registry import get_adapter

    row = get_adapter(Store(sqlite_url), "killed")
    assert row["status"] == "finished" and row["metrics"]["steps"] == saved + 3
