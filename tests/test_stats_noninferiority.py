"""The one-sided paired gates of promptmill.stats, checked by seeded simulation.

Size: at the H0 boundary (true diff = -margin) a gate may pass a candidate at most alpha of
the time, up to Monte Carlo error (3 standard errors over the simulated pairs). Power: a
candidate truly equal to its baseline passes non-inferiority most of the time at n = 200.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from promptmill.stats import (
    NON_INFERIOR,
    SUPERIOR,
    exact_superiority_p,
    noninferiority_test,
    sign_flip_p,
    superiority_test,
    tango_score_p,
)

ALPHA = 0.05
SIMULATIONS = 1000


def _ceiling(alpha: float = ALPHA, runs: int = SIMULATIONS) -> float:
    return alpha + 3 * math.sqrt(alpha * (1 - alpha) / runs)


def paired_binary(rng: np.random.Generator, n: int, won: float, lost: float,
                  both: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    """n paired 0/1 outcomes: P(baseline 0, candidate 1) = won, the reverse = lost.

    True diff (candidate - baseline) = won - lost; ``both`` is P(both pass).
    """
    cells = rng.choice(4, size=n, p=[both, lost, won, 1 - both - lost - won])
    baseline = np.isin(cells, (0, 1)).astype(float)  # cells 0 (both) and 1 (lost)
    candidate = np.isin(cells, (0, 2)).astype(float)  # cells 0 (both) and 2 (won)
    return candidate, baseline


def paired_rates(rng: np.random.Generator, n: int, shift: float,
                 samples: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Per-case pass rates over ``samples`` draws; the candidate's true rate is shifted."""
    base_p = rng.uniform(0.2, 0.9, n)
    cand_p = base_p + shift
    return rng.binomial(samples, cand_p) / samples, rng.binomial(samples, base_p) / samples


def _rejection_rate(draw, p_value, runs: int = SIMULATIONS, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    return sum(p_value(*draw(rng)) < ALPHA for _ in range(runs)) / runs


@pytest.mark.parametrize(("n", "margin", "won"), [
    (200, 0.05, 0.05),  # the brief's case
    (50, 0.10, 0.02),  # few cases, a wide margin
    (30, 0.10, 0.05),  # very few cases
    (500, 0.02, 0.03),  # a tight margin on a large suite
])
def test_tango_size_at_the_boundary_stays_within_alpha(n, margin, won):
    lost = won + margin  # true diff = -margin exactly
    rate = _rejection_rate(lambda rng: paired_binary(rng, n, won, lost),
                           lambda c, b: tango_score_p(c, b, margin))
    assert rate <= _ceiling(), f"size {rate:.3f} at n={n}, margin={margin}"


def test_exact_superiority_size_when_truly_equal():
    rate = _rejection_rate(lambda rng: paired_binary(rng, 200, 0.05, 0.05), exact_superiority_p)
    assert rate <= _ceiling()


def test_sign_flip_size_at_the_boundary_for_pass_rates():
    margin = 0.05
    rate = _rejection_rate(lambda rng: paired_rates(rng, 100, -margin),
                           lambda c, b: sign_flip_p(c - b + margin, resamples=999))
    assert rate <= _ceiling()


def test_non_inferiority_power_when_truly_equal_at_n200():
    # Two versions of a prompt agree on most cases: 3% of cases flip each way. Measured with
    # this seed: power 0.83 (and 0.31 if the pairs were as discordant as two independent 80%
    # prompts, 32% discordant: the gate then needs more cases or a wider margin).
    rate = _rejection_rate(lambda rng: paired_binary(rng, 200, 0.03, 0.03),
                           lambda c, b: tango_score_p(c, b, 0.05))
    assert rate >= 0.78


def test_non_inferiority_power_for_equal_pass_rates_over_samples():
    # per-case rates over 5 samples, equal true rates, n = 200, margin 0.05: 0.80 over 1,000 runs
    rate = _rejection_rate(lambda rng: paired_rates(rng, 200, 0.0),
                           lambda c, b: sign_flip_p(c - b + 0.05, resamples=999), runs=300)
    assert rate >= 0.7


def test_a_truly_worse_candidate_rarely_passes():
    rate = _rejection_rate(lambda rng: paired_binary(rng, 200, 0.02, 0.12),
                           lambda c, b: tango_score_p(c, b, 0.05), runs=300)
    assert rate <= 0.01


def test_truly_better_candidate_passes_superiority():
    rng = np.random.default_rng(7)
    candidate, baseline = paired_binary(rng, 200, 0.12, 0.02)
    result = superiority_test(candidate, baseline, label_candidate="sentiment@3",
                              label_baseline="sentiment@2")
    assert result.passed and result.gate == SUPERIOR and result.test == "exact McNemar"
    assert result.verdict.startswith("sentiment@3 is better than sentiment@2 (diff +")
    rate = _rejection_rate(lambda rng: paired_binary(rng, 200, 0.12, 0.02), exact_superiority_p,
                           runs=300)
    assert rate >= 0.95


def test_equal_candidate_does_not_pass_superiority_but_passes_non_inferiority():
    rng = np.random.default_rng(3)
    candidate, baseline = paired_binary(rng, 400, 0.02, 0.02)
    assert not superiority_test(candidate, baseline).passed
    kept = noninferiority_test(candidate, baseline, 0.05, label_candidate="a@2",
                               label_baseline="a@1")
    assert kept.passed and kept.test == "Tango score test" and kept.gate == NON_INFERIOR
    assert kept.verdict.startswith("a@2 is not worse than a@1 by more than 5.0 points (diff ")
    assert kept.verdict.endswith("one-sided Tango score test, margin 5.0)")


def test_worse_candidate_verdict_says_it_could_not_be_shown():
    candidate = np.array([1.0] * 60 + [0.0] * 40)
    baseline = np.ones(100)
    result = noninferiority_test(candidate, baseline, 0.02, label_candidate="b@4",
                                 label_baseline="b@3")
    assert not result.passed and result.p_value > 0.99
    assert result.verdict_on("embedded").startswith(
        "b@4 could not be shown not worse than b@3 by more than 2.0 points on embedded (diff -40.0")


def test_rates_use_the_sign_flip_test_and_the_interval_brackets_the_diff():
    rng = np.random.default_rng(5)
    candidate, baseline = paired_rates(rng, 150, 0.0)
    result = noninferiority_test(candidate, baseline, 0.1)
    assert result.test == "paired sign-flip test" and result.passed
    assert result.diff.low <= result.diff.mean <= result.diff.high
    assert result.mean_candidate - result.mean_baseline == pytest.approx(result.diff.mean)


def test_tango_at_margin_zero_is_mcnemars_score_statistic_continuity_corrected():
    # 12 won, 4 lost: McNemar z = (4 - 12 + 0.5) / sqrt(16) = -1.875, one-sided p = Phi(-1.875)
    candidate = np.array([1.0] * 12 + [0.0] * 4 + [1.0] * 20)
    baseline = np.array([0.0] * 12 + [1.0] * 4 + [1.0] * 20)
    assert tango_score_p(candidate, baseline, 0.0) == pytest.approx(0.03040, abs=1e-4)


def test_no_cases_and_bad_arguments():
    empty = noninferiority_test([], [], 0.02)
    assert empty.n == 0 and not empty.passed and "no shared cases" in empty.verdict
    with pytest.raises(ValueError, match="margin"):
        noninferiority_test([1.0], [1.0], 1.5)
    with pytest.raises(ValueError, match="alpha"):
        noninferiority_test([1.0], [1.0], 0.02, alpha=0.7)
    with pytest.raises(ValueError, match="equal lengths"):
        noninferiority_test([1.0], [1.0, 0.0], 0.02)
