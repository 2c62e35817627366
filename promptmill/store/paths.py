"""Where the store keeps its database: ``$PROMPTMILL_DB``, else a SQLite file in the user
directory (``promptmill.paths``, whose names are importable from here too, as before)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote

from ..paths import home_dir, is_read_only_fs, kind_of_path, make_folder

__all__ = ["default_url", "home_dir", "is_read_only_fs", "kind_of_path", "make_folder",
           "sqlite_file"]


def sqlite_file(database: str | None, query: dict) -> Path | None:
    """The file behind a SQLite URL's database part, also for ``file:...?mode=ro&uri=true``."""
    if not database or database == ":memory:":
        return None
    if str(query.get("uri", "")).lower() in ("true", "1") and database.startswith("file:"):
        database = unquote(database[len("file:"):].split("?", 1)[0])
        if database.startswith("//"):  # file://host/path: keep the path
            database = "/" + database[2:].split("/", 1)[-1]
        if not database or database == ":memory:":
            return None
    return Path(database)


def default_url() -> str:
    """``$PROMPTMILL_DB`` if set, else a SQLite file in the home directory."""
    return os.environ.get("PROMPTMILL_DB") or f"sqlite:///{home_dir() / 'promptmill.db'}"
