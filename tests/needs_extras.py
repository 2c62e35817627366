"""Tests that need an optional extra (ray, psycopg): skipped without it here, failed in CI."""

from __future__ import annotations

import importlib

from helpers import skip_or_fail

# marker -> (the module the marked tests import, the extra that installs it)
EXTRA_FOR_MARKER = {"ray": ("ray", "ray"), "postgres": ("psycopg", "postgres")}


def require_extra(module: str, extra: str) -> None:
    """Skip the test when ``module`` cannot be imported; in CI (PROMPTMILL_REQUIRE_SERVICES=1),
    where every extra is installed, fail it instead, so a broken install is never hidden."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        skip_or_fail(f"needs {module} ({exc}): pip install 'promptmill[{extra}]'")


def require_extras_of(item) -> None:
    for marker, (module, extra) in EXTRA_FOR_MARKER.items():
        if item.get_closest_marker(marker) is not None:
            require_extra(module, extra)
