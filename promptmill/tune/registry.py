"""Tuned adapters: where each lives on disk, its identity, and loading it.

Their rows (folder, settings, metrics) are in the store: :mod:`promptmill.store.adapters`.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from ..errors import ConfigError, StoreError
from ..store.adapters import (
    AdapterRow,
    delete_adapter,
    find_adapter,
    list_adapters,
    save_adapter,
    update_adapter,
)
from ..store.db import Store
from ..store.paths import home_dir

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


_ADAPTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def adapter_dir(name: str) -> Path:
    """Where adapter NAME lives: ``$PROMPTMILL_HOME/adapters/NAME``."""
    # a name is one plain path segment: '../x' or '/etc' must not write outside the home folder
    if not _ADAPTER_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(f"bad adapter name '{name}'", where="--name",
                          fix="use letters, digits, '.', '_' and '-' only (at most 100)")
    return home_dir() / "adapters" / name


def get_adapter(store: Store, name: str) -> AdapterRow:
    row = find_adapter(store, name)
    if row is None:
        known = ", ".join(r["name"] for r in list_adapters(store)) or "none yet"
        raise StoreError(f"no adapter named '{name}' (known: {known})", where=store.safe_url(),
                         fix="train one with 'promptmill tune run CONFIG --name NAME', or check "
                             "--db")
    return row


def start_adapter(store: Store, name: str, method: str, base_model: str, task: str,
                  path: Path, config: dict[str, Any]) -> AdapterRow:
    """Create the row, or mark an existing one running again (a resume)."""
    values = {"method": method, "base_model": base_model, "task": task, "path": str(path),
              "config": json.dumps(config, sort_keys=True), "status": "running",
              "finished_at": None}
    save_adapter(store, name, values)
    return get_adapter(store, name)


def adapter_hash(folder: Path) -> str:
    """The sha256 of the adapter's files: part of the tuned model's identity."""
    digest = hashlib.sha256()
    for name in ADAPTER_FILES:
        path = folder / name
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def best_folder(row: AdapterRow) -> Path:
    return Path(row["path"]) / "best"


def load_tuned(row: AdapterRow):
    """(model, tokenizer, identity) for a stored adapter: its base with the best weights."""
    from .base import fresh_copy, load_base

    folder = best_folder(row)
    if not (folder / "adapter_config.json").exists():
        raise StoreError(f"adapter '{row['name']}' has no saved weights yet (status "
                         f"{row['status']})", where=str(folder),
                         fix=f"finish or resume its training: promptmill tune run CONFIG --name "
                             f"{row['name']}")
    from ..errors import require

    PeftModel = require("peft", "tune", "tuned models").PeftModel
    base = load_base(row["base_model"])
    model = PeftModel.from_pretrained(fresh_copy(base), str(folder))
    model.eval()
    identity = f"tuned:{base.identity}:{row['method']}:{adapter_hash(folder)}"
    return model, base.tokenizer, identity


__all__ = ["ADAPTER_FILES", "AdapterRow", "adapter_dir", "adapter_hash", "best_folder",
           "delete_adapter", "find_adapter", "get_adapter", "list_adapters", "load_tuned",
           "start_adapter", "update_adapter"]
