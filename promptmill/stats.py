"""Confidence intervals and paired significance tests, on top of scipy.stats.

A difference between two prompts counts only when a paired test on the same examples says so:
McNemar's exact test for 0/1 scores, a paired permutation test otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95, resamples: int = 2000,
            seed: int = 0) -> Estimate:
    """Mean with a percentile bootstrap confidence interval."""
    from scipy import stats

    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    mean = float(data.mean())
    if data.size == 1 or np.ptp(data) == 0:
        return Estimate(mean, mean, mean, int(data.size))
    res = stats.bootstrap((data,), np.mean, confidence_level=confidence, n_resamples=resamples,
                          method="percentile", random_state=np.random.default_rng(seed),
                          vectorized=True)
    ci = res.confidence_interval
    return Estimate(mean, float(ci.low), float(ci.high), int(data.size))


@dataclass(frozen=True)
class PairedComparison:
    n: int
    mean_a: float
    mean_b: float
    diff: Estimate  # b - a
    p_value: float
    test: str
    alpha: float
    label_a: str = "A"
    label_b: str = "B"

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha

    @property
    def winner(self) -> str | None:
        if not self.significant or self.diff.mean == 0:
            return None
        return self.label_b if self.diff.mean > 0 else self.label_a

    @property
    def verdict(self) -> str:
        if self.n == 0:
            return "no shared examples to compare"
        delta = abs(self.diff.mean) * 100
        if self.winner is None:
            return (f"no significant difference ({self.label_b} - {self.label_a} = "
                    f"{self.diff.mean * 100:+.1f} points, p={self.p_value:.3g}, {self.test})")
        loser = self.label_a if self.winner == self.label_b else self.label_b
        return (f"{self.winner} is better than {loser} by {delta:.1f} points "
                f"(p={self.p_value:.3g}, {self.test})")

    def to_dict(self) -> dict:
        return {**asdict(self), "significant": self.significant, "winner": self.winner,
                "verdict": self.verdict}


def _is_binary(*arrays: np.ndarray) -> bool:
    return all(np.isin(a, (0.0, 1.0)).all() for a in arrays)


def mcnemar_exact(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided exact McNemar p-value: a binomial test on the discordant pairs."""
    from scipy import stats

    only_b = int(((a == 0) & (b == 1)).sum())
    only_a = int(((a == 1) & (b == 0)).sum())
    if only_a + only_b == 0:
        return 1.0
    return float(stats.binomtest(only_b, only_a + only_b, 0.5).pvalue)


def paired_permutation(a: np.ndarray, b: np.ndarray, resamples: int = 9999,
                       seed: int = 0) -> float:
    """Two-sided p-value for mean(b - a) == 0 by random sign flips of the paired differences."""
    from scipy import stats

    diff = b - a
    if not diff.any():
        return 1.0
    res = stats.permutation_test((diff,), np.mean, permutation_type="samples",
                                 n_resamples=resamples, vectorized=True,
                                 random_state=np.random.default_rng(seed),
                                 alternative="two-sided")
    return float(res.pvalue)


def paired_test(a: Sequence[float], b: Sequence[float], alpha: float = 0.05, seed: int = 0,
                label_a: str = "A", label_b: str = "B") -> PairedComparison:
    """Compare two score lists over the same examples, in the same order."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.shape != xb.shape:
        raise ValueError(f"paired scores need equal lengths, got {xa.size} and {xb.size}")
    if xa.size == 0:
        nan = float("nan")
        return PairedComparison(0, nan, nan, Estimate(nan, nan, nan, 0), 1.0, "none", alpha,
                                label_a, label_b)
    if _is_binary(xa, xb):
        p, test = mcnemar_exact(xa, xb), "McNemar exact"
    else:
        p, test = paired_permutation(xa, xb, seed=seed), "paired permutation"
    return PairedComparison(int(xa.size), float(xa.mean()), float(xb.mean()),
                            mean_ci(xb - xa, seed=seed), p, test, alpha, label_a, label_b)
