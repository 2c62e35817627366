"""Distributed evaluation throughput: Ray with 2 workers against 1, and the in-process baseline.

Every configuration evaluates the same instruction-induction examples with the embedded model,
each in a fresh store (so no answer comes from the cache), in one run of this script:
- local_1thread: the in-process executor, llama.cpp on 1 thread (the baseline for Ray's cost);
- ray_1x1: one Ray worker with 1 CPU (1 llama.cpp thread);
- ray_2x1: two Ray workers with 1 CPU each;
- local: the in-process executor with the model's default threads (all cores);
- ray_1x2: one Ray worker with 2 CPUs (2 threads), what one bigger worker gets.
The 1-thread configurations run back to back, so a change in the machine's load between them
moves the 2-vs-1 ratio as little as possible. Ray's startup is timed apart from the
evaluation. Then the driver's ceiling: with a model that answers instantly (the fake model on
Ray), how many examples per second can the driver render, score and store? docs/scaling.md
turns these figures into throughput and cost for N workers.

Usage: python benchmarks/bench_scale_ray.py [--tasks antonyms,synonyms,first_word_letter]
       [--n 60]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    emit,
    environment,
    load_ii,
    metric_for,
    require_data,
    seed_instruction,
)

from promptmill.distributed import LocalExecutor, RayExecutor
from promptmill.evaluation import Evaluator
from promptmill.metrics import get_metric
from promptmill.models import GenerationParams, load_model
from promptmill.prompt import Prompt
from promptmill.store.db import Store

PARAMS = GenerationParams(max_tokens=16, temperature=0.0, seed=0)
MODEL_PARAMS = {"n_ctx": 1024}


def workload(tasks: list[str], n: int) -> list[tuple[str, Prompt, list]]:
    return [(task, Prompt(name=task, instruction=seed_instruction(task).capitalize() + ".",
                          template="{{ input }}"), load_ii(task, "execute")[:n])
            for task in tasks]


def timed_run(model, executor, work, store_dir: Path, name: str) -> dict:
    """Evaluate every task with one executor in a fresh store: examples/s and the answers."""
    store = Store(f"sqlite:///{store_dir / (name + '.db')}")
    answers, n = {}, 0
    start = time.perf_counter()
    for task, prompt, examples in work:
        evaluator = Evaluator(model, get_metric(metric_for(task)), store, params=PARAMS,
                              progress=False, executor=executor)
        result = evaluator.evaluate(examples, prompt, task=task)
        answers.update({f"{task}/{k}": v for k, v in result.scores.items()})
        n += result.n
    seconds = time.perf_counter() - start
    store.close()
    return {"examples": n, "seconds": round(seconds, 2),
            "examples_per_second": round(n / seconds, 3), "answers": answers}


def ray_config(model, work, store_dir, name, workers, cpus) -> dict:
    started = time.perf_counter()
    executor = RayExecutor("embedded", MODEL_PARAMS, workers=workers, cpus_per_worker=cpus)
    with executor:
        executor.start(model.identity)  # connect and load the models before the clock starts
        startup = time.perf_counter() - started
        figures = timed_run(model, executor, work, store_dir, name)
        figures["calls_per_worker"] = [w["calls"] for w in executor.worker_info()]
    figures["ray_startup_seconds"] = round(startup, 2)
    return figures


def driver_ceiling(store_dir: Path, n: int) -> dict:
    """Examples/s when answers cost nothing: the bound no number of workers can pass."""
    from promptmill.task import Example

    examples = [Example(f"x{i}", {"input": f"word {i}"}, "yes") for i in range(n)]
    work = [("ceiling", Prompt(name="ceiling", instruction="Say yes.", template="{{ input }}"),
             examples)]
    model = load_model("fake", default="yes")
    with RayExecutor("fake", {"default": "yes"}, workers=2) as executor:
        executor.start(model.identity)
        ray_fig = timed_run(model, executor, work, store_dir, "ceiling-ray")
    local_fig = timed_run(model, LocalExecutor(), work, store_dir, "ceiling-local")
    return {"examples": n, "ray_2_workers_examples_per_second": ray_fig["examples_per_second"],
            "local_examples_per_second": local_fig["examples_per_second"]}


def bench_ray(tasks: list[str], n: int) -> dict:
    require_data()
    work = workload(tasks, n)
    single = load_model("embedded", n_threads=1, **MODEL_PARAMS)
    configs = {}
    with tempfile.TemporaryDirectory() as tmp:
        store_dir = Path(tmp)
        configs["local_1thread"] = timed_run(single, LocalExecutor(), work, store_dir,
                                             "local_1thread")
        single.close()
        model = load_model("embedded", **MODEL_PARAMS)
        for name, workers, cpus in (("ray_1x1", 1, 1), ("ray_2x1", 2, 1)):
            configs[name] = ray_config(model, work, store_dir, name, workers, cpus)
        configs["local"] = timed_run(model, LocalExecutor(), work, store_dir, "local")
        configs["ray_1x2"] = ray_config(model, work, store_dir, "ray_1x2", 1, 2)
        model.close()
        ceiling = driver_ceiling(store_dir, 2000)
    reference = configs["local"].pop("answers")
    same = {name: fig.pop("answers") == reference for name, fig in configs.items()
            if name != "local"}
    eps = {name: fig["examples_per_second"] for name, fig in configs.items()}
    return {
        "benchmark": "ray", "tasks": tasks, "examples": configs["local"]["examples"],
        "configs": configs,
        "ratio_2_workers_vs_1": round(eps["ray_2x1"] / eps["ray_1x1"], 3),
        "ratio_1_worker_vs_in_process_1thread": round(eps["ray_1x1"] / eps["local_1thread"], 3),
        "ratio_2_workers_vs_in_process_1thread": round(eps["ray_2x1"] / eps["local_1thread"],
                                                       3),
        "ratio_2_workers_vs_local_default_threads": round(eps["ray_2x1"] / eps["local"], 3),
        "ratio_2_workers_vs_1_worker_2_cpus": round(eps["ray_2x1"] / eps["ray_1x2"], 3),
        "same_scores_as_local": same,
        "driver_ceiling": ceiling,
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "environment": environment(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="antonyms,synonyms,first_word_letter")
    parser.add_argument("--n", type=int, default=60, help="examples per task")
    args = parser.parse_args(argv)
    emit("bench_scale_ray", bench_ray(args.tasks.split(","), args.n))


if __name__ == "__main__":
    main()
