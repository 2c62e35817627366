"""The PyTorch backends, registered through the ``promptmill.models`` entry points.

``hf:PATH_OR_GGUF`` runs a base model with transformers and ``tuned:NAME`` the base with a
stored adapter. They live here, not in ``models/``, because loading them needs tuning's base
loader and the adapter registry in the store: the models package knows no tuning and no store.
Nothing heavy is imported until a factory runs.
"""

from __future__ import annotations

from typing import Any

from ..errors import ModelError
from ..models.transformers_model import TransformersModel


def _cli_store_url() -> str | None:
    """Inside ``promptmill --db URL ...`` the adapter rows live in that store, not the default."""
    import sys

    cli = sys.modules.get("promptmill.cli.common")
    return getattr(getattr(cli, "State", None), "db_url", None)


def hf_model(argument: str = "", threads: int | None = None, **params: Any) -> TransformersModel:
    """Entry point for ``hf:PATH_OR_GGUF`` (``hf:embedded`` is the SmolLM2 GGUF)."""
    from .base import load_base

    if params:
        raise TypeError(f"unexpected parameters {sorted(params)}")
    base = load_base(argument or "embedded")
    return TransformersModel(base.model, base.tokenizer, base.identity,
                             f"hf:{argument or 'embedded'}", threads)


def tuned_model(argument: str, store_url: str | None = None, threads: int | None = None,
                **params: Any) -> TransformersModel:
    """Entry point for ``tuned:NAME``: the base model with the adapter NAME from the store."""
    from ..store.db import Store
    from .registry import get_adapter, load_tuned

    if params:
        raise TypeError(f"unexpected parameters {sorted(params)}")
    if not argument:
        raise ModelError("no adapter name after 'tuned:'", where="model",
                         fix="write tuned:NAME; 'promptmill tune list' shows the names")
    store = Store(store_url or _cli_store_url())
    row = get_adapter(store, argument)
    model, tokenizer, identity = load_tuned(row)
    return TransformersModel(model, tokenizer, identity, f"tuned:{argument}", threads)
