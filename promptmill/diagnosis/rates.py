"""Proportions with Wilson intervals: exact enough for counts and fast at any size."""

from __future__ import annotations

from ..stats import Z95, Estimate, proportion_ci


def rate_ci(count: int, total: int, z: float = Z95) -> Estimate:
    """count/total with its 95% Wilson score interval (the estimate every screen shows)."""
    return proportion_ci(count, total, z)
