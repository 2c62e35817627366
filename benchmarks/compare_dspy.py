"""Paired comparison of promptmill's optimizer with DSPy's, from the two benchmarks' JSON.

Reads benchmarks/results/bench_optimize.json and bench_dspy.json (run both first) and, per task
and pooled over all tasks, tests promptmill's optimized prompt against DSPy's MIPROv2, its
BootstrapFewShot and "DSPy best": per task, whichever DSPy optimizer scored higher on test.
That choice looks at the test split, so it flatters DSPy; it is the bar the issue sets. Only
examples that both benchmarks scored are compared (McNemar exact on 0/1 scores).

Usage: python benchmarks/compare_dspy.py [--optimize FILE] [--dspy FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, emit, estimate

from promptmill.stats import paired_test

RESULTS = ROOT / "benchmarks" / "results"


def _versus(ours: dict, theirs: dict, label: str) -> dict:
    shared = sorted(set(ours) & set(theirs))
    a, b = [theirs[k] for k in shared], [ours[k] for k in shared]
    test = paired_test(a, b, label_a=label, label_b="promptmill")
    return {"n": len(shared), label: estimate(a), "promptmill": estimate(b),
            "diff_points": round(100 * (test.mean_b - test.mean_a), 1),
            "p_value": test.p_value, "winner": test.winner}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimize", default=str(RESULTS / "bench_optimize.json"))
    parser.add_argument("--dspy", default=str(RESULTS / "bench_dspy.json"))
    args = parser.parse_args()
    ours = {r["task"]: r for r in json.loads(Path(args.optimize).read_text())["tasks"]}
    theirs = {r["task"]: r for r in json.loads(Path(args.dspy).read_text())["tasks"]}
    rows, pooled = [], {"mipro": ({}, {}), "bootstrap": ({}, {}), "dspy_best": ({}, {})}
    for task in sorted(set(ours) & set(theirs)):
        mine = {k: float(v) for k, v in ours[task]["optimized_per_example"].items()}
        dspy = {name: {k: float(v) for k, v in theirs[task][name]["per_example"].items()}
                for name in ("mipro", "bootstrap") if theirs[task].get(name)
                and theirs[task][name].get("per_example")}
        best = max(dspy, key=lambda name: theirs[task][name]["test"])
        dspy["dspy_best"] = dspy[best]
        row = {"task": task, "dspy_best_is": best,
               "search_calls": {"promptmill": ours[task]["search_calls"],
                                **{n: theirs[task][n]["search_calls"] for n in dspy
                                   if n != "dspy_best"}}}
        for name, scores in dspy.items():
            row[name] = _versus(mine, scores, name)
            for key in set(mine) & set(scores):
                pooled[name][0][f"{task}/{key}"] = mine[key]
                pooled[name][1][f"{task}/{key}"] = scores[key]
        rows.append(row)
    summary = {name: _versus(m, t, name) for name, (m, t) in pooled.items() if m}
    emit("compare_dspy", {"benchmark": "compare_dspy", "tasks": rows, "pooled": summary,
                          "mean_over_tasks": {
                              "promptmill": round(sum(r["dspy_best"]["promptmill"]["mean"]
                                                      for r in rows) / len(rows), 4),
                              **{name: round(sum(r[name][name]["mean"] for r in rows)
                                             / len(rows), 4)
                                 for name in ("mipro", "bootstrap", "dspy_best")}}})


if __name__ == "__main__":
    main()
