"""Production traces: every served request, kept in the store's ``traces`` table.

Requests never wait for the database: a writer thread commits traces in small batches, so 50
concurrent clients cost one SQLite transaction every few milliseconds instead of 50. Traces can
be turned into a JSONL dataset that a task config reads like any other data file.
"""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..errors import StoreError
from ..store.db import Store, utcnow
from ..store.traces import add_traces, list_traces

TRACE_FIELDS = ("prompt_name", "prompt_id", "model", "inputs", "messages", "output", "status",
                "error", "tokens_in", "tokens_out", "seconds")


def trace_row(**values: Any) -> dict[str, Any]:
    """A row for the traces table; JSON-encodes inputs and messages."""
    row = {k: values.get(k) for k in TRACE_FIELDS}
    for key in ("inputs", "messages"):
        if not isinstance(row[key], str) and row[key] is not None:
            row[key] = json.dumps(row[key], ensure_ascii=False, default=str)
    row["inputs"] = row["inputs"] or "{}"
    row.update(tokens_in=row["tokens_in"] or 0, tokens_out=row["tokens_out"] or 0,
               seconds=float(row["seconds"] or 0.0), created_at=utcnow())
    return row


class TraceWriter:
    """Queues trace rows and commits them from one background thread, in batches."""

    def __init__(self, store: Store, batch: int = 64, interval: float = 0.05):
        self.store, self.batch, self.interval = store, batch, interval
        self._queue: queue.Queue = queue.Queue()
        self._idle = threading.Condition()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name="promptmill-traces", daemon=True)
        self._thread.start()

    def add(self, row: dict[str, Any]) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(row)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued trace is committed."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        self.flush()
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            rows = [first]
            while len(rows) < self.batch:
                try:
                    nxt = self._queue.get(timeout=self.interval)
                except queue.Empty:
                    break
                if nxt is None:
                    self._commit(rows)
                    return
                rows.append(nxt)
            self._commit(rows)

    def _commit(self, rows: list[dict[str, Any]]) -> None:
        try:
            add_traces(self.store, rows)
        except (sa.exc.SQLAlchemyError, StoreError) as exc:  # a full disk must not stop serving
            import logging

            logging.getLogger("promptmill.serve").error(
                "could not store %d trace(s): %s", len(rows), type(exc).__name__)
        finally:
            with self._idle:
                self._pending -= len(rows)
                self._idle.notify_all()


def traces_to_dataset(store: Store, path: str | Path, prompt_name: str | None = None,
                      target_field: str = "output") -> int:
    """Write successful traces as JSONL: one row per request, the template fields as columns,
    the served answer under ``target_field`` (a starting label to review), and ``id``.

    A task config reads it with ``data: {path: FILE, input: [...fields], target: output,
    id: id}``. Returns the number of rows written.
    """
    count = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for row in list_traces(store, prompt_name, status=200):
            inputs = json.loads(row["inputs"] or "{}")
            record = {"id": f"trace-{row['id']}", **inputs, target_field: row["output"]}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


__all__ = ["TRACE_FIELDS", "TraceWriter", "add_traces", "list_traces", "trace_row",
           "traces_to_dataset"]
