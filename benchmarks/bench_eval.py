"""Evaluation speed against baselines measured in the same run.

Figures (each a ratio against a baseline timed here, on the same examples and parameters):
- overhead: promptmill's throughput / a raw llama-cpp-python loop (floor 0.9);
- prefix_reuse: a naive loop that resets the context per example / promptmill, with 8 demos
  (floor 1.5);
- cache: the first run / a cached re-run (floor 50);
- memory: peak RSS of a `promptmill eval` process with the embedded model (ceiling 1 GiB).

Usage: python benchmarks/bench_eval.py [--task antonyms] [--n 100]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, environment, load_ii, require_data, seed_instruction

from promptmill.evaluation import Evaluator
from promptmill.metrics import get_metric
from promptmill.models import GenerationParams, load_model
from promptmill.prompt import Demo, Prompt
from promptmill.store.db import Store

PARAMS = GenerationParams(max_tokens=16, temperature=0.0, seed=0)


def raw_loop(llm, requests, reset: bool) -> float:
    """The baseline: create_chat_completion over the same requests, nothing else."""
    start = time.perf_counter()
    for messages in requests:
        if reset:
            llm.reset()
        llm.create_chat_completion(messages=messages, max_tokens=PARAMS.max_tokens,
                                   temperature=PARAMS.temperature, top_p=PARAMS.top_p,
                                   seed=PARAMS.seed)
    return time.perf_counter() - start


def promptmill_run(model, examples, prompt, store_dir: Path, name: str) -> tuple[float, object]:
    store = Store(f"sqlite:///{store_dir / (name + '.db')}")
    evaluator = Evaluator(model, get_metric("exact"), store, params=PARAMS, progress=False)
    start = time.perf_counter()
    result = evaluator.evaluate(examples, prompt, task=name)
    return time.perf_counter() - start, result


def rerun_cached(model, examples, prompt, store_dir: Path, name: str) -> float:
    store = Store(f"sqlite:///{store_dir / (name + '.db')}")
    evaluator = Evaluator(model, get_metric("exact"), store, params=PARAMS, progress=False)
    start = time.perf_counter()
    result = evaluator.evaluate(examples, prompt, task=name, resume=False)
    elapsed = time.perf_counter() - start
    assert result.ledger.cache_hits == len(examples), "the re-run was not served from cache"
    return elapsed


def requests_for(model_eval: Evaluator, prompt: Prompt, examples) -> list:
    return [model_eval.render(prompt, ex) for ex in examples]


def peak_rss_of_cli_eval(task: str, n: int, tmp: Path) -> float:
    """Run a real `promptmill eval` in a child process and read its peak RSS (MiB)."""
    import json

    import yaml

    rows = [{"input": ex.inputs["input"], "output": ex.target} for ex in load_ii(task, "execute")]
    data = tmp / "mem.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows[:n]))
    (tmp / "mem.yaml").write_text(yaml.safe_dump({
        "name": "memory", "data": {"path": str(data)},
        "splits": {"train": 0, "validation": 0, "test": min(n, len(rows))},
        "generation": {"max_tokens": PARAMS.max_tokens},
        "prompt": {"instruction": seed_instruction(task), "template": "{{ input }}"}}))
    proc = subprocess.run([sys.executable, "-m", "promptmill.cli.app", "--db",
                           f"sqlite:///{tmp / 'mem.db'}", "eval", str(tmp / "mem.yaml"),
                           "--quiet", "--no-cache"], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"promptmill eval failed: {proc.stderr.strip()[-2000:]}")
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="antonyms")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--demos", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    require_data()

    examples = load_ii(args.task, "execute")[: args.n]
    pool = load_ii(args.task, "induce")
    plain = Prompt(instruction=seed_instruction(args.task), template="{{ input }}")
    with_demos = plain.model_copy(update={"demos": tuple(
        Demo(inputs=ex.inputs, output=ex.target) for ex in pool[: args.demos])})

    model = load_model("embedded")
    llm = model.llama
    helper = Evaluator(model, get_metric("exact"), store=Store("sqlite://"), progress=False)
    plain_requests = requests_for(helper, plain, examples)
    demo_requests = requests_for(helper, with_demos, examples)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        # Warm both sides up: page in the weights, and pay promptmill's one-off imports
        # (scipy, SQLAlchemy) outside the timed region, as the raw loop pays none.
        raw_loop(llm, plain_requests[:3], reset=False)
        promptmill_run(model, examples[:3], plain, tmp, "warmup")
        # Alternate the two and keep the best of each, so drift on a shared machine
        # does not favour whichever ran second.
        raw_times, pm_times, own_times = [], [], []
        for rep in range(args.repeats):
            raw_times.append(raw_loop(llm, plain_requests, reset=False))
            seconds, plain_result = promptmill_run(model, examples, plain, tmp, f"plain{rep}")
            pm_times.append(seconds)
            # promptmill's own cost (render, cache, metric, store), free of model noise
            own_times.append(seconds - plain_result.ledger.model_seconds)
        raw_plain, pm_plain = min(raw_times), min(pm_times)
        naive_demos = raw_loop(llm, demo_requests, reset=True)
        pm_demos, _ = promptmill_run(model, examples, with_demos, tmp, "demos")
        cached = rerun_cached(model, examples, plain, tmp, "plain0")
        model.close()
        peak_mib = peak_rss_of_cli_eval(args.task, args.n, tmp)

    n = len(examples)
    emit("bench_eval", {
        "benchmark": "bench_eval", "task": args.task, "examples": n, "demos": args.demos,
        "model": model.identity, "params": PARAMS.to_dict(), "environment": environment(),
        "accuracy_plain_prompt": round(plain_result.score.mean, 4),
        "overhead": {"raw_loop_seconds": round(raw_plain, 3),
                     "promptmill_seconds": round(pm_plain, 3),
                     "all_raw_seconds": [round(t, 3) for t in raw_times],
                     "all_promptmill_seconds": [round(t, 3) for t in pm_times],
                     "throughput_ratio": round(raw_plain / pm_plain, 3), "floor": 0.9,
                     "promptmill_own_seconds": [round(t, 3) for t in own_times]},
        "prefix_reuse": {"naive_reset_seconds": round(naive_demos, 3),
                         "promptmill_seconds": round(pm_demos, 3),
                         "speedup": round(naive_demos / pm_demos, 3), "floor": 1.5},
        "cache": {"first_run_seconds": round(pm_plain, 3), "cached_seconds": round(cached, 4),
                  "speedup": round(pm_plain / cached, 1), "floor": 50},
        "memory": {"peak_rss_mib": round(peak_mib, 1), "ceiling_mib": 1024},
    })


if __name__ == "__main__":
    main()
