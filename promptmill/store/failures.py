"""Database failures the user can act on, as one-line :class:`StoreError` messages.

Installed on every store engine as a ``handle_error`` hook, so a full disk, an I/O error, a
read-only store or a file that is not a database reads the same wherever it happens: opening
the store, writing results, the web UI's queries or the trace writer. Errors that code handles
itself (a duplicate key, a lost race) pass through untouched.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import StoreError
from .paths import is_read_only_fs, kind_of_path

RESUME = "finished results are kept, and rerunning the same command resumes the run"

# SQLite's primary result codes (Python 3.11 exposes them as ``sqlite_errorname``), and the
# messages of the same errors when a driver or a test gives only the text
SQLITE_CODES = {"SQLITE_FULL": "full", "SQLITE_IOERR": "io", "SQLITE_READONLY": "readonly",
                "SQLITE_PERM": "readonly", "SQLITE_NOTADB": "notadb", "SQLITE_CORRUPT": "notadb",
                "SQLITE_CANTOPEN": "cantopen", "SQLITE_BUSY": "busy", "SQLITE_LOCKED": "busy"}
MESSAGES = {"database or disk is full": "full", "no space left on device": "full",
            "disk i/o error": "io", "readonly database": "readonly",
            "read-only transaction": "readonly", "read-only file system": "readonly",
            "file is not a database": "notadb", "database disk image is malformed": "notadb",
            "unable to open database file": "cantopen", "database is locked": "busy"}
# PostgreSQL SQLSTATE codes: 53100 disk_full, 58030 io_error, 25006 read_only_sql_transaction
PG_STATES = {"53100": "full", "58030": "io", "25006": "readonly"}


def kind_of(exc: BaseException) -> str | None:
    """What went wrong, as one of the keys of ``explain``, or None for anything else."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    for code, kind in SQLITE_CODES.items():
        if name == code or name.startswith(code + "_"):
            return kind
    state = getattr(exc, "sqlstate", None)
    if state in PG_STATES:
        return PG_STATES[state]
    text = str(exc).lower()
    return next((kind for needle, kind in MESSAGES.items() if needle in text), None)


def explain(kind: str, detail: str, where: str, path: Path | None) -> StoreError:
    if kind in ("cantopen", "io", "readonly") and path is not None:
        kind = _refine(kind, path)
    message, fix = {
        "full": (f"the store cannot be written: the disk is full ({detail})",
                 f"free disk space; {RESUME}"),
        "io": (f"the store cannot be written: input/output error ({detail})",
               f"check the disk; {RESUME}"),
        "readonly": (f"the store is read-only ({detail})",
                     "use a writable store (--db URL or PROMPTMILL_HOME), or make the file "
                     "and its folder writable"),
        "notadb": (f"this file is not a promptmill store ({detail})",
                   "point --db or PROMPTMILL_HOME at a promptmill store or a new file name, "
                   "or move this file away"),
        "isdir": ("this is a folder, not a store file",
                  "give a file name inside it, e.g. sqlite:///FOLDER/promptmill.db"),
        "cantopen": (f"cannot open the store file ({detail})",
                     "check that its folder exists and that promptmill may write there"),
        "busy": (f"another process kept the store locked too long ({detail})",
                 "wait until the other promptmill command has finished, then rerun"),
    }[kind]
    return StoreError(message, where=where, fix=fix)


def _refine(kind: str, path: Path) -> str:
    """SQLite says 'unable to open' or 'I/O error' for a folder or a read-only mount."""
    found = kind_of_path(path)
    if found == "folder":
        return "isdir"
    if found not in ("file", "missing"):  # e.g. "File name too long": SQLite's text is vaguer
        return kind
    if is_read_only_fs(path) or (found == "file" and not os.access(path, os.W_OK)):
        return "readonly"
    if found == "missing" and kind_of_path(path.parent) == "folder" \
            and not os.access(path.parent, os.W_OK):
        return "readonly"
    return kind


def install(engine, where: str, path: Path | None) -> None:
    """Translate the failures above on ``engine``, naming ``where`` (the file or the URL)."""
    import sqlalchemy as sa

    def handle_error(context) -> None:
        original = context.original_exception
        kind = kind_of(original)
        if kind is not None:
            detail = " ".join(str(original).split()) or type(original).__name__
            raise explain(kind, detail, where, path) from original

    sa.event.listen(engine, "handle_error", handle_error)
