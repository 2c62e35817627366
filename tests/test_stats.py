import numpy as np
import pytest

from promptmill.stats import mcnemar_exact, mean_ci, paired_test


def test_mean_ci_brackets_the_mean_and_narrows_with_n():
    rng = np.random.default_rng(0)
    small = mean_ci(rng.integers(0, 2, 30))
    large = mean_ci(rng.integers(0, 2, 3000))
    assert small.low <= small.mean <= small.high
    assert (large.high - large.low) < (small.high - small.low)


def test_mean_ci_degenerate_inputs():
    # pass/fail scores get the Wilson interval: three passes do not prove a 100% pass rate
    assert mean_ci([1, 1, 1]).low == pytest.approx(0.4385, abs=1e-4)
    assert mean_ci([1, 1, 1]).high == 1.0
    assert mean_ci([0.5, 0.5, 0.5]).low == 0.5  # graded scores: the bootstrap
    assert mean_ci([]).n == 0


def test_mcnemar_matches_binomial_reference():
    a = np.array([1] * 10 + [0] * 10)
    b = np.array([1] * 10 + [1] * 8 + [0] * 2)  # 8 gained, 0 lost
    # exact two-sided binomial p for 8 of 8 discordant pairs: 2 * 0.5**8
    assert abs(mcnemar_exact(a, b) - 2 * 0.5 ** 8) < 1e-12


def test_paired_test_detects_real_gain_and_ignores_noise():
    rng = np.random.default_rng(1)
    base = rng.integers(0, 2, 200).astype(float)
    better = np.where(rng.random(200) < 0.3, 1.0, base)
    gain = paired_test(base, better, label_a="seed", label_b="new")
    assert gain.significant and gain.winner == "new" and gain.test == "McNemar exact"
    assert "new is better than seed" in gain.verdict
    flips = base.copy()
    flips[:2] = 1 - flips[:2]  # two flips either way: noise
    assert not paired_test(base, flips).significant


def test_continuous_scores_use_permutation_test():
    rng = np.random.default_rng(2)
    a = rng.random(100)
    result = paired_test(a, a + 0.05)
    assert result.test == "paired permutation" and result.significant
    assert abs(result.diff.mean - 0.05) < 1e-9
    same = paired_test(a, a)
    assert same.p_value == 1.0 and "no significant difference" in same.verdict
