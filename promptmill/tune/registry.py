"""The ``adapters`` table: one row per tuned adapter, with its folder, settings and metrics."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..errors import ConfigError, StoreError
from ..store import schema
from ..store.db import Store, utcnow
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


def find_adapter(store: Store, name: str) -> dict[str, Any] | None:
    t = schema.adapters
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.name == name)).mappings().first()
    return _decoded(row) if row else None


def get_adapter(store: Store, name: str) -> dict[str, Any]:
    row = find_adapter(store, name)
    if row is None:
        known = ", ".join(r["name"] for r in list_adapters(store)) or "none yet"
        raise StoreError(f"no adapter named '{name}' (known: {known})", where=store.safe_url(),
                         fix="train one with 'promptmill tune CONFIG --name NAME', or check "
                             "--db")
    return row


def list_adapters(store: Store) -> list[dict[str, Any]]:
    t = schema.adapters
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t).order_by(t.c.id)).mappings().all()
    return [_decoded(r) for r in rows]


def _decoded(row) -> dict[str, Any]:
    out = dict(row)
    out["config"] = json.loads(out["config"] or "{}")
    out["metrics"] = json.loads(out["metrics"] or "{}")
    return out


def start_adapter(store: Store, name: str, method: str, base_model: str, task: str,
                  path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Create the row, or mark an existing one running again (a resume)."""
    t = schema.adapters
    values = {"method": method, "base_model": base_model, "task": task, "path": str(path),
              "config": json.dumps(config, sort_keys=True), "status": "running",
              "finished_at": None}
    with store.engine.begin() as conn:
        if conn.execute(sa.select(t.c.id).where(t.c.name == name)).first():
            conn.execute(t.update().where(t.c.name == name).values(**values))
        else:
            conn.execute(t.insert().values(name=name, created_at=utcnow(), metrics="{}",
                                           **values))
    return get_adapter(store, name)


def update_adapter(store: Store, name: str, *, status: str | None = None,
                   metrics: dict[str, Any] | None = None, finished: bool = False) -> None:
    t = schema.adapters
    values: dict[str, Any] = {}
    if status is not None:
        values["status"] = status
    if metrics is not None:
        values["metrics"] = json.dumps(metrics, sort_keys=True, default=float)
    if finished:
        values["finished_at"] = utcnow()
    with store.engine.begin() as conn:
        conn.execute(t.update().where(t.c.name == name).values(**values))


def delete_adapter(store: Store, name: str) -> None:
    t = schema.adapters
    with store.engine.begin() as conn:
        conn.execute(t.delete().where(t.c.name == name))


def adapter_hash(folder: Path) -> str:
    """The sha256 of the adapter's files: part of the tuned model's identity."""
    digest = hashlib.sha256()
    for name in ADAPTER_FILES:
        path = folder / name
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def best_folder(row: dict[str, Any]) -> Path:
    return Path(row["path"]) / "best"


def load_tuned(row: dict[str, Any]):
    """(model, tokenizer, identity) for a stored adapter: its base with the best weights."""
    from .base import fresh_copy, load_base

    folder = best_folder(row)
    if not (folder / "adapter_config.json").exists():
        raise StoreError(f"adapter '{row['name']}' has no saved weights yet (status "
                         f"{row['status']})", where=str(folder),
                         fix=f"finish or resume its training: promptmill tune CONFIG --name "
                             f"{row['name']}")
    from ..errors import require

    PeftModel = require("peft", "tune", "tuned models").PeftModel
    base = load_base(row["base_model"])
    model = PeftModel.from_pretrained(fresh_copy(base), str(folder))
    model.eval()
    identity = f"tuned:{base.identity}:{row['method']}:{adapter_hash(folder)}"
    return model, base.tokenizer, identity
