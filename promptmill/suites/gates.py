"""Gates for CI: a pass-rate floor per cell, and a paired test against a baseline prompt.

Each gate gives one :class:`GateVerdict` per prompt x model, in plain words with
``NAME@VERSION`` on both sides; any verdict that did not pass makes ``promptmill test`` exit 1.
"""

from __future__ import annotations

import math

from ..errors import ConfigError
from ..stats import NON_INFERIOR, SUPERIOR, noninferiority_test
from .results import Cell, GateVerdict, SuiteResult

GATES = (NON_INFERIOR, SUPERIOR)

__all__ = ["GATES", "baseline_gates", "threshold_gates"]


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def _check_threshold(threshold: float) -> None:
    if not (isinstance(threshold, int | float) and 0.0 <= threshold <= 1.0):
        raise ConfigError(f"the threshold {threshold!r} is not a pass rate between 0 and 1",
                          where="--threshold", fix="give a share of cases, e.g. --threshold 0.9")


def _cells_in_order(result: SuiteResult) -> list[Cell]:
    """The cells in the suite's order (prompts, then models), as every report shows them."""
    keys = [(p, m) for p in result.prompts for m in result.models if (p, m) in result.cells]
    keys += [k for k in result.cells if k not in keys]
    return [result.cells[k] for k in keys]


def _threshold_verdict(cell: Cell, threshold: float) -> GateVerdict:
    rate = cell.pass_rate()
    details = {"threshold": threshold, "pass_rate": rate.mean, "ci_low": rate.low,
               "ci_high": rate.high, "n_cases": rate.n}
    if rate.n == 0 or math.isnan(rate.mean):
        return GateVerdict("threshold", cell.prompt, cell.model, False,
                           f"{cell.prompt} on {cell.model} has no case results to gate",
                           details)
    passed = rate.mean >= threshold
    side = "at or above" if passed else "below"
    verdict = (f"{cell.prompt} on {cell.model} passes {_percent(rate.mean)} of {rate.n} cases "
               f"[95% CI {_percent(rate.low)}, {_percent(rate.high)}], {side} the threshold "
               f"{_percent(threshold)}")
    return GateVerdict("threshold", cell.prompt, cell.model, passed, verdict, details)


def threshold_gates(result: SuiteResult, threshold: float) -> list[GateVerdict]:
    """One verdict per cell: it fails when the cell's pass rate is below ``threshold``."""
    _check_threshold(threshold)
    return [_threshold_verdict(cell, threshold) for cell in _cells_in_order(result)]


def _check_baseline_args(gate: str, margin: float, alpha: float) -> None:
    if gate not in GATES:
        raise ConfigError(f"unknown gate {gate!r}", where="--gate",
                          fix="use --gate non-inferior or --gate superior")
    if not 0.0 <= margin < 1.0:
        raise ConfigError(f"the margin {margin!r} is not a share in [0, 1)", where="--margin",
                          fix="give the largest drop in pass rate you accept, e.g. "
                              "--margin 0.02 for 2 points")
    if not 0.0 < alpha < 0.5:
        raise ConfigError(f"alpha {alpha!r} is not a significance level in (0, 0.5)",
                          where="--alpha", fix="use --alpha 0.05 (or 0.01 to be stricter)")


def _baseline_by_model(result: SuiteResult) -> dict[str, Cell]:
    if not result.baseline:
        raise ConfigError("the suite run has no baseline results to compare with",
                          where="--baseline",
                          fix="give --baseline NAME@TAG (a stored prompt) or a suite run id")
    return {model: cell for (_, model), cell in result.baseline.items()}


def _paired_rates(candidate: Cell, baseline: Cell,
                  order: list[str]) -> tuple[list[str], list[float], list[float]]:
    """The cases both cells ran, in the suite's order, with each side's per-case pass rate."""
    cand, base = candidate.case_pass_rates(), baseline.case_pass_rates()
    shared = [case for case in order if case in cand and case in base]
    return shared, [cand[c] for c in shared], [base[c] for c in shared]


def _no_baseline_verdict(cell: Cell, gate: str) -> GateVerdict:
    return GateVerdict(gate, cell.prompt, cell.model, False,
                       f"{cell.prompt} on {cell.model} has no baseline run on {cell.model} "
                       "to compare with", {})


def _baseline_verdict(cell: Cell, baseline: Cell, gate: str, margin: float, alpha: float,
                      order: list[str], seed: int) -> GateVerdict:
    shared, cand, base = _paired_rates(cell, baseline, order)
    comparison = noninferiority_test(cand, base, margin if gate == NON_INFERIOR else 0.0,
                                     alpha, seed, label_candidate=cell.prompt,
                                     label_baseline=baseline.prompt, gate=gate)
    details = {**comparison.to_dict(), "baseline": baseline.prompt, "cases": len(shared),
               "unpaired_cases": len(set(cell.by_case()) ^ set(baseline.by_case()))}
    return GateVerdict(gate, cell.prompt, cell.model, comparison.passed,
                       comparison.verdict_on(cell.model), details)


def baseline_gates(result: SuiteResult, gate: str = NON_INFERIOR, margin: float = 0.0,
                   alpha: float = 0.05, seed: int = 0) -> list[GateVerdict]:
    """One verdict per candidate cell: a one-sided paired test against the baseline.

    Pairs over cases (``Cell.case_pass_rates``) with the baseline cell of the same model. A
    cell of the baseline prompt itself is not gated against itself.
    """
    _check_baseline_args(gate, margin, alpha)
    baseline = _baseline_by_model(result)
    baseline_prompts = {cell.prompt for cell in baseline.values()}
    order = result.case_ids()
    verdicts = []
    for cell in _cells_in_order(result):
        if cell.prompt in baseline_prompts:
            continue
        if cell.model not in baseline:
            verdicts.append(_no_baseline_verdict(cell, gate))
            continue
        verdicts.append(_baseline_verdict(cell, baseline[cell.model], gate, margin, alpha,
                                          order, seed))
    return verdicts
