"""Every top-level module of promptmill sits in exactly one layer of the import contracts.

``lint-imports`` enforces the contracts (``make lint``); this test only checks that the
whiteboard written in pyproject.toml still covers the package, so a new module cannot slip in
unlayered, and that the core's own contract names the same modules as the bottom layer.
"""

from __future__ import annotations

import pkgutil
import re
import tomllib
from pathlib import Path

import promptmill

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
# The bottom layer holds the core and, beside it, the models and the store.
NOT_CORE = {"models", "store"}


def contracts() -> list[dict]:
    with PYPROJECT.open("rb") as file:
        return tomllib.load(file)["tool"]["importlinter"]["contracts"]


def the_layers_contract() -> dict:
    (found,) = [c for c in contracts() if c["type"] == "layers" and c.get("containers")]
    return found


def layer_members(layer: str) -> set[str]:
    """``"a : b | c"`` -> ``{"a", "b", "c"}`` (siblings, independent or not)."""
    return {name.strip() for name in re.split(r"[|:]", layer) if name.strip()}


def top_level_modules() -> set[str]:
    return {info.name for info in pkgutil.iter_modules(promptmill.__path__)}


def test_every_top_level_module_is_in_a_layer():
    layers = [layer_members(layer) for layer in the_layers_contract()["layers"]]
    layered = set().union(*layers)
    assert sorted(top_level_modules() - layered) == []
    assert sorted(layered - top_level_modules()) == []


def test_no_module_is_in_two_layers():
    layers = [layer_members(layer) for layer in the_layers_contract()["layers"]]
    seen: list[str] = [name for layer in layers for name in layer]
    assert sorted({name for name in seen if seen.count(name) > 1}) == []


def test_the_core_contract_covers_the_bottom_layer():
    bottom = layer_members(the_layers_contract()["layers"][-1]) - NOT_CORE
    (core,) = [c for c in contracts() if c["name"].startswith("The core knows no store")]
    assert sorted(name.removeprefix("promptmill.") for name in core["source_modules"]) == \
        sorted(bottom)
