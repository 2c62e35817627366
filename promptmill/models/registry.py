"""Find a model backend by spec, through the ``promptmill.models`` entry points.

A spec is ``NAME`` or ``NAME:ARGUMENT``: ``embedded``, ``gguf:/path/model.gguf``,
``openai:MODEL``, ``fake:ANSWER``. Built-ins are registered the same way as plugins, by the
one rule of ``promptmill.plugins`` (docs/plugins.md).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..plugins import Registry
from .base import Model

_BUILTINS = {
    "embedded": "promptmill.models.llamacpp:embedded_model",
    "gguf": "promptmill.models.llamacpp:gguf_model",
    "openai": "promptmill.models.openai_compat:openai_model",
    "fake": "promptmill.models.fake:fake_model",
    "hf": "promptmill.tune.backend:hf_model",
    "tuned": "promptmill.tune.backend:tuned_model",
}  # also promptmill's entry points; this table serves a source checkout without metadata


REGISTRY = Registry("promptmill.models", "model", _BUILTINS)


def _factories() -> dict[str, str]:
    """Every model name and its ``module:attribute`` target (the group is read once)."""
    return {name: entry.target for name, entry in REGISTRY.entries().items()}


def available_models() -> list[str]:
    return REGISTRY.names()


def load_model(spec: str, **params: Any) -> Model:
    """Build a model from a spec such as ``embedded`` or ``gguf:/models/x.gguf``."""
    name, _, argument = spec.partition(":")
    factory = REGISTRY.load(name)
    if factory is None:
        raise ConfigError(f"unknown model '{spec}'", where="model",
                          fix=f"use one of: {', '.join(available_models())} "
                              "(e.g. 'embedded', 'gguf:PATH', 'openai:MODEL')")
    try:
        return factory(argument, **params)
    except TypeError as exc:
        raise ConfigError(f"bad parameters for model '{spec}' ({exc})", where="model.params",
                          fix="check the parameter names for this backend") from None
