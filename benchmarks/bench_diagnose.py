"""Diagnose speed against the evaluation it explains, measured in the same run.

A 10,000-example run is built from instruction-induction inputs (tasks cycled, ids unique) and
evaluated through promptmill's Evaluator with a deterministic stand-in model whose answers mix
right answers, wrong answers, chatter around the answer, empty replies, refusals and cut-off
replies, so every diagnose stage has real work. The stand-in answers instantly, so this
evaluation is the fastest promptmill can run: the ratio is the strictest one available.

Figures:
- diagnose_vs_instant_model_eval: seconds of `diagnose` (taxonomy, confusion, TF-IDF clusters,
  slices, calibration, suggestions) plus the HTML report / seconds of the evaluation with the
  instant stand-in model. This bounds promptmill's own overhead; no real model is that fast.
- with `--real N` (default 100): N of the same inputs evaluated with the embedded model, that
  run diagnosed, and diagnose's time over the evaluation's (the floor, <= 0.10, is checked on
  it). With N below --n, the stand-in run's diagnose time is also set against a real run of
  --n examples extrapolated from the N timed ones, labelled as such.
  `--real 10000` measures the whole thing for real (about 25 minutes here).

Usage: python benchmarks/bench_diagnose.py [--n 10000] [--real 100]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, environment, load_ii, require_data, simple_ii_tasks

from promptmill.evaluation import Evaluator
from promptmill.metrics import get_metric
from promptmill.models import GenerationParams
from promptmill.models.fake import FakeModel
from promptmill.prompt import Prompt
from promptmill.store.db import Store
from promptmill.task import Example

PARAMS = GenerationParams(max_tokens=16, temperature=0.0, seed=0, logprobs=True)


def build_examples(n: int) -> list[Example]:
    pool = []
    for task in simple_ii_tasks():
        for part in ("induce", "execute"):
            pool += [(task, ex) for ex in load_ii(task, part)]
    out = []
    for i in range(n):
        task, ex = pool[i % len(pool)]
        out.append(Example(f"{i}", {"input": ex.inputs["input"], "task": task}, ex.target,
                           ex.answers))
    return out


def crafted_answers(examples: list[Example], seed: int = 0) -> dict[str, str]:
    """What the stand-in model says to each input: a realistic mix of failures."""
    rng = random.Random(seed)
    others = [ex.target for ex in examples]
    table = {}
    for ex in examples:
        roll = rng.random()
        if roll < 0.40:
            answer = ex.target
        elif roll < 0.60:
            answer = rng.choice(others)
        elif roll < 0.72:
            answer = f"The answer is {ex.target}, as the input suggests."
        elif roll < 0.78:
            answer = ""
        elif roll < 0.84:
            answer = "I'm sorry, I cannot help with that."
        else:
            answer = " ".join(["well"] * 30)  # cut off at max_tokens
        table[render_key(ex)] = answer
    return table


def render_key(ex: Example) -> str:
    return f"{ex.inputs['task']}|{ex.id}|{ex.inputs['input']}"


def stand_in(examples: list[Example]) -> FakeModel:
    table = crafted_answers(examples)
    return FakeModel(fn=lambda text: table.get(text.strip(), ""), name="bench-diagnose")


PROMPT = Prompt(instruction="Do the task.", template="{{ task }}|{{ id }}|{{ input }}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--real", type=int, default=100)
    args = parser.parse_args()
    require_data()
    examples = [Example(ex.id, {**ex.inputs, "id": ex.id}, ex.target, ex.answers)
                for ex in build_examples(args.n)]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/bench.db")
        evaluator = Evaluator(stand_in(examples), get_metric("exact"), store, params=PARAMS,
                              progress=False)
        start = time.perf_counter()
        result = evaluator.evaluate(examples, PROMPT, task="mixed", prompt_name="bench")
        eval_seconds = time.perf_counter() - start

        from promptmill.diagnosis import diagnose
        from promptmill.diagnosis.report import render_html

        start = time.perf_counter()
        d = diagnose(result.run_id, store=store)
        html = render_html(d)
        diag_seconds = time.perf_counter() - start
        stages = stage_times(store, result.run_id)
    payload = {
        "environment": environment(), "n": args.n, "failures": d.n_failures,
        "categories": {c["category"]: c["count"] for c in d.categories},
        "clusters": len(d.clusters), "slices": len(d.slices), "html_bytes": len(html),
        "eval_seconds": round(eval_seconds, 2), "diagnose_seconds": round(diag_seconds, 2),
        "diagnose_vs_instant_model_eval": round(diag_seconds / eval_seconds, 4),
        "diagnose_stage_seconds": stages,
        "floor": "diagnose <= 0.10 x the evaluation's time",
    }
    if args.real:
        real_eval, real_diag = real_eval_and_diagnose(examples[: args.real])
        per_example = real_eval / args.real
        payload.update({
            "real_model_examples": args.real,
            "real_eval_seconds": round(real_eval, 1),
            "real_diagnose_seconds": round(real_diag, 2),
            "diagnose_vs_real_eval": round(real_diag / real_eval, 5),
            "meets_floor_vs_real_eval": real_diag / real_eval <= 0.10})
        if args.real < args.n:  # the stand-in run's diagnose against a real run of its size
            payload.update({
                "real_eval_seconds_extrapolated_to_n": round(per_example * args.n, 1),
                "diagnose_vs_real_eval_extrapolated": round(
                    diag_seconds / (per_example * args.n), 5)})
    payload["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)  # shared-machine context
    emit("bench_diagnose", payload)


def stage_times(store: Store, run_id: int) -> dict[str, float]:
    """Each stage timed on its own, to show where diagnose spends its time."""
    from promptmill.diagnosis.calibration import calibrate
    from promptmill.diagnosis.clusters import cluster_failures
    from promptmill.diagnosis.data import load_run
    from promptmill.diagnosis.slices import slice_scores
    from promptmill.diagnosis.taxonomy import classify_failures, confusion

    out, start = {}, time.perf_counter()
    data = load_run(store, run_id)
    for name, step in (("load", lambda: None), ("taxonomy", lambda: classify_failures(data)),
                       ("confusion", lambda: confusion(data)),
                       ("clusters", lambda: cluster_failures(data.failures)),
                       ("slices", lambda: slice_scores(data)),
                       ("calibration", lambda: calibrate(data))):
        step()
        now = time.perf_counter()
        out[name] = round(now - start, 3)
        start = now
    return out


def real_eval_and_diagnose(examples: list[Example]) -> tuple[float, float]:
    """Seconds to evaluate ``examples`` with the embedded model, and to diagnose that run."""
    from promptmill.diagnosis import diagnose
    from promptmill.diagnosis.report import render_html
    from promptmill.models import load_model

    model = load_model("embedded")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/real.db")
        evaluator = Evaluator(model, get_metric("exact"), store,
                              params=GenerationParams(max_tokens=16), progress=False)
        start = time.perf_counter()
        run = evaluator.evaluate(examples, Prompt(instruction="Do the task.",
                                                  template="{{ input }}"), task="real").run_id
        eval_seconds = time.perf_counter() - start
        start = time.perf_counter()
        render_html(diagnose(run, store=store))
        diagnose_seconds = time.perf_counter() - start
    model.close()
    return eval_seconds, diagnose_seconds


if __name__ == "__main__":
    main()
