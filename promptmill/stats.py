"""Confidence intervals and paired significance tests, on top of scipy.stats.

A difference between two prompts counts only when a paired test on the same examples says so:
McNemar's exact test for 0/1 scores, a paired permutation test otherwise. A CI gate asks a
one-sided question instead (is the candidate not worse than the baseline by more than a margin,
or better?): :func:`noninferiority_test` and :func:`superiority_test`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class Estimate:
    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


Z95 = 1.959963984540054


def proportion_ci(count: int, total: int, z: float = Z95) -> Estimate:
    """count/total with its 95% Wilson score interval: right at 0% and 100% too, where a
    bootstrap of all-equal outcomes collapses to a zero-width interval."""
    if total <= 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    p = count / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return Estimate(p, max(0.0, round(centre - half, 12)), min(1.0, round(centre + half, 12)),
                    total)


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95, resamples: int = 2000,
            seed: int = 0) -> Estimate:
    """The one estimate of a mean score every screen shows: the Wilson interval when every
    score is 0 or 1 (a pass rate), else a percentile bootstrap."""
    from scipy import stats

    data = np.asarray(values, dtype=float)
    if data.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    if confidence == 0.95 and _is_binary(data):
        return proportion_ci(int(data.sum()), int(data.size))
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
    return _sign_flip(b - a, "two-sided", resamples, seed)


def _sign_flip(diff: np.ndarray, alternative: Literal["two-sided", "greater"], resamples: int,
               seed: int) -> float:
    """p-value of mean(diff) == 0 by random sign flips (scipy enumerates them all when few)."""
    from scipy import stats

    if not diff.any():
        return 1.0
    res = stats.permutation_test((diff,), np.mean, permutation_type="samples",
                                 n_resamples=resamples, vectorized=True,
                                 random_state=np.random.default_rng(seed),
                                 alternative=alternative)
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


# --- one-sided gates: is a candidate prompt not worse (or better) than a baseline? ---------

NON_INFERIOR, SUPERIOR = "non-inferior", "superior"


def _points(value: float) -> str:
    return f"{value * 100:+.1f}"


@dataclass(frozen=True)
class OneSidedComparison:
    """A one-sided paired test of a candidate against a baseline over the same cases.

    Non-inferiority: H0 mean(candidate - baseline) <= -margin, rejected when the candidate is
    shown worse by less than the margin. Superiority: the margin-0 case, H0 diff <= 0.
    ``diff`` is candidate - baseline with a two-sided (1 - 2 alpha) interval, the one whose
    lower end matches a one-sided test at ``alpha``.
    """

    n: int
    mean_candidate: float
    mean_baseline: float
    diff: Estimate
    p_value: float
    test: str
    alpha: float
    margin: float
    gate: str  # NON_INFERIOR or SUPERIOR
    label_candidate: str = "candidate"
    label_baseline: str = "baseline"

    @property
    def passed(self) -> bool:
        return self.n > 0 and self.p_value < self.alpha

    @property
    def verdict(self) -> str:
        return self.verdict_on(None)

    def verdict_on(self, where: str | None) -> str:
        """The decision in plain words; ``where`` (a model name) goes after the claim."""
        on = f" on {where}" if where else ""
        cand, base = self.label_candidate, self.label_baseline
        if self.n == 0:
            return f"no shared cases to compare {cand} with {base}{on}"
        margin = f"{self.margin * 100:.1f}"
        if self.gate == SUPERIOR:
            claim = "is better than" if self.passed else "could not be shown better than"
            return f"{cand} {claim} {base}{on} ({self._evidence()})"
        claim = "is not worse than" if self.passed else "could not be shown not worse than"
        return (f"{cand} {claim} {base} by more than {margin} points{on} "
                f"({self._evidence()}, margin {margin})")

    def _evidence(self) -> str:
        d = self.diff
        return (f"diff {_points(d.mean)} [{_points(d.low)}, {_points(d.high)}], "
                f"p={self.p_value:.3g}, one-sided {self.test}")

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed, "verdict": self.verdict}


def _tango_constrained_q(discordant_lost: int, discordant_won: int, n: int,
                         margin: float) -> float:
    """The restricted MLE of P(baseline fails, candidate passes) under H0 diff = -margin.

    Tango (1998), Stat Med 17:891-908, eq. (3), with treatment 1 = the baseline, treatment 2 =
    the candidate, delta0 = margin >= 0: the positive root of A q^2 + B q + C = 0.
    """
    b, c = discordant_lost, discordant_won  # b: baseline 1 / candidate 0; c: the reverse
    a_coef = 2.0 * n
    b_coef = -b - c + (2.0 * n - b + c) * margin
    c_coef = -c * margin * (1.0 - margin)
    return (math.sqrt(b_coef * b_coef - 4.0 * a_coef * c_coef) - b_coef) / (2.0 * a_coef)


def tango_score_p(candidate: np.ndarray, baseline: np.ndarray, margin: float) -> float:
    """One-sided p for H0 P(candidate) - P(baseline) <= -margin, for paired 0/1 outcomes.

    Tango's score test for the difference of paired proportions (Tango 1998), continuity
    corrected so its size stays at or under alpha in small and medium samples: the variance is
    taken under H0 (its restricted MLE), which keeps the size near nominal where the Wald test
    is liberal (compared in Liu et al. 2002, Stat Med 21:231-245); our simulations in
    tests/test_stats_noninferiority.py check the size. At margin 0 it is McNemar's score test.
    """
    from scipy import stats

    n = int(candidate.size)
    lost = int(((baseline == 1) & (candidate == 0)).sum())
    won = int(((baseline == 0) & (candidate == 1)).sum())
    q = _tango_constrained_q(lost, won, n, margin)
    variance = n * (2.0 * q + margin * (1.0 - margin))
    if variance <= 0:  # margin 0 and no discordant pair: no evidence either way
        return 1.0
    # a half-count continuity correction: the counts move in whole steps, and without it the
    # normal approximation passed 5.1% of candidates exactly at the margin in bench_suites.py
    # (4,000 simulated pairs on real outcomes, alpha 0.05); with it, 3.8-4.0%
    z = (lost - won - n * margin + 0.5) / math.sqrt(variance)
    return float(stats.norm.cdf(z))


def exact_superiority_p(candidate: np.ndarray, baseline: np.ndarray) -> float:
    """One-sided exact McNemar: a binomial test of the discordant pairs the candidate won.

    Exact conditional on the discordant count, so it never exceeds its size, whatever n.
    """
    from scipy import stats

    won = int(((baseline == 0) & (candidate == 1)).sum())
    lost = int(((baseline == 1) & (candidate == 0)).sum())
    if won + lost == 0:
        return 1.0
    return float(stats.binomtest(won, won + lost, 0.5, alternative="greater").pvalue)


def sign_flip_p(shifted: np.ndarray, resamples: int = 9999, seed: int = 0) -> float:
    """One-sided p for H0 mean <= 0 of paired differences, by random sign flips.

    The caller shifts the differences by the margin (d + margin), so that H0 sits at 0. scipy
    enumerates all 2^n flips exactly when n is small.
    """
    return _sign_flip(shifted, "greater", resamples, seed)


def _check_gate_args(margin: float, alpha: float) -> None:
    if not 0.0 <= margin < 1.0:
        raise ValueError(f"the margin must be in [0, 1), got {margin}")
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")


def _one_sided_p(xc: np.ndarray, xb: np.ndarray, margin: float, seed: int) -> tuple[float, str]:
    if _is_binary(xc, xb):
        if margin == 0:
            return exact_superiority_p(xc, xb), "exact McNemar"
        return tango_score_p(xc, xb, margin), "Tango score test"
    return sign_flip_p(xc - xb + margin, seed=seed), "paired sign-flip test"


def noninferiority_test(candidate: Sequence[float], baseline: Sequence[float], margin: float,
                        alpha: float = 0.05, seed: int = 0, label_candidate: str = "candidate",
                        label_baseline: str = "baseline",
                        gate: str = NON_INFERIOR) -> OneSidedComparison:
    """Is the candidate not worse than the baseline by more than ``margin``, on paired cases?

    Scores are per case, in the same order, in [0, 1] (a pass/fail or a pass rate over
    samples). 0/1 scores get Tango's score test (the exact McNemar test at margin 0); other
    scores a sign-flip permutation test on d + margin.
    """
    _check_gate_args(margin, alpha)
    xc, xb = np.asarray(candidate, dtype=float), np.asarray(baseline, dtype=float)
    if xc.shape != xb.shape:
        raise ValueError(f"paired scores need equal lengths, got {xc.size} and {xb.size}")
    if xc.size == 0:
        nan = float("nan")
        return OneSidedComparison(0, nan, nan, Estimate(nan, nan, nan, 0), 1.0, "none", alpha,
                                  margin, gate, label_candidate, label_baseline)
    p, test = _one_sided_p(xc, xb, margin, seed)
    diff = mean_ci(xc - xb, confidence=1.0 - 2.0 * alpha, seed=seed)
    return OneSidedComparison(int(xc.size), float(xc.mean()), float(xb.mean()), diff, p, test,
                              alpha, margin, gate, label_candidate, label_baseline)


def superiority_test(candidate: Sequence[float], baseline: Sequence[float], alpha: float = 0.05,
                     seed: int = 0, label_candidate: str = "candidate",
                     label_baseline: str = "baseline") -> OneSidedComparison:
    """Is the candidate better than the baseline (H0 diff <= 0), one-sided, on paired cases?"""
    return noninferiority_test(candidate, baseline, 0.0, alpha, seed, label_candidate,
                               label_baseline, gate=SUPERIOR)
