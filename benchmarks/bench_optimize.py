"""Prompt optimization on instruction-induction tasks, under the benchmark protocol.

Per task: the seed prompt is the first human annotation; the optimizer sees train and
validation samples drawn from raw/induce only; raw/execute is the test split it never sees.
The task model is the embedded model at temperature 0 with a fixed seed. Reported per task and
on average: seed and optimized test accuracy with 95% CIs, the paired p-value, and the search's
calls, tokens and seconds.

With ``--compare-batching`` (issue 18), the first task is optimized twice, each time with a
fresh store (no cache between them): with the default batch width (batching on) and with
PROMPTMILL_BATCH_WIDTH=1 (the sequential path). Reported: wall time per model call for each,
their ratio, and whether the two runs gave the same results (scores, chosen prompt).

Usage: python benchmarks/bench_optimize.py [--method auto] [--budget-calls 200] [--tasks a,b|all]
       [--compare-batching]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    emit,
    environment,
    ii_tasks,
    load_average,
    load_ii,
    metric_for,
    model_threads,
    require_data,
    seed_instruction,
    simple_ii_tasks,
    thread_env,
)

from promptmill.metrics import get_metric
from promptmill.models import GenerationParams, load_model
from promptmill.optimize import Budget, optimize
from promptmill.prompt import Prompt
from promptmill.stats import mean_ci
from promptmill.store.db import Store
from promptmill.task import Task

PARAMS = GenerationParams(max_tokens=24, temperature=0.0, seed=0)


def build_task(name: str, train: int, validation: int, seed: int) -> Task:
    """Train and validation drawn from the task's induce pool, test from its execute part.
    A pool smaller than train + validation (three tasks have 15-26 examples) is split in the
    same proportions."""
    pool = load_ii(name, "induce")
    random.Random(seed).shuffle(pool)
    if len(pool) < train + validation:
        train = round(len(pool) * train / (train + validation))
    return Task(name, train=pool[:train], validation=pool[train:train + validation],
                test=load_ii(name, "execute"), seed=seed)


def run_task(name: str, model, store: Store, args) -> dict:
    task = build_task(name, args.train, args.validation, args.seed)
    seed_prompt = Prompt(instruction=seed_instruction(name), template="{{ input }}", name=name)
    started = time.perf_counter()
    result = optimize(task, seed_prompt, model, metric=get_metric(metric_for(name)),
                      budget=Budget(calls=args.budget_calls), method=args.method, store=store,
                      params=PARAMS, seed=args.seed)
    seconds = time.perf_counter() - started
    seed_t, best_t, cmp = result.seed_test, result.best_test, result.comparison
    return {
        "task": name, "metric": metric_for(name), "n_test": seed_t.n,
        "seed_test": round(seed_t.score.mean, 4),
        "seed_ci": [round(seed_t.score.low, 4), round(seed_t.score.high, 4)],
        "optimized_test": round(best_t.score.mean, 4),
        "optimized_ci": [round(best_t.score.low, 4), round(best_t.score.high, 4)],
        "gain_points": round(100 * (best_t.score.mean - seed_t.score.mean), 1),
        "p_value": cmp.p_value, "significantly_worse": cmp.winner == "seed",
        "search_calls": result.spend["calls"], "search_tokens": result.spend["tokens"],
        "search_seconds": result.spend["seconds"], "wall_seconds_with_test": round(seconds, 1),
        "best_origin": result.summary()["best_candidate_origin"],
        "optimized_instruction": result.best_prompt.instruction,
        "optimized_demos": len(result.best_prompt.demos),
        "optimized_output_format": result.best_prompt.output_format,
        "warnings": result.warnings,
        # per-example 0/1 test scores, for paired tests against other tools (bench_dspy.py)
        "seed_per_example": seed_t.scores, "optimized_per_example": best_t.scores,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="auto")
    parser.add_argument("--budget-calls", type=int, default=200)
    parser.add_argument("--tasks", default=None, help="comma-separated, or 'all' for all 18 "
                        "tasks; default: the first 8 single-field tasks, alphabetically")
    parser.add_argument("--train", type=int, default=50)
    parser.add_argument("--validation", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", default=None, help="SQLAlchemy URL (default: a temp file)")
    parser.add_argument("--compare-batching", action="store_true",
                        help="optimize the first task with batching on and off (width 1) and "
                             "report wall time per call for each")
    args = parser.parse_args()
    args.user_thread_env = thread_env()  # before promptmill's import sets a wait policy
    require_data()
    names = (ii_tasks() if args.tasks == "all" else args.tasks.split(",") if args.tasks
             else simple_ii_tasks()[:8])
    if args.compare_batching:
        emit("bench_optimize_batching", compare_batching(names[0], args))
        return
    store = Store(args.store or f"sqlite:///{Path(tempfile_dir()) / 'bench_optimize.db'}")
    model = load_model("embedded")
    rows = []
    for name in names:
        rows.append(run_task(name, model, store, args))
        print(f"{name}: seed {rows[-1]['seed_test']:.3f} -> {rows[-1]['optimized_test']:.3f} "
              f"(p={rows[-1]['p_value']:.3g})", file=sys.stderr)
    emit("bench_optimize", {
        "benchmark": "bench_optimize", "method": args.method, "budget_calls": args.budget_calls,
        "train": args.train, "validation": args.validation, "seed": args.seed,
        "model": model.identity, "environment": environment(), "tasks": rows,
        "mean_seed_test": round(mean_ci([r["seed_test"] for r in rows]).mean, 4),
        "mean_optimized_test": round(mean_ci([r["optimized_test"] for r in rows]).mean, 4),
        "mean_gain_points": round(sum(r["gain_points"] for r in rows) / len(rows), 1),
        "tasks_significantly_worse": [r["task"] for r in rows if r["significantly_worse"]],
        "total_search_calls": sum(r["search_calls"] for r in rows),
    })


# --- batching on and off (issue 18) ------------------------------------------------------------
BATCH_WIDTH_ENV = "PROMPTMILL_BATCH_WIDTH"
# what must match between the two runs for "same results"
SAME_FIELDS = ("seed_test", "optimized_test", "seed_per_example", "optimized_per_example",
               "optimized_instruction", "optimized_demos", "optimized_output_format",
               "best_origin", "search_calls")


def fresh_calls(store: Store) -> int:
    """Model calls really made (search and test): one cached call row per fresh answer."""
    import sqlalchemy as sa

    from promptmill.store import schema

    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(schema.calls))
                   .scalar() or 0)


def one_batching_run(name: str, width: str | None, args) -> dict:
    """The task optimized once, with PROMPTMILL_BATCH_WIDTH set to ``width`` (None: unset)."""
    before = os.environ.get(BATCH_WIDTH_ENV)
    os.environ.pop(BATCH_WIDTH_ENV, None)
    if width is not None:
        os.environ[BATCH_WIDTH_ENV] = width
    try:
        model = load_model("embedded")  # reads the width setting when it is built
        store = Store(f"sqlite:///{Path(tempfile_dir()) / 'bench_optimize_batching.db'}")
        started = time.perf_counter()
        row = run_task(name, model, store, args)
        wall = time.perf_counter() - started
        calls = fresh_calls(store)
        settings = model_threads(model)  # before close: batch_width asks the live engine
        model.close()
        store.close()
    finally:
        os.environ.pop(BATCH_WIDTH_ENV, None)
        if before is not None:
            os.environ[BATCH_WIDTH_ENV] = before
    search_ms = 1000 * row["search_seconds"] / max(1, row["search_calls"])
    return {"PROMPTMILL_BATCH_WIDTH": width, **settings, "wall_seconds": round(wall, 2),
            "model_calls": calls, "wall_ms_per_call": round(1000 * wall / max(1, calls), 2),
            "search_ms_per_call": round(search_ms, 2), "load_average_after": load_average(),
            "result": row}


def compare_batching(name: str, args) -> dict:
    """Batching on first: any one-off cost of the first run (imports, paging the weights in)
    then counts against batching, not against the sequential baseline."""
    batched = one_batching_run(name, None, args)
    sequential = one_batching_run(name, "1", args)
    differs = [f for f in SAME_FIELDS if batched["result"][f] != sequential["result"][f]]
    return {
        "benchmark": "bench_optimize_batching", "task": name, "method": args.method,
        "budget_calls": args.budget_calls, "train": args.train, "validation": args.validation,
        "seed": args.seed, "params": PARAMS.to_dict(), "environment": environment(),
        "user_thread_env": args.user_thread_env,
        "batched": batched, "sequential": sequential,
        "speedup_wall_per_call": round(sequential["wall_ms_per_call"]
                                       / batched["wall_ms_per_call"], 3),
        "speedup_search_per_call": round(sequential["search_ms_per_call"]
                                         / batched["search_ms_per_call"], 3),
        "same_results": not differs, "fields_that_differ": differs,
    }


def tempfile_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="promptmill-bench-")


if __name__ == "__main__":
    main()
