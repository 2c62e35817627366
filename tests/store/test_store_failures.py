"""Database failures become one-line StoreErrors at the engine, wherever they happen; errors
the code handles itself (a duplicate key) pass through untouched."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from promptmill.errors import StoreError
from promptmill.store import failures, schema
from promptmill.store.db import utcnow


class _PgError(Exception):
    def __init__(self, sqlstate: str, text: str):
        super().__init__(text)
        self.sqlstate = sqlstate


@pytest.mark.parametrize("exc, kind", [
    (sqlite3.OperationalError("database or disk is full"), "full"),
    (sqlite3.OperationalError("disk I/O error"), "io"),
    (sqlite3.OperationalError("attempt to write a readonly database"), "readonly"),
    (sqlite3.DatabaseError("file is not a database"), "notadb"),
    (sqlite3.DatabaseError("database disk image is malformed"), "notadb"),
    (sqlite3.OperationalError("unable to open database file"), "cantopen"),
    (sqlite3.OperationalError("database is locked"), "busy"),
    (_PgError("53100", 'could not extend file "base/1/2": No space left on device'), "full"),
    (_PgError("58030", "could not read block 3"), "io"),
    (_PgError("25006", "cannot execute INSERT in a read-only transaction"), "readonly"),
    (sqlite3.IntegrityError("UNIQUE constraint failed: prompts.name"), None),
    (_PgError("23505", "duplicate key value violates unique constraint"), None),
    (_PgError("08006", "connection refused"), None),  # left to the opener's message
], ids=lambda v: v if isinstance(v, str | type(None)) else type(v).__name__)
def test_failures_are_classified(exc, kind):
    assert failures.kind_of(exc) == kind


def test_sqlite_result_codes_win_over_the_message():
    exc = sqlite3.OperationalError("some wording a later SQLite may use")
    exc.sqlite_errorname = "SQLITE_IOERR_WRITE"
    assert failures.kind_of(exc) == "io"


def test_a_failed_write_anywhere_is_a_store_error(store):
    def full(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("INSERT"):
            raise sqlite3.OperationalError("database or disk is full")

    sa.event.listen(store.engine, "before_cursor_execute", full)
    with pytest.raises(StoreError, match="the disk is full") as caught:
        with store.engine.begin() as conn:  # not through a Store method: e.g. the web UI
            conn.execute(schema.ratings.insert().values(run_id=1, example_id="a", score=1.0,
                                                        created_at=utcnow()))
    assert "Fix: free disk space" in caught.value.one_line()


def test_a_duplicate_key_is_not_translated(store):
    row = {"name": "p", "version": 1, "hash": "h", "body": "{}", "created_at": utcnow()}
    with store.engine.begin() as conn:
        conn.execute(schema.prompts.insert().values(**row))
    with pytest.raises(sa.exc.IntegrityError):
        with store.engine.begin() as conn:
            conn.execute(schema.prompts.insert().values(**row))
