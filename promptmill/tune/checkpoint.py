"""Checkpoints: adapter weights, optimizer state and loop position, replaced atomically.

A run killed at any moment leaves either the previous checkpoint or the new one, whole:
the new one is written beside the old and swapped in with renames; ``state.json`` is written
last, so a folder without it is incomplete and ignored.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

STATE = "state.json"


def save(folder: Path, model: Any, optimizer: Any, state: dict[str, Any]) -> None:
    import torch

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    (tmp / STATE).write_text(json.dumps(state, indent=1, default=float))
    old = folder.with_name(folder.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def find(folder: Path) -> Path | None:
    """The newest complete checkpoint: the folder itself, or a swap interrupted halfway."""
    for candidate in (folder, folder.with_name(folder.name + ".tmp"),
                      folder.with_name(folder.name + ".old")):
        if (candidate / STATE).exists():
            return candidate
    return None


def load(found: Path, model: Any, optimizer: Any) -> dict[str, Any]:
    """Put the checkpoint's weights into ``model`` and its state into ``optimizer``."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(str(found / "adapter_model.safetensors")))
    optimizer.load_state_dict(torch.load(found / "optimizer.pt", weights_only=True))
    return json.loads((found / STATE).read_text())


def save_weights(folder: Path, model: Any) -> None:
    """Only the adapter (the best epoch's), replaced the same careful way."""
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
