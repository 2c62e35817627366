"""Kill a real `promptmill eval` process midway, resume it, and check nothing is lost or redone."""

import os
import signal
import subprocess
import sys

import sqlalchemy as sa
import yaml
from helpers import wait_for, write_jsonl

from promptmill.store.db import Store


def _committed(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("select count(*) from results")).scalar() or 0
    except sa.exc.OperationalError:
        return 0
    finally:
        engine.dispose()


def test_killed_eval_resumes_where_it_stopped(tmp_path, sqlite_url):
    rows = [{"id": f"e{i}", "input": f"word{i}", "output": f"word{i}"} for i in range(150)]
    write_jsonl(tmp_path / "data.jsonl", rows)
    config = {"name": "echo", "data": {"path": "data.jsonl", "id": "id"},
              "splits": {"train": 0, "validation": 0, "test": 150},
              "model": {"name": "fake", "params": {"delay": 0.02, "default": "x"}},
              "prompt": {"template": "{{ input }}"}}
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "promptmill.cli.app", "--db", sqlite_url, "eval",
               str(tmp_path / "task.yaml"), "--quiet"]
    proc = subprocess.Popen(command, env={**os.environ}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert wait_for(lambda: _committed(sqlite_url) >= 30, timeout=60)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = _committed(sqlite_url)
    assert 30 <= done_before < 150

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed run 1: {done_before} examples" in " ".join(resumed.stdout.split())
    store = Store(sqlite_url)
    run = store.get_run(1)
    assert len(store.list_runs()) == 1 and run["status"] == "finished"
    ids = [r["example_id"] for r in store.iter_results(1)]
    assert sorted(ids) == sorted(r["id"] for r in rows)  # nothing lost, nothing twice
    # Work finished before the kill is not redone: one call per example in total, because
    # calls in flight at the kill were never committed and so are counted once, on resume.
    assert run["calls"] == 150 and run["cache_hits"] == 0
