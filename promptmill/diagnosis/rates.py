"""Proportions with Wilson intervals: exact enough for counts and fast at any size."""

from __future__ import annotations

import math

from ..stats import Estimate

Z95 = 1.959963984540054


def rate_ci(count: int, total: int, z: float = Z95) -> Estimate:
    """count/total with its 95% Wilson score interval."""
    if total <= 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    p = count / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return Estimate(p, max(0.0, round(centre - half, 12)), min(1.0, round(centre + half, 12)),
                    total)
