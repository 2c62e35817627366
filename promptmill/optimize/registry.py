"""Find an optimizer by name, through the ``promptmill.optimizers`` entry points."""

from __future__ import annotations

import importlib
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from ..errors import ConfigError
from .base import Optimizer

_BUILTINS = {
    "ape": "promptmill.optimize.ape:APE",
    "opro": "promptmill.optimize.opro:OPRO",
    "protegi": "promptmill.optimize.protegi:ProTeGi",
    "evolve": "promptmill.optimize.evolve:Evolve",
    "mipro": "promptmill.optimize.mipro:MIPRO",
    "fewshot": "promptmill.optimize.fewshot:FewShot",
    "auto": "promptmill.optimize.auto:Auto",
}


@lru_cache(maxsize=1)
def _targets() -> dict[str, str]:
    found = dict(_BUILTINS)
    for ep in entry_points(group="promptmill.optimizers"):
        found.setdefault(ep.name, ep.value)
    return found


def available_optimizers() -> list[str]:
    return sorted(_targets())


def get_optimizer(name: str, **options: Any) -> Optimizer:
    target = _targets().get(name)
    if target is None:
        raise ConfigError(f"unknown optimization method '{name}'", where="--method",
                          fix=f"use one of: {', '.join(available_optimizers())}")
    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(f"bad options for method '{name}' ({exc})", where="--option",
                          fix="check the option names in the method's documentation") from None
