"""Compare two or more runs: scores with CIs, paired tests against the first run, the examples
whose answers differ side by side, and what changed between the runs' prompts and settings.

With more than two runs the p-values are Holm-adjusted, so adding runs does not manufacture a
"significant" winner.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import PromptmillError
from ..stats import mean_ci, paired_test
from ..store.db import Store


@dataclass
class MultiComparison:
    runs: list[dict[str, Any]]
    n: int
    tests: list[dict[str, Any]]
    changes: list[dict[str, Any]]
    differing: list[dict[str, Any]] = field(default_factory=list)
    n_differing: int = 0

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _prompt_body(store: Store, run: dict[str, Any]) -> dict[str, Any]:
    found = store.get_prompt_by_id(run["prompt_id"]) if run.get("prompt_id") else None
    return json.loads(found["body"]) if found else {}


def _ref(store: Store, run: dict[str, Any]) -> str:
    found = store.get_prompt_by_id(run["prompt_id"]) if run.get("prompt_id") else None
    return f"{found['name']}@{found['version']}" if found else run["prompt_hash"][:10]


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, before, after) for every field of two prompt bodies that differs, by name."""
    return [(name, before.get(name), after.get(name)) for name in sorted({*before, *after})
            if before.get(name) != after.get(name)]


def prompt_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Human-readable differences between two prompt bodies."""
    out = []
    for name, a, b in changed_fields(before, after):
        if name == "demos":
            continue  # summarised below, by count
        if isinstance(a, str) and isinstance(b, str) and ("\n" in a + b or len(a + b) > 80):
            diff = difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm="", n=1)
            out.append(f"{name} changed:\n" + "\n".join(list(diff)[2:]))
        else:
            out.append(f"{name}: {json.dumps(a)} → {json.dumps(b)}")
    demos_a, demos_b = before.get("demos") or [], after.get("demos") or []
    if demos_a != demos_b:
        out.append(f"demos: {len(demos_a)} → {len(demos_b)}"
                   + (" (same count, different demos)" if len(demos_a) == len(demos_b) else ""))
    return out


def _settings_changes(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    out = [f"{k}: {a[k]} → {b[k]}" for k in ("model", "metric", "task", "split") if a[k] != b[k]]
    pa = json.loads(a["config"] or "{}").get("params", {})
    pb = json.loads(b["config"] or "{}").get("params", {})
    out += [f"params.{k}: {pa.get(k)} → {pb.get(k)}" for k in sorted(set(pa) | set(pb))
            if pa.get(k) != pb.get(k)]
    return out


def _outputs(store: Store, run_id: int) -> dict[str, dict[str, Any]]:
    return {r["example_id"]: r for r in store.iter_results(run_id)}


def compare_runs(run_refs: Sequence[int | str], *, store: Store | None = None,
                 alpha: float = 0.05,
                 show: int = 20) -> MultiComparison:
    store = store or Store()
    if len(run_refs) < 2:
        raise PromptmillError("compare needs at least two runs", where="RUNS",
                              fix="give two or more run ids, e.g. 'promptmill compare 3 5'")
    runs = [store.get_run(r) for r in run_refs]
    results = [_outputs(store, r["id"]) for r in runs]
    shared = sorted(set.intersection(*(set(r) for r in results)),
                    key=lambda k: results[0][k]["idx"])
    if not shared:
        raise PromptmillError(f"runs {', '.join(str(r['id']) for r in runs)} share no examples",
                              fix="compare runs on the same task and split")
    scores = [[float(res[k]["score"] or 0.0) for k in shared] for res in results]
    summary = []
    for run, s in zip(runs, scores, strict=True):
        est = mean_ci(s)
        summary.append({"id": run["id"], "prompt": _ref(store, run), "model": run["model"],
                        "mean": est.mean, "low": est.low, "high": est.high})
    tests = [paired_test(scores[0], s, alpha=alpha, label_a=f"run {runs[0]['id']}",
                         label_b=f"run {run['id']}") for run, s in zip(runs[1:], scores[1:],
                                                                       strict=True)]
    adjusted = holm([t.p_value for t in tests]) if len(tests) > 1 else [t.p_value for t in tests]
    test_rows = [{"run": run["id"], "diff": t.diff.mean, "low": t.diff.low, "high": t.diff.high,
                  "p_value": t.p_value, "p_adjusted": p, "test": t.test,
                  "significant": p < alpha,
                  "verdict": t.verdict if p == t.p_value else _verdict(t, p, alpha)}
                 for run, t, p in zip(runs[1:], tests, adjusted, strict=True)]
    base_prompt = _prompt_body(store, runs[0])
    changes = [{"run": run["id"], "prompt": prompt_changes(base_prompt, _prompt_body(store, run)),
                "settings": _settings_changes(runs[0], run)} for run in runs[1:]]
    differing = [k for k in shared if len({results[i][k]["output"] for i in range(len(runs))}) > 1]
    rows = [{"example_id": k, "inputs": _input_text(results[0][k]["inputs"]),
             "target": results[0][k]["target"],
             "outputs": [res[k]["output"] for res in results],
             "scores": [res[k]["score"] for res in results]} for k in differing[:show]]
    return MultiComparison(runs=summary, n=len(shared), tests=test_rows, changes=changes,
                           differing=rows, n_differing=len(differing))


def _input_text(raw: str | None) -> str:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return raw or ""
    return "\n".join(str(v) for v in value.values()) if isinstance(value, dict) else str(value)


def _verdict(test, p_adjusted: float, alpha: float) -> str:
    if p_adjusted >= alpha:
        return f"no significant difference after Holm adjustment (p={p_adjusted:.3g})"
    better = test.label_b if test.diff.mean > 0 else test.label_a
    return f"{better} is better (Holm-adjusted p={p_adjusted:.3g})"


def output_diff(a: str, b: str) -> str:
    """A word-level diff of two outputs: [-removed-] {+added+}."""
    wa, wb = (a or "").split(), (b or "").split()
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=wa, b=wb).get_opcodes():
        if op == "equal":
            out.append(" ".join(wa[i1:i2]))
            continue
        if i2 > i1:
            out.append("[-" + " ".join(wa[i1:i2]) + "-]")
        if j2 > j1:
            out.append("{+" + " ".join(wb[j1:j2]) + "+}")
    return " ".join(out)
