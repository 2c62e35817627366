"""Test suites: prompts x models x cases with assertions, run, gated and reported.

The public names are imported on first use, so reading a recorded result (the workbench, the
gates) never loads the loader or the runner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "Suite": ".model",
    "SuiteResult": ".results",
    "load_suite": ".load",
    "run_suite": ".runner",
}

__all__ = ["Suite", "SuiteResult", "load_suite", "run_suite"]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs; never run
    from .load import load_suite
    from .model import Suite
    from .results import SuiteResult
    from .runner import run_suite
