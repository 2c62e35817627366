"""What a suite run found: one outcome per case x prompt x model x sample, and the cells.

Plain dataclasses, built by the runner from the store's runs; the report, the gates, every
output format and the workbench read only these. Labels are ``NAME@VERSION`` for prompts and
the model's spec (or its label) for models, never a bare name or a hash.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from math import comb
from typing import Any

from ..stats import Estimate, mean_ci


@dataclass(frozen=True)
class Check:
    """One assertion's outcome on one answer."""

    type: str  # as written, e.g. "not-icontains"
    passed: bool
    score: float  # in [0, 1]; for latency and cost, 1.0 or 0.0
    reason: str  # why it passed or failed, in words
    weight: float = 1.0
    metric: str | None = None  # the named group, if the assertion gave one


@dataclass(frozen=True)
class Outcome:
    """One case under one prompt and model, for one sample."""

    case_id: str
    prompt: str  # NAME@VERSION
    model: str
    sample: int
    output: str | None
    passed: bool
    score: float  # the weighted mean of the checks' scores
    checks: tuple[Check, ...]
    error: str | None = None  # the call failed: the case fails, with this reason
    seconds: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    cached: bool = False
    run_id: int | None = None

    @property
    def failed_checks(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)


@dataclass
class Cell:
    """One prompt x model: its outcomes over every case and sample, and the runs holding them."""

    prompt: str
    model: str
    outcomes: list[Outcome] = field(default_factory=list)
    run_ids: list[int] = field(default_factory=list)

    def by_case(self) -> dict[str, list[Outcome]]:
        grouped: dict[str, list[Outcome]] = defaultdict(list)
        for outcome in self.outcomes:
            grouped[outcome.case_id].append(outcome)
        return dict(grouped)

    def case_pass_rates(self) -> dict[str, float]:
        """Per case, the share of its samples that passed (1.0 or 0.0 without repeats)."""
        return {case: sum(o.passed for o in outs) / len(outs)
                for case, outs in self.by_case().items()}

    def pass_rate(self) -> Estimate:
        """Mean over cases of the per-case pass rate, with a 95% bootstrap CI over cases."""
        return mean_ci(list(self.case_pass_rates().values()))

    def pass_at_k(self, k: int) -> float:
        """The unbiased pass@k over cases (Chen et al. 2021): P(at least one of k passes)."""
        values = []
        for outs in self.by_case().values():
            n, c = len(outs), sum(o.passed for o in outs)
            if k > n:
                continue
            values.append(1.0 if n - c < k else 1.0 - comb(n - c, k) / comb(n, k))
        return sum(values) / len(values) if values else float("nan")

    def flaky_cases(self) -> list[str]:
        """Cases that both passed and failed across samples."""
        return sorted(case for case, rate in self.case_pass_rates().items() if 0 < rate < 1)

    def metric_groups(self) -> dict[str, Estimate]:
        """Per named ``metric`` group, the mean score of its checks with a 95% CI."""
        groups: dict[str, list[float]] = defaultdict(list)
        for outcome in self.outcomes:
            for check in outcome.checks:
                if check.metric:
                    groups[check.metric].append(check.score)
        return {name: mean_ci(scores) for name, scores in sorted(groups.items())}


@dataclass
class GateVerdict:
    """One gate's decision, in plain words; ``passed`` False makes the command exit 1."""

    gate: str  # "threshold", "non-inferior", "superior"
    prompt: str
    model: str
    passed: bool
    verdict: str  # e.g. "sentiment@3 is not worse than sentiment@2 by more than 2 points ..."
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class SuiteResult:
    suite: str
    prompts: list[str]  # NAME@VERSION, in the suite's order
    models: list[str]
    repeat: int
    cells: dict[tuple[str, str], Cell]
    gates: list[GateVerdict] = field(default_factory=list)
    source: str = ""
    # the baseline prompt's cells, keyed like ``cells``, when the run has --baseline (the gates
    # pair each candidate cell with the baseline cell of the same model)
    baseline: dict[tuple[str, str], Cell] | None = None
    suite_run_id: int | None = None  # the store's suite_runs row recording this invocation

    def cell(self, prompt: str, model: str) -> Cell:
        return self.cells[(prompt, model)]

    @property
    def passed(self) -> bool:
        """Every gate passed (a suite run with no gate passes)."""
        return all(g.passed for g in self.gates)

    def case_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for cell in self.cells.values():
            for outcome in cell.outcomes:
                seen.setdefault(outcome.case_id, None)
        return list(seen)

    def to_dict(self) -> dict[str, Any]:
        """Everything, as JSON-ready data (the JSON output and the workbench read this)."""
        cells = [_cell_dict(cell, self.repeat) for cell in self.cells.values()]
        baseline = ([_cell_dict(cell, self.repeat) for cell in self.baseline.values()]
                    if self.baseline is not None else None)
        return {"suite": self.suite, "source": self.source, "prompts": self.prompts,
                "models": self.models, "repeat": self.repeat, "passed": self.passed,
                "cells": cells, "gates": [asdict(g) for g in self.gates],
                "baseline": baseline, "suite_run_id": self.suite_run_id}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuiteResult:
        """The result back from :meth:`to_dict` (a recorded suite run, a JSON output)."""
        baseline = data.get("baseline")
        return cls(suite=data["suite"], prompts=list(data["prompts"]),
                   models=list(data["models"]), repeat=int(data["repeat"]),
                   cells=_cells_from(data["cells"]),
                   gates=[GateVerdict(**g) for g in data.get("gates") or []],
                   source=data.get("source") or "",
                   baseline=_cells_from(baseline) if baseline is not None else None,
                   suite_run_id=data.get("suite_run_id"))


def _cell_dict(cell: Cell, repeat: int) -> dict[str, Any]:
    rate = cell.pass_rate()
    return {"prompt": cell.prompt, "model": cell.model, "run_ids": cell.run_ids,
            "pass_rate": rate.mean, "ci_low": rate.low, "ci_high": rate.high,
            "n_cases": rate.n, "flaky_cases": cell.flaky_cases(),
            "pass_at_k": {k: cell.pass_at_k(k) for k in range(1, repeat + 1)},
            "metric_groups": {n: asdict(e) for n, e in cell.metric_groups().items()},
            "outcomes": [_outcome_dict(o) for o in cell.outcomes]}


def _outcome_dict(outcome: Outcome) -> dict[str, Any]:
    """``asdict`` without its deep copies: an outcome holds only plain values (10x faster on
    the outcomes of a 1,000-case suite)."""
    return {**vars(outcome), "checks": [dict(vars(c)) for c in outcome.checks]}


def _cells_from(rows: list[dict[str, Any]]) -> dict[tuple[str, str], Cell]:
    """Cells rebuilt from their outcomes; every figure of a cell is computed from those."""
    cells = {}
    for row in rows:
        outcomes = [_outcome_from(o) for o in row["outcomes"]]
        cells[(row["prompt"], row["model"])] = Cell(row["prompt"], row["model"], outcomes,
                                                    list(row.get("run_ids") or []))
    return cells


def _outcome_from(data: dict[str, Any]) -> Outcome:
    checks = tuple(Check(**c) for c in data.get("checks") or ())
    return Outcome(**{**data, "checks": checks})
