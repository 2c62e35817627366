"""Find an optimizer by name, through the ``promptmill.optimizers`` entry points.

Built-ins and plugins follow the one rule of ``promptmill.plugins`` (docs/plugins.md).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..plugins import Registry
from .base import Optimizer

_BUILTINS = {
    "ape": "promptmill.optimize.ape:APE",
    "opro": "promptmill.optimize.opro:OPRO",
    "protegi": "promptmill.optimize.protegi:ProTeGi",
    "evolve": "promptmill.optimize.evolve:Evolve",
    "mipro": "promptmill.optimize.mipro:MIPRO",
    "fewshot": "promptmill.optimize.fewshot:FewShot",
    "auto": "promptmill.optimize.auto:Auto",
}  # also promptmill's entry points; this table serves a source checkout without metadata

REGISTRY = Registry("promptmill.optimizers", "optimizer", _BUILTINS)


def available_optimizers() -> list[str]:
    return REGISTRY.names()


def get_optimizer(name: str, **options: Any) -> Optimizer:
    cls = REGISTRY.load(name)
    if cls is None:
        raise ConfigError(f"unknown optimization method '{name}'", where="--method",
                          fix=f"use one of: {', '.join(available_optimizers())}")
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(f"bad options for method '{name}' ({exc})", where="--option",
                          fix="check the option names in the method's documentation") from None
