"""Find a model backend by spec, through the ``promptmill.models`` entry points.

A spec is ``NAME`` or ``NAME:ARGUMENT``: ``embedded``, ``gguf:/path/model.gguf``,
``openai:MODEL``, ``fake:ANSWER``. Built-ins are registered the same way as plugins.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from ..errors import ConfigError
from .base import Model

_BUILTINS = {
    "embedded": "promptmill.models.llamacpp:embedded_model",
    "gguf": "promptmill.models.llamacpp:gguf_model",
    "openai": "promptmill.models.openai_compat:openai_model",
    "fake": "promptmill.models.fake:fake_model",
    "hf": "promptmill.tune.backend:hf_model",
    "tuned": "promptmill.tune.backend:tuned_model",
}


@lru_cache(maxsize=1)
def _factories() -> dict[str, str]:
    found = dict(_BUILTINS)  # so a source checkout without installed metadata still works
    for ep in entry_points(group="promptmill.models"):
        found[ep.name] = ep.value
    return found


def available_models() -> list[str]:
    return sorted(_factories())


def _resolve(target: str):
    import importlib

    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def load_model(spec: str, **params: Any) -> Model:
    """Build a model from a spec such as ``embedded`` or ``gguf:/models/x.gguf``."""
    name, _, argument = spec.partition(":")
    factories = _factories()
    if name not in factories:
        raise ConfigError(f"unknown model '{spec}'", where="model",
                          fix=f"use one of: {', '.join(available_models())} "
                              "(e.g. 'embedded', 'gguf:PATH', 'openai:MODEL')")
    factory = _resolve(factories[name])
    try:
        return factory(argument, **params)
    except TypeError as exc:
        raise ConfigError(f"bad parameters for model '{spec}' ({exc})", where="model.params",
                          fix="check the parameter names for this backend") from None
