"""Where promptmill keeps its files: ``$PROMPTMILL_HOME``, else ``~/.promptmill``."""

from __future__ import annotations

import os
from pathlib import Path


def home_dir() -> Path:
    path = Path(os.environ.get("PROMPTMILL_HOME") or Path.home() / ".promptmill")
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_url() -> str:
    """``$PROMPTMILL_DB`` if set, else a SQLite file in the home directory."""
    return os.environ.get("PROMPTMILL_DB") or f"sqlite:///{home_dir() / 'promptmill.db'}"
