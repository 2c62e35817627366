"""Leases: one process at a time works on a run fingerprint; the others wait, then reuse its work.

A lease is a row in ``locks``, taken by inserting it: the primary key lets exactly one process
win, on SQLite and PostgreSQL alike. The holder beats a heartbeat while it works and deletes the
row when done. A waiting process polls; when the holder's process is gone (see ``owner``) it
deletes that holder's row, and only that one, and tries again, so a crash never blocks anyone.

Migrations are serialized separately (``migration_transaction``): they run before the ``locks``
table exists, so they use a file lock next to a SQLite file and an advisory lock on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import failures, schema
from .owner import HEARTBEAT_EVERY, Owner, is_gone

if TYPE_CHECKING:
    from .db import Store

WaitHook = Callable[[dict[str, Any]], None]
MIGRATION_LOCK_KEY = 0x70726F6D  # "prom": the advisory lock id of promptmill's migrations
# (pid, store URL, lease name) -> the thread holding it; the pid keeps a forked child out
_HELD: dict[tuple[int, str, str], int] = {}


class Lease:
    """Hold the lease ``name`` for the body of a ``with`` block, waiting for it if need be.

    ``on_wait`` is called with the holder's row each time a different holder makes us wait.
    """

    def __init__(self, store: Store, name: str, on_wait: WaitHook | None = None,
                 poll: float = 0.2):
        self.store, self.name, self.on_wait, self.poll = store, name, on_wait, poll
        self.owner = Owner.current()
        self.waited = False
        self._nested = False
        self._heartbeat: Heartbeat | None = None

    def __enter__(self) -> Lease:
        key = self._key()
        self._nested = _HELD.get(key) == threading.get_ident()
        if self._nested:  # this thread holds it already (a nested call): waiting would hang
            return self
        self.acquire()
        _HELD[key] = threading.get_ident()
        self._heartbeat = Heartbeat(self.store, self.owner)
        self._heartbeat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._nested:
            return
        _HELD.pop(self._key(), None)
        if self._heartbeat is not None:
            self._heartbeat.stop()
        with contextlib.suppress(Exception):  # a full disk must not hide the real error
            self.release()

    def acquire(self) -> None:
        announced = None
        while True:
            holder = self._holder()
            if holder is None and self._try_insert():
                return
            if holder is not None and self._is_stale(holder):
                self._steal(holder)
                continue
            if holder is not None and _identity(holder) != announced:
                announced = _identity(holder)
                self.waited = True
                if self.on_wait is not None:
                    self.on_wait(holder)
            time.sleep(self.poll)

    def attach(self, run_id: int) -> None:
        """Say which run the holder works on, for the message of those who wait."""
        t = schema.locks
        with self.store.engine.begin() as conn:
            conn.execute(t.update().where(t.c.name == self.name, *_mine(t, self.owner))
                         .values(run_id=run_id))

    def release(self) -> None:
        t = schema.locks
        with self.store.engine.begin() as conn:
            conn.execute(t.delete().where(t.c.name == self.name, *_mine(t, self.owner)))

    # --- steps ----------------------------------------------------------------------------
    def _holder(self) -> dict[str, Any] | None:
        t = schema.locks
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.name == self.name)).mappings().first()
        return dict(row) if row else None

    def _try_insert(self) -> bool:
        now = self.store.now()
        row = {"name": self.name, **self.owner.fields(), "run_id": None, "acquired_at": now,
               "heartbeat_at": now}
        try:
            with self.store.engine.begin() as conn:
                conn.execute(schema.locks.insert().values(**row))
        except sa.exc.IntegrityError:  # another process inserted it first
            return False
        return True

    def _is_stale(self, holder: dict[str, Any]) -> bool:
        owner = Owner.from_row(holder)
        if owner == self.owner:  # this process: stale unless one of its threads holds it now
            return self._key() not in _HELD  # (an earlier release failed, e.g. disk full)
        return is_gone(owner, holder["heartbeat_at"], self.store.now())

    def _key(self) -> tuple[int, str, str]:
        return os.getpid(), self.store.url, self.name

    def _steal(self, holder: dict[str, Any]) -> None:
        """Delete a dead holder's row, unless someone else has already replaced it."""
        t = schema.locks
        with self.store.engine.begin() as conn:
            conn.execute(t.delete().where(t.c.name == self.name,
                                          *_mine(t, Owner.from_row(holder)),
                                          t.c.acquired_at == holder["acquired_at"]))


def _identity(row: dict[str, Any]) -> tuple:
    return row["owner_pid"], row["owner_host"], row["owner_started"], row["run_id"]


def _mine(table: sa.Table, owner: Owner | None) -> list:
    if owner is None:
        return [sa.false()]
    return [table.c.owner_pid == owner.pid, table.c.owner_host == owner.host,
            table.c.owner_started == owner.started]


class Heartbeat:
    """A daemon thread that says "still alive" for this process's leases and running runs.

    Only owners on other machines are judged by it: here a dead pid is seen at once.
    """

    def __init__(self, store: Store, owner: Owner, every: float = HEARTBEAT_EVERY):
        self.store, self.owner, self.every = store, owner, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="promptmill-heartbeat",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            with contextlib.suppress(Exception):  # a full disk or a lost server: try later
                self.beat()

    def beat(self) -> None:
        now = self.store.now()
        locks, runs = schema.locks, schema.runs
        with self.store.engine.begin() as conn:
            conn.execute(locks.update().where(*_mine(locks, self.owner)).values(heartbeat_at=now))
            conn.execute(runs.update().where(runs.c.status == "running",
                                             *_mine(runs, self.owner)).values(heartbeat_at=now))


@contextlib.contextmanager
def migration_transaction(engine: sa.Engine, sqlite_path: Path | None
                          ) -> Iterator[sa.Connection]:
    """A transaction that only one process at a time holds, for upgrading the schema.

    The lock outlives the transaction's commit, so the next process finds the schema current.
    """
    lock: contextlib.AbstractContextManager[None]
    if sqlite_path is not None:
        lock = file_lock(sqlite_path.with_name(sqlite_path.name + ".lock"))
    else:  # PostgreSQL locks inside the transaction; in-memory SQLite has one process
        lock = contextlib.nullcontext()
    with lock, engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # released when the transaction ends
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"),
                         {"key": MIGRATION_LOCK_KEY})
        yield conn


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path``, held for the block (released if the process dies)."""
    try:
        import fcntl
    except ImportError:  # Windows: SQLite's own locking is all there is
        yield
        return
    try:
        handle = open(path, "a")  # closed below, after the unlock
    except OSError as exc:  # no lock file can be made where the store's tables cannot either
        kind = "readonly" if exc.errno in (errno.EACCES, errno.EROFS) else "cantopen"
        raise failures.explain(kind, exc.strerror or str(exc), str(path), path) from None
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
