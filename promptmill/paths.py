"""The user directory: ``$PROMPTMILL_HOME``, else ``~/.promptmill``, and making folders in it.

A leaf module (it imports only ``promptmill.errors``): models cache file hashes, retrieval
caches indexes and the store keeps its database here, and none of them need import another
to find the folder. ``promptmill.store.paths`` re-exports these names, as before.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import StoreError


def home_dir() -> Path:
    from_env = os.environ.get("PROMPTMILL_HOME")
    path = Path(from_env or Path.home() / ".promptmill")
    where = f"PROMPTMILL_HOME={path}" if from_env else str(path)
    make_folder(path, where, "point PROMPTMILL_HOME at a folder promptmill may write to")
    return path


def make_folder(path: Path, where: str, fix: str) -> None:
    """Create ``path`` (and its parents), or explain in one line why that is impossible."""
    try:
        if path.is_dir():
            return
        blocking = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()),
                        None)
        if blocking is not None:
            raise StoreError(f"{blocking} is a file, not a folder", where=where, fix=fix)
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # permission denied, read-only file system, name too long...
        reason = "read-only file system" if is_read_only_fs(path) else exc.strerror or str(exc)
        raise StoreError(f"cannot create this folder ({reason})", where=where, fix=fix) from None


def kind_of_path(path: Path) -> str:
    """'folder', 'file', 'missing', or why the path cannot even be looked at (too long...)."""
    try:
        if path.is_dir():
            return "folder"
        return "file" if path.exists() else "missing"
    except OSError as exc:
        return exc.strerror or str(exc)


def is_read_only_fs(path: Path) -> bool:
    """Is the nearest existing folder of ``path`` on a file system mounted read-only?"""
    for candidate in (path, *path.parents):
        try:
            return bool(os.statvfs(candidate).f_flag & os.ST_RDONLY)
        except FileNotFoundError:
            continue
        except (OSError, AttributeError):  # too long a name, or no statvfs (Windows)
            return False
    return False
