"""Kill a real `promptmill eval` process midway, resume it, and check nothing is lost or redone.

Both processes log every real model call (tests/call_log_entry.py), so the test counts what the
model actually did, not what the store says it did.
"""

import inspect
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from helpers import wait_for, write_jsonl

from promptmill.evaluation import Evaluator
from promptmill.store.db import Store

ENTRY = Path(__file__).with_name("call_log_entry.py")
# results are committed in batches: at most one batch plus the call in flight dies with a kill
LOSABLE = inspect.signature(Evaluator).parameters["commit_every"].default + 1


def _committed(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.text("select example_id from results")).scalars())
    except sa.exc.OperationalError:
        return set()
    finally:
        engine.dispose()


def _calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


FAKE = {"name": "fake", "params": {"delay": 0.02, "default": "x"}}
BATCHED = {"name": "embedded", "params": {"batch_width": 8, "n_ctx": 512}}


def test_killed_eval_resumes_where_it_stopped(tmp_path, sqlite_url):
    _kill_and_resume(tmp_path, sqlite_url, FAKE)


@pytest.mark.real_model
def test_killed_batched_eval_on_the_real_model_resumes_where_it_stopped(tmp_path, sqlite_url):
    _kill_and_resume(tmp_path, sqlite_url, BATCHED, max_tokens=6)


def _kill_and_resume(tmp_path, sqlite_url, model: dict, max_tokens: int | None = None):
    rows = [{"id": f"e{i}", "input": f"word{i}", "output": f"word{i}"} for i in range(150)]
    write_jsonl(tmp_path / "data.jsonl", rows)
    config = {"name": "echo", "data": {"path": "data.jsonl", "id": "id"},
              "splits": {"train": 0, "validation": 0, "test": 150},
              "model": model, "prompt": {"template": "{{ input }}"}}
    if max_tokens:
        config["generation"] = {"max_tokens": max_tokens}
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, str(ENTRY), "--db", sqlite_url, "eval",
               str(tmp_path / "task.yaml"), "--quiet"]
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    proc = subprocess.Popen(command, env={**os.environ, "PROMPTMILL_TEST_CALL_LOG":
                                          str(first_log)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: len(_committed(sqlite_url)) >= 30, timeout=120, interval=0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = _committed(sqlite_url)
    assert 30 <= len(done_before) < 150

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PROMPTMILL_TEST_CALL_LOG": str(second_log)})
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed run 1: {len(done_before)} examples" in " ".join(resumed.stdout.split())

    by_id = {r["input"]: r["id"] for r in rows}
    first = [by_id[text] for text in _calls(first_log)]
    second = [by_id[text] for text in _calls(second_log)]
    assert done_before <= set(first)  # every committed result came from a real call
    assert len(first) == len(set(first)) and len(second) == len(set(second))  # none twice
    # The resumed process calls the model for exactly the examples not yet committed:
    # work finished before the kill is never redone.
    assert set(second) == {r["id"] for r in rows} - done_before
    assert len(set(first) - done_before) <= LOSABLE  # only uncommitted work was lost

    store = Store(sqlite_url)
    run = store.get_run(1)
    assert len(store.list_runs()) == 1 and run["status"] == "finished"
    ids = [r["example_id"] for r in store.iter_results(1)]
    assert sorted(ids) == sorted(r["id"] for r in rows)  # nothing lost, nothing twice
    # the recorded calls are the true ones behind the kept results
    assert run["calls"] == len(done_before) + len(second) == 150 and run["cache_hits"] == 0
