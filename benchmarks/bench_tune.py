"""Tuning against prompting, head to head, on instruction-induction tasks.

Per task, one base model (the embedded SmolLM2-135M-Instruct GGUF loaded into PyTorch, fp32)
and five conditions, all scored on the same 100 test examples (raw/execute) by greedy
generation with the task's metric:

1. the seed prompt (the first human annotation);
2. the optimized prompt (``promptmill.optimize``, method auto, a modest call budget, searching on
   train + validation from raw/induce). The search runs on llama.cpp with the same GGUF (the
   same weights, far cheaper per call); its winner is then scored on test by the PyTorch
   model like every other condition, and llama.cpp's own test scores are reported beside it;
3. LoRA tuned under the seed prompt;
4. a soft prompt (prompt tuning) under the seed prompt;
5. the optimized prompt plus LoRA tuned under it.

Training uses a small budget (``--train`` examples, ``--epochs``, early stopping on
validation). Reported: test accuracy with 95% CIs, the paired p-value against the seed prompt,
wall seconds (training + search + test evaluation) and peak resident memory per condition.

Task choice rule (stated before any run, not from test scores): single-field tasks whose
output is a deterministic string transformation of the input with a short answer (no world
knowledge a small training budget cannot add, and short generations keep the run cheap):
first_word_letter, second_word_letter, num_to_verbal.

Test answers are generated in batches (``promptmill.tune.batch_eval.warm_cache``) into the
call cache, then recorded as ordinary evaluation runs. PyTorch runs on one thread by default:
on this shared 2-core machine two threads spin-wait and ran 4-8x slower.

Usage: python benchmarks/bench_tune.py [--tasks a,b] [--train 96] [--epochs 3]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, environment, load_ii, metric_for, require_data, seed_instruction

from promptmill.evaluation import Evaluator
from promptmill.metrics import get_metric
from promptmill.models.base import GenerationParams
from promptmill.optimize import Budget, optimize
from promptmill.prompt import Prompt
from promptmill.stats import mean_ci, paired_test
from promptmill.store.db import Store
from promptmill.task import Task

TASKS = ("first_word_letter", "second_word_letter", "num_to_verbal")
PARAMS = GenerationParams(max_tokens=12, temperature=0.0, seed=0)


def reset_peak() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM, so each condition's peak is its own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def build_task(name: str, train: int, validation: int, seed: int,
               test_limit: int | None = None) -> Task:
    pool = load_ii(name, "induce")
    random.Random(seed).shuffle(pool)
    return Task(name, train=pool[:train], validation=pool[train:train + validation],
                test=load_ii(name, "execute")[:test_limit], seed=seed)


def test_scores(model, metric, store, task: Task, prompt: Prompt) -> list[float]:
    """A recorded evaluation run; answers come batched through the call cache (warm_cache)."""
    from promptmill.tune.batch_eval import warm_cache

    evaluator = Evaluator(model, metric, store, params=PARAMS, progress=False,
                          demo_pool=task.train)
    warm_cache(evaluator, prompt, task.test)
    result = evaluator.evaluate(task.test, prompt, task=task.name, split="test")
    return [result.scores[ex.id] for ex in task.test]


def summarize(label: str, scores: list[float], seed_scores: list[float] | None, seconds: float,
              memory: float, extra: dict | None = None,
              prompt_scores: list[float] | None = None) -> dict:
    est = mean_ci(scores)
    row = {"condition": label, "test": round(est.mean, 4),
           "ci": [round(est.low, 4), round(est.high, 4)], "wall_seconds": round(seconds, 1),
           "peak_rss_mb": memory}
    if seed_scores is not None:
        cmp = paired_test(seed_scores, scores, label_a="seed", label_b=label)
        row.update(p_value_vs_seed=cmp.p_value, significantly_better=cmp.winner == label,
                   significantly_worse=cmp.winner == "seed")
    if prompt_scores is not None:  # tuning against prompting, head to head
        vs = paired_test(prompt_scores, scores, label_a="optimized_prompt", label_b=label)
        row.update(p_value_vs_optimized_prompt=vs.p_value, winner_vs_optimized_prompt=vs.winner)
    return {**row, **(extra or {})}


def tuned_condition(label, method, task, prompt, metric, store, args, base_model):
    from promptmill.models.transformers_model import TransformersModel
    from promptmill.tune.registry import get_adapter, load_tuned
    from promptmill.tune.settings import TuneSettings
    from promptmill.tune.train import tune

    reset_peak()
    started = time.perf_counter()
    lr = args.lora_lr if method == "lora" else args.soft_lr
    settings = TuneSettings(method=method, learning_rate=lr, epochs=args.epochs,
                            batch_size=args.batch_size, max_length=args.max_length,
                            virtual_tokens=args.virtual_tokens, patience=1, seed=args.seed)
    name = f"bench-{task.name}-{label}"
    result = tune(task, prompt, metric, name=name, settings=settings, store=store,
                  params=PARAMS, resume=False, threads=args.threads)
    train_seconds = time.perf_counter() - started
    model, tokenizer, identity = load_tuned(get_adapter(store, name))
    scores = test_scores(TransformersModel(model, tokenizer, identity, f"tuned:{name}"),
                         metric, store, task, prompt)
    return scores, time.perf_counter() - started, peak_mb(), {
        "train_seconds": round(train_seconds, 1), "steps": result.steps,
        "best_epoch": result.best_epoch, "validation_history": result.history,
        "train_loss_before": result.initial_loss, "train_loss_after": result.final_loss,
        "stopped_early": result.stopped_early}


def run_task(name: str, base_model, search_model, store: Store, args) -> dict:
    task = build_task(name, args.train, args.validation, args.seed, args.test_limit)
    metric = get_metric(metric_for(name))
    seed_prompt = Prompt(instruction=seed_instruction(name), template="{{ input }}", name=name)
    rows = []
    reset_peak()
    started = time.perf_counter()
    seed_scores = test_scores(base_model, metric, store, task, seed_prompt)
    rows.append(summarize("seed_prompt", seed_scores, None, time.perf_counter() - started,
                          peak_mb()))
    log(name, rows[-1])

    reset_peak()
    started = time.perf_counter()
    opt = optimize(task, seed_prompt, search_model, metric=metric,
                   budget=Budget(calls=args.budget_calls), method="auto", store=store,
                   params=PARAMS, seed=args.seed)
    best = opt.best_prompt
    opt_scores = test_scores(base_model, metric, store, task, best)
    rows.append(summarize("optimized_prompt", opt_scores, seed_scores,
                          time.perf_counter() - started, peak_mb(),
                          {"search_calls": opt.spend["calls"], "demos": len(best.demos),
                           "llamacpp_seed_test": round(opt.seed_test.score.mean, 4),
                           "llamacpp_optimized_test": round(opt.best_test.score.mean, 4),
                           "instruction": best.instruction}))
    log(name, rows[-1])

    for label, method, prompt in (("lora", "lora", seed_prompt),
                                  ("soft_prompt", "prompt-tuning", seed_prompt),
                                  ("optimized_prompt+lora", "lora", best)):
        scores, seconds, memory, extra = tuned_condition(label, method, task, prompt, metric,
                                                         store, args, base_model)
        rows.append(summarize(label, scores, seed_scores, seconds, memory, extra, opt_scores))
        log(name, rows[-1])
    return {"task": name, "metric": metric_for(name), "n_test": len(task.test),
            "n_train": len(task.train), "n_validation": len(task.validation),
            "conditions": rows}


def log(task: str, row: dict) -> None:
    p = row.get("p_value_vs_seed")
    print(f"{task} {row['condition']}: {row['test']:.3f} {row['ci']} "
          f"p={'-' if p is None else f'{p:.3g}'} {row['wall_seconds']}s "
          f"{row['peak_rss_mb']}MB", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--train", type=int, default=96)
    parser.add_argument("--validation", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=96)
    parser.add_argument("--lora-lr", type=float, default=1e-3)
    parser.add_argument("--soft-lr", type=float, default=3e-2)
    parser.add_argument("--virtual-tokens", type=int, default=8)
    parser.add_argument("--budget-calls", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-limit", type=int, default=None, help="smoke runs only")
    parser.add_argument("--store", default=None, help="SQLAlchemy URL (default: a temp file)")
    args = parser.parse_args()
    require_data()
    import os

    home = tempfile.mkdtemp(prefix="promptmill-bench-tune-")
    os.environ.setdefault("PROMPTMILL_HOME", home)  # adapters go here, not into ~/.promptmill
    store = Store(args.store or f"sqlite:///{home}/bench_tune.db")
    from promptmill.tune.backend import hf_model

    total = time.perf_counter()
    base_model = hf_model("embedded", threads=args.threads)
    from promptmill.models import load_model

    search_model = load_model("embedded", n_threads=args.threads)
    tasks = [run_task(name, base_model, search_model, store, args)
             for name in args.tasks.split(",")]
    lora_wins = [t["task"] for t in tasks
                 if any(c["condition"] == "lora" and c.get("significantly_better")
                        for c in t["conditions"])]
    emit("bench_tune", {
        "benchmark": "bench_tune", "model": base_model.identity, "environment": environment(),
        "settings": vars(args), "tasks": tasks,
        "lora_significantly_better_than_seed": lora_wins,
        "floor_met": len(lora_wins) >= 2, "total_wall_seconds": round(
            time.perf_counter() - total, 1)})


if __name__ == "__main__":
    main()
