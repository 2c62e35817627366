"""A real two-node Ray cluster on loopback, shared by the session: a head and one worker node."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import free_port, skip_or_fail
from needs_extras import require_extra

RAY = Path(sys.executable).parent / "ray"
OBJECT_STORE = str(80 * 1024 * 1024)  # the smallest Ray accepts, with a margin


def _ray(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(RAY), *args], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="session")
def ray_cluster():
    """``HOST:PORT`` of a head (1 CPU) plus a worker node (1 CPU), stopped at the end."""
    require_extra("ray", "ray")  # never importorskip: in CI a missing Ray must fail
    if not RAY.exists():
        skip_or_fail(f"the ray CLI is not installed next to {sys.executable}")
    temp = Path(tempfile.mkdtemp(prefix="pmray-"))  # short: Ray's socket paths have a limit
    # a loopback-only cluster: no token auth, which Ray turns on for every node and driver as
    # soon as ~/.ray/auth_token exists (any earlier local ray.init writes one)
    settings = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)  # the test process is a driver too
    env = dict(os.environ)
    port = free_port()
    address = f"127.0.0.1:{port}"
    head = _ray("start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats",
                f"--object-store-memory={OBJECT_STORE}", f"--temp-dir={temp}", env=env)
    try:
        if head.returncode != 0:
            skip_or_fail(f"ray start --head failed: {head.stderr[-500:]}")
        worker = _ray("start", f"--address={address}", "--node-ip-address=127.0.0.1",
                      "--num-cpus=1", f"--object-store-memory={OBJECT_STORE}", env=env)
        if worker.returncode != 0:
            skip_or_fail(f"ray start (worker node) failed: {worker.stderr[-500:]}")
        yield address
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        _ray("stop", "--force", env=env)
        shutil.rmtree(temp, ignore_errors=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
