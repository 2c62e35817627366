"""Model tuning: soft prompts, prefixes and LoRA with PEFT, Optuna search, data augmentation.

Nothing heavy is imported here: torch, transformers and peft load only when a tuning function
runs, and a missing one raises :class:`~promptmill.errors.MissingExtraError` naming the
``[tune]`` extra. The ``hf:`` and ``tuned:`` model backends are registered from
:mod:`promptmill.tune.backend` through the ``promptmill.models`` entry points, so the models
package never imports tuning or the store.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "TuneSettings": "promptmill.tune.settings",
    "TuneResult": "promptmill.tune.train",
    "tune": "promptmill.tune.train",
    "search": "promptmill.tune.search",
    "augment": "promptmill.tune.augment",
    "run_pipeline": "promptmill.tune.pipeline",
    "list_adapters": "promptmill.tune.registry",
    "get_adapter": "promptmill.tune.registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'promptmill.tune' has no attribute '{name}'")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
