"""The CI gates: a pass-rate threshold per cell and a paired test against a baseline prompt."""

from __future__ import annotations

import numpy as np
import pytest

from promptmill.errors import ConfigError
from promptmill.suites.gates import baseline_gates, threshold_gates
from promptmill.suites.results import Cell, Check, Outcome, SuiteResult


def make_cell(prompt: str, model: str, passes: list[bool] | list[list[bool]]) -> Cell:
    """A cell whose case i passed as ``passes[i]`` (a list of samples, or one bool)."""
    outcomes = []
    for index, samples in enumerate(passes):
        runs = samples if isinstance(samples, list) else [samples]
        for sample, ok in enumerate(runs):
            check = Check("contains", ok, float(ok), "found" if ok else "missing 'yes'")
            outcomes.append(Outcome(f"case-{index + 1}", prompt, model, sample, "out", ok,
                                    float(ok), (check,)))
    return Cell(prompt, model, outcomes)


def make_result(cells: list[Cell], baseline: list[Cell] | None = None,
                repeat: int = 1) -> SuiteResult:
    prompts = list(dict.fromkeys(c.prompt for c in cells))
    models = list(dict.fromkeys(c.model for c in cells))
    return SuiteResult("demo", prompts, models, repeat, {(c.prompt, c.model): c for c in cells},
                       baseline=None if baseline is None
                       else {(c.prompt, c.model): c for c in baseline})


def outcomes_with(rng: np.random.Generator, base: np.ndarray, flip_to_fail: float,
                  flip_to_pass: float) -> list[bool]:
    """The baseline's passes with a share of cases flipped each way."""
    draw = rng.random(base.size)
    cand = np.where(base & (draw < flip_to_fail), False, base)
    cand = np.where(~base & (draw < flip_to_pass), True, cand)
    return [bool(v) for v in cand]


# --- threshold ------------------------------------------------------------------------------

def test_threshold_fails_only_the_cell_below_it():
    good = make_cell("sentiment@3", "embedded", [True] * 9 + [False])
    poor = make_cell("sentiment@3", "fake:yes", [True] * 7 + [False] * 3)
    verdicts = threshold_gates(make_result([good, poor]), 0.9)
    assert [(v.model, v.passed) for v in verdicts] == [("embedded", True), ("fake:yes", False)]
    assert verdicts[0].verdict.startswith("sentiment@3 on embedded passes 90.0% of 10 cases")
    assert verdicts[0].verdict.endswith("at or above the threshold 90.0%")
    assert "below the threshold 90.0%" in verdicts[1].verdict
    assert verdicts[1].details["pass_rate"] == pytest.approx(0.7)


def test_threshold_uses_per_case_rates_over_samples():
    cell = make_cell("p@1", "m", [[True, True], [True, False]])  # 1.0 and 0.5: mean 0.75
    (verdict,) = threshold_gates(make_result([cell], repeat=2), 0.75)
    assert verdict.passed and verdict.details["n_cases"] == 2


def test_a_cell_without_cases_fails_the_threshold():
    (verdict,) = threshold_gates(make_result([Cell("p@1", "m")]), 0.5)
    assert not verdict.passed and "no case results" in verdict.verdict


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_threshold_outside_zero_one_is_a_config_error(bad):
    with pytest.raises(ConfigError) as info:
        threshold_gates(make_result([make_cell("p@1", "m", [True])]), bad)
    assert info.value.where == "--threshold" and "--threshold 0.9" in info.value.one_line()


# --- baseline: truly worse, truly equal, truly better ---------------------------------------

N_CASES = 300


@pytest.fixture
def baseline_passes() -> np.ndarray:
    return np.random.default_rng(11).random(N_CASES) < 0.8


def _gate(baseline_passes, candidate: list[bool], gate: str, margin: float = 0.05):
    base = make_cell("sentiment@2", "embedded", [bool(v) for v in baseline_passes])
    cand = make_cell("sentiment@3", "embedded", candidate)
    (verdict,) = baseline_gates(make_result([cand], [base]), gate, margin, 0.05)
    return verdict


def test_truly_worse_candidate_fails_non_inferiority(baseline_passes):
    worse = outcomes_with(np.random.default_rng(1), baseline_passes, 0.15, 0.0)
    verdict = _gate(baseline_passes, worse, "non-inferior")
    assert not verdict.passed and verdict.gate == "non-inferior"
    assert verdict.verdict.startswith("sentiment@3 could not be shown not worse than "
                                      "sentiment@2 by more than 5.0 points on embedded (diff -")
    assert verdict.details["baseline"] == "sentiment@2" and verdict.details["cases"] == N_CASES


def test_truly_equal_candidate_passes_non_inferiority_not_superiority(baseline_passes):
    equal = outcomes_with(np.random.default_rng(2), baseline_passes, 0.02, 0.08)
    kept = _gate(baseline_passes, equal, "non-inferior")
    assert kept.passed, kept.verdict
    assert kept.verdict.startswith("sentiment@3 is not worse than sentiment@2 by more than "
                                   "5.0 points on embedded (diff ")
    assert "one-sided Tango score test, margin 5.0)" in kept.verdict
    assert not _gate(baseline_passes, equal, "superior").passed


def test_truly_better_candidate_passes_superiority(baseline_passes):
    better = outcomes_with(np.random.default_rng(3), baseline_passes, 0.0, 0.6)
    verdict = _gate(baseline_passes, better, "superior")
    assert verdict.passed
    assert verdict.verdict.startswith("sentiment@3 is better than sentiment@2 on embedded (diff +")
    assert "one-sided exact McNemar" in verdict.verdict


def test_baseline_pairs_by_case_and_model_and_skips_the_baseline_itself():
    base_a = make_cell("p@1", "a", [True, False, True])
    base_b = make_cell("p@1", "b", [True, True, True])
    cand_a = make_cell("p@2", "a", [True, True, True])
    itself = make_cell("p@1", "a", [True, False, True])
    orphan = make_cell("p@2", "c", [True])
    result = make_result([itself, cand_a, orphan], [base_a, base_b])
    verdicts = baseline_gates(result, "non-inferior", 0.1)
    assert [(v.prompt, v.model) for v in verdicts] == [("p@2", "a"), ("p@2", "c")]
    assert verdicts[0].details["cases"] == 3
    assert not verdicts[1].passed and "no baseline run on c" in verdicts[1].verdict


def test_unpaired_cases_are_left_out_and_counted():
    base = make_cell("p@1", "m", [True, True])
    cand = make_cell("p@2", "m", [True, True, False])  # case-3 has no baseline
    (verdict,) = baseline_gates(make_result([cand], [base]), "non-inferior", 0.1)
    assert verdict.details["cases"] == 2 and verdict.details["unpaired_cases"] == 1


@pytest.mark.parametrize(("kwargs", "where"), [
    ({"gate": "better"}, "--gate"), ({"margin": 1.0}, "--margin"),
    ({"margin": -0.1}, "--margin"), ({"alpha": 0.0}, "--alpha")])
def test_bad_gate_arguments_are_config_errors(kwargs, where):
    cell = make_cell("p@1", "m", [True])
    with pytest.raises(ConfigError) as info:
        baseline_gates(make_result([cell], [cell]), **kwargs)
    assert info.value.where == where


def test_no_baseline_is_a_config_error_naming_the_option():
    with pytest.raises(ConfigError) as info:
        baseline_gates(make_result([make_cell("p@2", "m", [True])]))
    assert info.value.where == "--baseline"
