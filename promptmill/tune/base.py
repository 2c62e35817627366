"""Loading a Hugging Face causal LM for tuning: from a folder, a GGUF file, or ``embedded``.

The base model is loaded once per process and copied for each tuning run, because PEFT
injects its layers into the model it wraps.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelError, PromptmillError, require

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                "pytorch_model.bin.index.json")
_LOCK = threading.Lock()
_CACHE: dict[str, Base] = {}


@dataclass
class Base:
    """A loaded base model with its tokenizer and a stable identity."""

    spec: str
    model: Any
    tokenizer: Any
    identity: str


def import_torch():
    torch = require("torch", "tune", "model tuning")
    require("transformers", "tune", "model tuning")
    return torch


def resolve_source(spec: str) -> tuple[Path, str | None]:
    """(folder, gguf file name or None) for ``embedded``, a GGUF path or a model folder."""
    from ..models.llamacpp import embedded_gguf_path

    if spec in ("", "embedded"):
        path = embedded_gguf_path()
        return path.parent, path.name
    path = Path(spec.removeprefix("hf:")).expanduser()
    if not path.exists():
        raise ModelError("model path not found", where=str(path),
                         fix="give a Hugging Face model folder, a .gguf file, or 'embedded'")
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelError("a model file must be a GGUF", where=str(path),
                             fix="give a .gguf file or a folder with config.json and weights")
        return path.parent, path.name
    if not (path / "config.json").exists():
        raise ModelError("this folder has no config.json", where=str(path),
                         fix="give a folder saved by save_pretrained(), or a .gguf file")
    if not any((path / name).exists() for name in WEIGHT_FILES):
        raise ModelError("this model folder has no weights (model.safetensors or "
                         "pytorch_model.bin)", where=str(path),
                         fix="copy the weight files into the folder, or point at a .gguf file")
    return path, None


def _identity(folder: Path, gguf: str | None) -> str:
    from ..models.llamacpp import file_sha256

    if gguf:
        return f"hf-gguf:{file_sha256(folder / gguf)[:16]}"
    digest = hashlib.sha256()
    for name in sorted(p.name for p in folder.iterdir() if p.is_file()):
        if name.endswith((".json", ".safetensors", ".bin", ".model", ".txt")):
            digest.update(name.encode())
            digest.update(json.dumps(_stat(folder / name)).encode())
    return f"hf:{digest.hexdigest()[:16]}"


def _stat(path: Path) -> list[int]:
    from ..models.llamacpp import file_sha256

    if path.suffix in (".safetensors", ".bin"):
        return [int(file_sha256(path)[:12], 16)]
    return [int(hashlib.sha256(path.read_bytes()).hexdigest()[:12], 16)]


def load_base(spec: str = "embedded") -> Base:
    """The base model for ``spec``, loaded once per process (about 20 s for the embedded GGUF)."""
    key = spec or "embedded"
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = _load(key)
        return _CACHE[key]


def _load(spec: str) -> Base:
    import_torch()
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local path must never reach the network
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    folder, gguf = resolve_source(spec)
    hf_logging.disable_progress_bar()
    kwargs = {"gguf_file": gguf} if gguf else {}
    where = str(folder / gguf) if gguf else str(folder)
    try:
        if gguf:
            require("gguf", "tune", "loading GGUF files into PyTorch")
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    except PromptmillError:
        raise
    except Exception as exc:  # a user's file can fail in any parser, explain it
        reason = " ".join(str(exc).split())[:200]
        kind = "GGUF" if gguf else "model folder"
        raise ModelError(f"transformers cannot load this {kind} ({reason})", where=where,
                         fix="use a GGUF of an architecture transformers supports "
                             "(llama, mistral, qwen2, gemma, ...) or a Hugging Face folder"
                         ) from None
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return Base(spec, model, tokenizer, _identity(folder, gguf))


def fresh_copy(base: Base):
    """A private copy of the base weights for one tuning run."""
    import copy

    return copy.deepcopy(base.model)
