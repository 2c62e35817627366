"""Test suites: promptmill's own cost per assertion, the cached re-run, and the gate's errors.

Figures:
- overhead: a suite of 1,000 cases x 2 prompts x 2 fake models, 8 deterministic assertions per
  case. ``per_assertion_ms`` is the time the checks take per assertion (floor: under 1 ms);
  ``suite_overhead_per_assertion_ms`` is the whole cached re-run (no model call: rendering,
  cache lookups, checks, store writes, the suite record) divided by the assertions it
  evaluated.
- cache: the first run (a fake model answering in ``--fake-ms`` milliseconds, standing for a
  fast backend) / the same suite run again, every call from the cache (floor 50).
- gate: the non-inferiority gate on outcomes of the real embedded model. A suite of real cases
  is run once; each of ``--pairs`` simulations resamples those cases as the baseline and
  derives a candidate whose true pass rate differs by a known amount (passes turned to fails,
  and for an equal candidate as many fails turned to passes, so the prompts disagree on some
  cases without changing the rate). Reported per true difference: how often the gate passes.
  At the boundary (truly worse by the margin) that rate must be at most alpha.

Usage: python benchmarks/bench_suites.py [--cases 1000] [--task antonyms] [--pairs 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from common import emit, environment, load_ii, require_data, seed_instruction  # noqa: E402

from promptmill.store.db import Store  # noqa: E402
from promptmill.suites.model import Suite  # noqa: E402
from promptmill.suites.runner import run_suite  # noqa: E402

DETERMINISTIC = [
    {"type": "equals", "value": "yes"},
    {"type": "icontains", "value": "YE"},
    {"type": "contains-any", "value": ["yes", "no"]},
    {"type": "not-contains", "value": "maybe"},
    {"type": "starts-with", "value": "y"},
    {"type": "regex", "value": "^y.s$"},
    {"type": "levenshtein", "value": "yes", "threshold": 1},
    {"type": "not-is-json"},
]


def overhead_suite(cases: int, fake_ms: float) -> Suite:
    models = [{"spec": "fake:yes", "params": {"delay": fake_ms / 1000}, "label": "fake-a"},
              {"spec": "fake:yes", "params": {"delay": fake_ms / 1000, "name": "b"},
               "label": "fake-b"}]
    return Suite.model_validate({
        "name": "overhead",
        "prompts": [{"template": "Answer yes or no: {{ q }}", "name": "plain", "label": "plain"},
                    {"instruction": "Be brief.", "template": "Q: {{ q }}", "name": "brief",
                     "label": "brief"}],
        "models": models,
        "tests": [{"id": f"c{i}", "vars": {"q": f"question {i}"}} for i in range(cases)],
        "defaultTest": {"assert": DETERMINISTIC}})


def timed_run(suite: Suite, store: Store) -> tuple[float, Any]:
    start = time.perf_counter()
    result = run_suite(suite, store=store, progress=False)
    return time.perf_counter() - start, result


def checks_seconds(suite: Suite, result: Any) -> tuple[float, int]:
    """The checks alone on one cell's stored outputs, each (case, output) new to a fresh
    CaseChecks, so none is served from its memory: (seconds, assertions run)."""
    from promptmill.suites.runner import build_checks

    checks = build_checks(suite, judge=None, store=None)
    outcomes = next(iter(result.cells.values())).outcomes
    start = time.perf_counter()
    count = 0
    for outcome in outcomes:
        count += len(checks.checks(outcome.case_id, outcome.output or "", None))
    return time.perf_counter() - start, count


def overhead_figures(cases: int, fake_ms: float, tmp: Path) -> dict[str, Any]:
    suite = overhead_suite(cases, fake_ms)
    store = Store(f"sqlite:///{tmp / 'overhead.db'}")
    first, result = timed_run(suite, store)
    again, repeat = timed_run(suite, store)
    assert all(o.cached for c in repeat.cells.values() for o in c.outcomes), "not all cached"
    seconds, assertions = checks_seconds(suite, result)
    evaluated = sum(len(o.checks) for c in repeat.cells.values() for o in c.outcomes)
    model_seconds = sum(o.seconds for c in result.cells.values() for o in c.outcomes)
    return {"cases": cases, "cells": len(result.cells), "assertions_per_case": len(DETERMINISTIC),
            "assertions_timed_alone": assertions, "assertions_in_suite": evaluated,
            "fake_model_ms_per_call": fake_ms,
            "per_assertion_ms": round(1000 * seconds / assertions, 4),
            "suite_overhead_per_assertion_ms": round(1000 * again / evaluated, 4),
            "first_run_seconds": round(first, 3),
            "first_run_model_seconds": round(model_seconds, 3),
            "cached_rerun_seconds": round(again, 3),
            "cache_speedup": round(first / again, 1), "floors": {"per_assertion_ms": 1.0,
                                                                  "cache_speedup": 50}}


def real_outcomes(task: str, n: int, tmp: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-case pass (0/1) of the embedded model on ``n`` real cases of an II task."""
    examples = (load_ii(task, "execute") + load_ii(task, "induce"))[:n]
    suite = Suite.model_validate({
        "name": f"gate-{task}", "models": ["embedded"],
        "prompts": [{"instruction": seed_instruction(task), "template": "{{ input }}",
                     "name": task, "label": task}],
        "generation": {"max_tokens": 8, "temperature": 0.0, "seed": 0},
        "tests": [{"id": ex.id, "vars": {"input": ex.inputs["input"]},
                   "assert": [{"type": "icontains", "value": ex.target}]} for ex in examples]})
    seconds, result = timed_run(suite, Store(f"sqlite:///{tmp / 'gate.db'}"))
    (cell,) = result.cells.values()
    passes = np.array([float(v) for v in cell.case_pass_rates().values()])
    return passes, {"task": task, "cases": len(passes), "pass_rate": round(float(passes.mean()), 4),
                    "seconds": round(seconds, 1)}


def simulate(population: np.ndarray, diff: float, discord: float,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A resampled baseline and a candidate whose expected pass rate is baseline + diff."""
    base = rng.choice(population, size=population.size, replace=True)
    p = population.mean()
    cand = base.copy()
    passing, failing = base == 1, base == 0
    # for diff < 0 turn passes into fails at rate lose; for discordance without changing the
    # rate, also turn fails into passes at rate win, with win * (1 - p) = extra lose * p
    extra = discord / 2
    lose = min(1.0, (-min(diff, 0.0)) / p + extra / p) if p > 0 else 0.0
    win = min(1.0, (max(diff, 0.0) + extra) / (1 - p)) if p < 1 else 0.0
    cand[passing & (rng.random(base.size) < lose)] = 0.0
    cand[failing & (rng.random(base.size) < win)] = 1.0
    return cand, base


def gate_figures(population: np.ndarray, pairs: int, margin: float, alpha: float,
                 discord: float) -> dict[str, Any]:
    from promptmill.stats import noninferiority_test

    rng = np.random.default_rng(0)
    rows = {}
    for label, diff in (("truly_worse_at_margin", -margin), ("truly_worse_2x_margin", -2 * margin),
                        ("truly_equal", 0.0), ("truly_better_by_margin", margin)):
        passed, observed = 0, []
        for i in range(pairs):
            cand, base = simulate(population, diff, discord, rng)
            observed.append(float(cand.mean() - base.mean()))
            test = noninferiority_test(list(cand), list(base), margin=margin, alpha=alpha,
                                       seed=i)
            passed += bool(test.passed)
        rows[label] = {"true_diff": diff, "pass_rate": round(passed / pairs, 4),
                       "mean_observed_diff": round(float(np.mean(observed)), 4)}
    rows["worse_pass_rate_at_most_alpha"] = rows["truly_worse_at_margin"]["pass_rate"] <= alpha
    return {"pairs": pairs, "margin": margin, "alpha": alpha, "discordance": discord, **rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--fake-ms", type=float, default=20.0)
    parser.add_argument("--task", default="antonyms")
    parser.add_argument("--gate-cases", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--margins", default="0.02,0.05")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--discordance", type=float, default=0.1)
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--skip-overhead", action="store_true")
    args = parser.parse_args()
    require_data()
    import os

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        os.environ["PROMPTMILL_HOME"] = str(tmp / "home")
        payload: dict[str, Any] = {"benchmark": "bench_suites", "environment": environment(),
                                   "load_average": list(os.getloadavg())}
        if not args.skip_overhead:
            payload["overhead"] = overhead_figures(args.cases, args.fake_ms, tmp)
        if not args.skip_real:
            population, real = real_outcomes(args.task, args.gate_cases, tmp)
            payload["real_model_run"] = real
            payload["gate"] = [gate_figures(population, args.pairs, float(m), args.alpha,
                                            args.discordance)
                               for m in args.margins.split(",")]
        payload["load_average_after"] = list(os.getloadavg())
    emit("bench_suites", payload)


if __name__ == "__main__":
    main()
