"""A real promptmill process for the store's concurrency, crash and full-disk tests.

``python store_driver.py open URL GO_FILE`` prints "ready", opens a (new) store once GO_FILE
exists and prints whether this process ran the migrations ("migrated") or found them done.
``python store_driver.py cli ARGS...`` runs the ``promptmill`` command through main(), with the
fake model instrumented by the environment:

- ``PM_COUNT_FILE``: every real model call appends one line (this pid) to the file, so calls
  are counted across processes;
- ``PM_GATE_AFTER`` / ``PM_GATE_FILE``: calls after the first N wait until the gate file exists
  (with no gate file given, they wait forever: a process to kill midway);
- ``PM_GO_FILE``: start only once that file exists, so several processes start together;
- ``PM_FULL_AFTER`` / ``PM_FULL_TABLE`` / ``PM_FULL_SCOPE`` / ``PM_FULL_ERROR``: after N
  inserts into the table (default ``results``), the database raises "database or disk is
  full" (or the given message) for writes to that table (scope ``table``) or for every write
  (scope ``all``), as SQLite does when the disk fills up.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path


def wait_for_file(path: str | None) -> None:
    while path and not Path(path).exists():
        time.sleep(0.02)


def instrument_model() -> None:
    from promptmill.models.fake import FakeModel

    count_file = os.environ.get("PM_COUNT_FILE")
    gate_after = int(os.environ.get("PM_GATE_AFTER", "-1"))
    gate_file = os.environ.get("PM_GATE_FILE")
    lock, made = threading.Lock(), [0]
    original = FakeModel.generate

    def counted(self, request, params):
        with lock:
            made[0] += 1
            number = made[0]
            if count_file:
                with open(count_file, "a") as handle:
                    handle.write(f"{os.getpid()}\n")
        if 0 <= gate_after < number:
            if gate_file is None:
                threading.Event().wait()  # forever: this process is killed
            wait_for_file(gate_file)
        return original(self, request, params)

    FakeModel.generate = counted


def instrument_disk() -> None:
    if "PM_FULL_AFTER" not in os.environ:
        return
    import sqlalchemy as sa

    import promptmill.store.db as db

    allowed = int(os.environ["PM_FULL_AFTER"])
    table = os.environ.get("PM_FULL_TABLE", "results")
    scope = os.environ.get("PM_FULL_SCOPE", "all")
    error = os.environ.get("PM_FULL_ERROR", "database or disk is full")
    inserts = [0]
    original = db.make_engine

    def full(conn, cursor, statement, params, context, executemany):
        verb = statement.lstrip().split(" ", 1)[0].upper()
        if verb not in ("INSERT", "UPDATE", "DELETE"):
            return
        ours = f" {table} " in f" {statement} ".replace("(", " ").replace("\n", " ")
        if ours and verb == "INSERT":
            inserts[0] += 1
        if inserts[0] > allowed and (scope == "all" or ours):
            raise sqlite3.OperationalError(error)

    def make_engine(url):
        engine = original(url)
        sa.event.listen(engine, "before_cursor_execute", full)
        return engine

    db.make_engine = make_engine


def open_store(url: str, go_file: str) -> int:
    from promptmill.store.db import Store, make_engine, migrate

    engine = make_engine(url)
    print("ready", flush=True)
    wait_for_file(go_file)
    print("migrated" if migrate(engine) else "current", flush=True)
    engine.dispose()
    Store(url).close()
    return 0


def run_cli(args: list[str]) -> None:
    from promptmill.cli.app import main

    instrument_model()
    instrument_disk()
    wait_for_file(os.environ.get("PM_GO_FILE"))
    sys.argv = ["promptmill", *args]
    main()


if __name__ == "__main__":
    if sys.argv[1] == "open":
        sys.exit(open_store(sys.argv[2], sys.argv[3]))
    run_cli(sys.argv[2:])


# --- the test side ----------------------------------------------------------------------------
def spawn(*args, env: dict[str, str] | None = None, stderr=None) -> subprocess.Popen:
    """Start this driver in a new process (``open ...`` or ``cli ...``)."""
    full_env = {**os.environ, "OMP_WAIT_POLICY": "passive", "COLUMNS": "200", **(env or {})}
    return subprocess.Popen([sys.executable, __file__, *map(str, args)], env=full_env,
                            stdout=subprocess.PIPE, stderr=stderr or subprocess.PIPE,
                            text=True)


def spawn_cli(url: str, *args, **options) -> subprocess.Popen:
    return spawn("cli", "--db", url, *args, **options)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out or "", err or ""


def counted_calls(path: Path) -> list[str]:
    """The pids of every real model call, one per line of the count file."""
    return path.read_text().split() if path.exists() else []


def write_task(folder: Path, n: int, splits: dict | None = None, **model_params) -> Path:
    """A task of ``n`` examples on the fake model, whose answers are right for half of them.

    All examples are the test split unless ``splits`` says otherwise.
    """
    import json

    import yaml

    rows = [{"id": f"e{i}", "input": f"<word{i}>", "output": f"WORD{i}"} for i in range(n)]
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    answers = {f"<word{i}>": f"WORD{i}" for i in range(0, n, 2)}
    (folder / "task.yaml").write_text(yaml.safe_dump({
        "name": "upper", "data": {"path": "data.jsonl", "id": "id"},
        "splits": splits or {"train": 0, "validation": 0, "test": n},
        "model": {"name": "fake", "params": {"answers": answers, "default": "?",
                                             **model_params}},
        "prompt": {"name": "upper", "instruction": "Uppercase it.", "template": "{{ input }}"}}))
    return folder / "task.yaml"
