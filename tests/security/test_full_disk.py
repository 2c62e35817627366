"""A store that cannot be written (full disk, I/O error): the command stops with one line and
exit status 2, finished results are kept, the run says why it stopped (or, when even that
write fails, shows as interrupted once its process is gone), and a rerun resumes it.

Two ways to fill the disk: a real, small tmpfs (skipped only where mounting is refused), and
a patched engine that raises SQLite's own error after N writes (store_driver.py), which can
also fail the one write that records the failure.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import sqlalchemy as sa
from store_driver import counted_calls, finish, spawn_cli, write_task

from promptmill.store.db import Store


def _one_line(code: int, out: str, err: str) -> str:
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return " ".join(lines[0].split())


def _raw_run(url: str) -> dict:
    """The run row as stored, before any reader reconciles it."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text("select status, error, n_done from runs")).mappings().one()
            results = conn.execute(sa.text("select count(*) from results")).scalar()
        return {**row, "results": results}
    finally:
        engine.dispose()


def _resume_and_finish(url: str, config, n: int, count) -> dict:
    code, out, err = finish(spawn_cli(url, "eval", config, "-q",
                                      env={"PM_COUNT_FILE": str(count)}))
    assert code == 0, err
    assert "resumed run 1" in " ".join(out.split())
    store = Store(url)
    try:
        (run,) = store.list_runs()
        ids = [r["example_id"] for r in store.iter_results(run["id"])]
    finally:
        store.close()
    assert run["status"] == "finished" and sorted(ids) == sorted(f"e{i}" for i in range(n))
    return run


# --- a patched engine --------------------------------------------------------------------------
@pytest.mark.parametrize("error, expected", [
    ("database or disk is full", "the disk is full"),
    ("disk I/O error", "input/output error"),
], ids=["disk-full", "io-error"])
def test_a_failing_write_stops_the_eval_and_marks_the_run_failed(tmp_path, sqlite_url, error,
                                                                 expected):
    n = 120
    config = write_task(tmp_path, n)
    count = tmp_path / "calls"
    env = {"PM_COUNT_FILE": str(count), "PM_FULL_AFTER": "2", "PM_FULL_TABLE": "results",
           "PM_FULL_SCOPE": "table", "PM_FULL_ERROR": error}
    message = _one_line(*finish(spawn_cli(sqlite_url, "eval", config, "-q", env=env)))
    assert expected in message and "Fix:" in message and "resumes" in message
    run = _raw_run(sqlite_url)
    assert run["results"] == 64  # two batches of 32 were committed before the failure: kept
    assert run["status"] == "failed" and expected in run["error"] and run["n_done"] == 64
    resumed = tmp_path / "resumed"
    _resume_and_finish(sqlite_url, config, n, resumed)
    assert len(counted_calls(resumed)) == n - 64  # the kept results are not paid for again


def test_when_even_the_failure_cannot_be_written_the_run_shows_as_interrupted(tmp_path,
                                                                             sqlite_url):
    n = 120
    config = write_task(tmp_path, n)
    env = {"PM_FULL_AFTER": "2", "PM_FULL_TABLE": "results", "PM_FULL_SCOPE": "all"}
    message = _one_line(*finish(spawn_cli(sqlite_url, "eval", config, "-q", env=env)))
    assert "the disk is full" in message
    assert _raw_run(sqlite_url)["status"] == "running"  # nothing could record the failure
    code, out, _ = finish(spawn_cli(sqlite_url, "runs"))
    assert code == 0 and "interrupted" in out and "running" not in out
    assert _raw_run(sqlite_url)["status"] == "interrupted"  # and now the store says so too
    _resume_and_finish(sqlite_url, config, n, tmp_path / "resumed")


def test_a_failing_write_stops_an_optimization_with_one_line(tmp_path, sqlite_url):
    config = write_task(tmp_path, 26, splits={"train": 6, "validation": 10, "test": 10})
    env = {"PM_FULL_AFTER": "1", "PM_FULL_TABLE": "trajectory", "PM_FULL_SCOPE": "table"}
    message = _one_line(*finish(spawn_cli(sqlite_url, "optimize", config, "--method", "fewshot",
                                          "--budget-calls", "60", "-q", env=env)))
    assert "the disk is full" in message
    store = Store(sqlite_url)
    (run,) = [r for r in store.list_runs() if r["kind"] == "optimize"]
    assert run["status"] == "failed" and "the disk is full" in run["error"]


# --- a real, small tmpfs -----------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs, unmounted afterwards; skipped where mounting is refused."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    if shutil.which("mount") is None or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
            capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_really_full_disk_stops_the_eval_keeps_results_and_resumes(tmp_path, small_disk):
    n = 400
    config = write_task(tmp_path, n, default="x" * 3000)  # ~3 KB answers: 1 MiB fills quickly
    url = f"sqlite:///{small_disk / 'store.db'}"
    message = _one_line(*finish(spawn_cli(url, "eval", config, "-q")))
    assert "the disk is full" in message and "Fix:" in message
    run = _raw_run(url)
    assert 0 < run["results"] < n  # what finished before the disk filled is kept
    assert run["status"] in ("failed", "running")  # 'running' if even that write failed...
    code, out, _ = finish(spawn_cli(url, "runs"))
    assert code == 0 and "running" not in out  # ...and then it is not shown as running
    assert ("failed" in out) if run["status"] == "failed" else ("interrupted" in out)

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    _resume_and_finish(url, config, n, tmp_path / "resumed")
