"""Prompt-injection and jailbreak checks against a served prompt.

The built-in suite is data (``attacks.json``); the runner sends each attack to a running
``promptmill serve`` endpoint over HTTP and judges the answers with simple detectors.
"""

from __future__ import annotations

from .runner import InjectionReport, run_injection
from .suite import Attack, load_suite

__all__ = ["Attack", "InjectionReport", "load_suite", "run_injection"]
