"""Evaluation speed against baselines measured in the same run.

Figures (each a ratio against a baseline timed here, on the same examples and parameters):
- ``--part overhead`` (the default):
  - overhead: promptmill's throughput / a raw llama-cpp-python loop (floor 0.9);
  - prefix_reuse: a naive loop that resets the context per example / promptmill, with 8 demos
    (floor 1.5);
  - cache: the first run / a cached re-run (floor 50);
  - memory: peak RSS of a `promptmill eval` process with the embedded model (ceiling 1 GiB).
- ``--part load``: `promptmill eval` of the bundled sentiment task (labelled prompt, 36 test
  examples, --no-cache) as child processes: alone, beside two busy-loop processes, and three
  at once against three one after another; each with OpenMP's default (active) wait policy and
  with promptmill's own thread settings. Floors: beside two hogs at least 0.45x the idle
  throughput; three at once within 1.2x the time of three in a row.
- ``--part batch``: the Evaluator at batch widths 1..32 / a raw sequential llama-cpp-python
  loop with the same good thread settings, 100 examples, 8 demos (floor 1.5x at the best
  width), and how many answers equal the raw loop's.

Usage: python benchmarks/bench_eval.py [--part overhead|load|batch|all] [--task antonyms]
       [--n 100] (load: [--repeats 1] [--limit N]; batch: [--widths 1,2,4,8,16,32])
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    child_thread_settings,
    emit,
    environment,
    load_average,
    load_ii,
    model_threads,
    require_data,
    seed_instruction,
    thread_env,
)

from promptmill.evaluation import Evaluator
from promptmill.metrics import get_metric
from promptmill.models import GenerationParams, load_model
from promptmill.models.threads import prepare_openmp
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


def in_own_thread(fn):
    """``fn()`` on a thread that then ends. OpenMP keeps a thread team per calling thread for
    the thread's life; one left on the main thread by the raw loop slowed every forward pass
    of the promptmill model (which computes on its engine's thread) by about half."""
    out: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: out.update(value=fn()))
    thread.start()
    thread.join()
    if "value" not in out:
        sys.exit("the raw llama-cpp-python loop failed; see the error above")
    return out["value"]


def overhead_part(args) -> dict:
    """The first figures: overhead, prefix reuse, cache and memory."""
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
        # the raw loop drives the same Llama on the thread where the model computes: a second
        # OpenMP team in the process (another calling thread) slowed whichever ran on it 4x
        on_model = model.on_compute_thread
        on_model(lambda: raw_loop(llm, plain_requests[:3], reset=False))
        promptmill_run(model, examples[:3], plain, tmp, "warmup")
        # Alternate the two and keep the best of each, so drift on a shared machine
        # does not favour whichever ran second.
        raw_times, pm_times, own_times = [], [], []
        for rep in range(args.repeats or 3):
            raw_times.append(on_model(lambda: raw_loop(llm, plain_requests, reset=False)))
            seconds, plain_result = promptmill_run(model, examples, plain, tmp, f"plain{rep}")
            pm_times.append(seconds)
            # promptmill's own cost (render, cache, metric, store), free of model noise
            own_times.append(seconds - plain_result.ledger.model_seconds)
        raw_plain, pm_plain = min(raw_times), min(pm_times)
        naive_demos = on_model(lambda: raw_loop(llm, demo_requests, reset=True))
        pm_demos, _ = promptmill_run(model, examples, with_demos, tmp, "demos")
        cached = rerun_cached(model, examples, plain, tmp, "plain0")
        settings = model_threads(model)  # before close: batch_width asks the live engine
        model.close()
        peak_mib = peak_rss_of_cli_eval(args.task, args.n, tmp)

    n = len(examples)
    return {
        "benchmark": "bench_eval", "task": args.task, "examples": n, "demos": args.demos,
        "model": model.identity, "params": PARAMS.to_dict(), "environment": environment(),
        **settings, "user_thread_env": args.user_thread_env, "load_average": load_average(),
        "accuracy_plain_prompt": round(plain_result.score.mean, 4),
        "overhead": {"raw_loop_seconds": round(raw_plain, 3),
                     "promptmill_seconds": round(pm_plain, 3),
                     "all_raw_seconds": [round(t, 3) for t in raw_times],
                     "all_promptmill_seconds": [round(t, 3) for t in pm_times],
                     "throughput_ratio": round(raw_plain / pm_plain, 3), "floor": 0.9,
                     # wall minus model seconds means promptmill's own cost only when calls
                     # run one at a time; batched calls overlap, so their seconds add up to
                     # more than the wall time
                     "promptmill_own_seconds": [round(t, 3) for t in own_times]
                     if settings["batch_width"] == 1 else None},
        "prefix_reuse": {"naive_reset_seconds": round(naive_demos, 3),
                         "promptmill_seconds": round(pm_demos, 3),
                         "speedup": round(naive_demos / pm_demos, 3), "floor": 1.5},
        "cache": {"first_run_seconds": round(pm_plain, 3), "cached_seconds": round(cached, 4),
                  "speedup": round(pm_plain / cached, 1), "floor": 50},
        "memory": {"peak_rss_mib": round(peak_mib, 1), "ceiling_mib": 1024},
    }


# --- under load (issue 18): promptmill eval processes beside busy loops and each other ---------
SENTIMENT = Path(__file__).resolve().parent.parent / "promptmill" / "examples" / "sentiment"
# "omp_default" is GNU OpenMP's own default (a waiting thread spins 300,000 times before it
# sleeps), named explicitly since promptmill now sets its own; "promptmill" leaves both
# variables unset, so promptmill chooses. "before_batching" (only with --modes) is also without
# the batch engine: promptmill as it was before issue 18.
OMP_DEFAULT = {"GOMP_SPINCOUNT": "300000"}
LOAD_MODES = {"omp_default": OMP_DEFAULT, "promptmill": {},
              "before_batching": {**OMP_DEFAULT, "PROMPTMILL_BATCH_WIDTH": "1"}}
DEFAULT_LOAD_MODES = "omp_default,promptmill"
LOAD_SCENARIOS = ("alone", "two_hogs", "three_at_once", "three_in_a_row")
HOG_FLOOR, CONCURRENT_CEILING = 0.45, 1.2


def mode_env(mode: str, home: Path) -> dict[str, str]:
    """The child environment of one mode: the user's, minus any wait policy, plus the mode's."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env["PROMPTMILL_HOME"] = str(home)  # the measured batch width is cached here, not in ~
    return {**env, **LOAD_MODES[mode]}


def eval_command(db: Path, limit: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "promptmill.cli.app", "--db", f"sqlite:///{db}", "eval",
           str(SENTIMENT / "task.yaml"), "-p", str(SENTIMENT / "prompts" / "labelled.yaml"),
           "--no-cache", "--quiet"]
    return cmd + (["--limit", str(limit)] if limit else [])


def _run_record(db: Path) -> dict:
    """The run a child wrote: its own wall time (model load excluded), score and size."""
    store = Store(f"sqlite:///{db}")
    try:
        run = store.list_runs(limit=1)[0]
    finally:
        store.close()
    n = run["n_done"] or 1
    return {"eval_wall_seconds": round(run["wall_seconds"], 3),
            "accuracy": round(run["score_sum"] / n, 4), "n": run["n_done"],
            "calls": run["calls"]}


def run_evals(k: int, env: dict[str, str], folder: Path, timeout: float,
              limit: int | None) -> dict:
    """Start ``k`` evaluations at once; wall time until the last one ends (killed at timeout)."""
    tag = time.monotonic_ns()
    dbs = [folder / f"eval-{tag}-{i}.db" for i in range(k)]
    logs = [folder / f"eval-{tag}-{i}.err" for i in range(k)]
    procs: list[subprocess.Popen] = []
    ended: dict[int, float] = {}
    start = time.perf_counter()
    try:
        for db, log in zip(dbs, logs, strict=True):
            with log.open("wb") as err:  # a file, not a pipe: a full pipe would stall a child
                procs.append(subprocess.Popen(eval_command(db, limit), env=env, stderr=err,
                                              stdout=subprocess.DEVNULL))
        while len(ended) < k:
            elapsed = time.perf_counter() - start
            if elapsed > timeout:
                sys.exit(f"promptmill eval did not finish within {timeout:g} s. Fix: raise "
                         "--timeout, or run on a less busy machine")
            for i, proc in enumerate(procs):
                if i not in ended and proc.poll() is not None:
                    ended[i] = elapsed
            time.sleep(0.02)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, log in zip(procs, logs, strict=True):
        if proc.returncode != 0:
            sys.exit(f"promptmill eval failed: {log.read_text(errors='replace').strip()[-800:]}")
    return {"seconds": round(max(ended.values()), 3),
            "process_seconds": [round(ended[i], 3) for i in range(k)],
            "runs": [_run_record(db) for db in dbs]}


def load_scenario(name: str, env: dict[str, str], folder: Path, timeout: float,
                  limit: int | None) -> dict:
    """One measurement of one scenario; ``seconds`` is the figure the ratios use."""
    from _hogs import cpu_hogs

    if name == "alone":
        return run_evals(1, env, folder, timeout, limit)
    if name == "two_hogs":
        with cpu_hogs(2, limit=timeout + 30) as hogs:
            out = run_evals(1, env, folder, timeout, limit)
        return {**out, **hogs.summary()}
    if name == "three_at_once":
        return run_evals(3, env, folder, timeout, limit)
    parts = [run_evals(1, env, folder, timeout, limit) for _ in range(3)]
    return {"seconds": round(sum(p["seconds"] for p in parts), 3),
            "process_seconds": [p["seconds"] for p in parts],
            "runs": [r for p in parts for r in p["runs"]]}


def load_ratios(best: dict[str, float]) -> dict:
    """Each mode's figures against its own idle and sequential times, with the floors."""
    hogs = best["alone"] / best["two_hogs"]
    concurrent = best["three_at_once"] / best["three_in_a_row"]
    return {"throughput_with_two_hogs_vs_idle": round(hogs, 3), "floor": HOG_FLOOR,
            "meets_floor": hogs >= HOG_FLOOR,
            "three_at_once_vs_in_a_row": round(concurrent, 3), "ceiling": CONCURRENT_CEILING,
            "meets_ceiling": concurrent <= CONCURRENT_CEILING}


def load_part(args) -> dict:
    """Evaluations beside CPU hogs and each other, with OpenMP's policy and with promptmill's."""
    repeats = args.repeats or 1
    modes = [m.strip() for m in args.modes.split(",")]
    unknown = [m for m in modes if m not in LOAD_MODES]
    if unknown or "promptmill" not in modes:
        sys.exit(f"--modes {args.modes!r}: give 'promptmill' and any of "
                 f"{', '.join(m for m in LOAD_MODES if m != 'promptmill')}, comma-separated")
    times: dict[str, dict[str, list[dict]]] = {m: {s: [] for s in LOAD_SCENARIOS}
                                               for m in modes}
    loads: list[list[float]] = [load_average()]
    with tempfile.TemporaryDirectory(prefix="promptmill-bench-load-") as tmp_name:
        tmp = Path(tmp_name)
        envs = {m: mode_env(m, tmp / "home") for m in modes}
        settings = {m: child_thread_settings(env) for m, env in envs.items()}
        for env in envs.values():  # untimed: page the weights in, measure the batch width
            run_evals(1, env, tmp, args.timeout, args.limit)
        for rep in range(repeats):
            for scenario in LOAD_SCENARIOS:
                # alternate which mode goes first, so drift on the machine favours neither
                order = modes if rep % 2 == 0 else modes[::-1]
                for mode in order:
                    print(f"load: {scenario} / {mode} (round {rep + 1})", file=sys.stderr)
                    times[mode][scenario].append(
                        load_scenario(scenario, envs[mode], tmp, args.timeout, args.limit))
                    loads.append(load_average())
        widths = _cached_widths(tmp / "home")
    figures = {}
    for mode, by_scenario in times.items():
        best = {s: min(r["seconds"] for r in rows) for s, rows in by_scenario.items()}
        accuracies = sorted({run["accuracy"] for rows in by_scenario.values() for r in rows
                             for run in r["runs"]})
        figures[mode] = {"settings": settings[mode], "seconds": best, **load_ratios(best),
                         "accuracies_seen": accuracies, "measurements": by_scenario}
    ours = figures["promptmill"]["seconds"]
    return {
        "benchmark": "bench_eval_load", "task": "bundled sentiment, labelled prompt",
        "examples": args.limit or 36, "repeats": repeats, "environment": environment(),
        "user_thread_env": args.user_thread_env, "batch_widths_measured": widths,
        "load_average": {"before": loads[0], "after_each_measurement": loads[1:]},
        "figure_seconds": "wall time of the promptmill eval processes, start to last exit "
                          "(model load included); best of the repeats",
        **figures,
        "promptmill_speedup_vs": {m: {s: round(f["seconds"][s] / ours[s], 3)
                                      for s in LOAD_SCENARIOS}
                                  for m, f in figures.items() if m != "promptmill"},
    }


def _cached_widths(home: Path) -> dict:
    import json

    try:
        return json.loads((home / "batch-widths.json").read_text())
    except (OSError, ValueError):
        return {}


# --- batched evaluation (issue 18) against a raw sequential loop --------------------------------
BATCH_FLOOR = 1.5


def raw_sequential_llama():
    """The baseline's Llama: the embedded GGUF, every usable CPU for both thread counts, and
    (set before llama.cpp loads, by promptmill's import) the passive wait policy."""
    from llama_cpp import Llama

    from promptmill.models.llamacpp import embedded_gguf_path
    from promptmill.models.threads import usable_cpus

    cpus = usable_cpus()
    llm = Llama(model_path=str(embedded_gguf_path()), n_ctx=2048, n_threads=cpus,
                n_threads_batch=cpus, n_batch=512, seed=0, verbose=False)
    return llm, {"n_threads": cpus, "n_threads_batch": cpus,
                 "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
                 "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT")}


def raw_answers(llm, requests) -> tuple[float, list[str]]:
    """The baseline timed: create_chat_completion over the requests, keeping each answer."""
    texts = []
    start = time.perf_counter()
    for messages in requests:
        out = llm.create_chat_completion(messages=messages, max_tokens=PARAMS.max_tokens,
                                         temperature=PARAMS.temperature, top_p=PARAMS.top_p,
                                         seed=PARAMS.seed)
        texts.append(out["choices"][0]["message"]["content"] or "")
    return time.perf_counter() - start, texts


def raw_round(requests) -> tuple[float, list[str], dict]:
    """The raw loop, timed, with a model of its own on a thread of its own (``in_own_thread``),
    so one model is in memory at a time and no OpenMP team outlives it."""

    def run() -> tuple[float, list[str], dict]:
        llm, settings = raw_sequential_llama()
        try:
            raw_answers(llm, requests[:3])  # warm-up: page the weights in
            seconds, texts = raw_answers(llm, requests)
        finally:
            llm.close()
        return seconds, texts, settings

    return in_own_thread(run)


def batched_eval(width: int, examples, prompt, folder: Path, name: str) -> dict:
    """One Evaluator run at one batch width, after an untimed warm-up on the same model."""
    model: Any = load_model("embedded", batch_width=width)  # a LlamaCppModel: .threads
    try:
        promptmill_run(model, examples[:3], prompt, folder, f"{name}-warm")
        store = Store(f"sqlite:///{folder / (name + '.db')}")
        evaluator = Evaluator(model, get_metric("exact"), store, params=PARAMS, progress=False)
        start = time.perf_counter()
        result = evaluator.evaluate(examples, prompt, task=name)
        seconds = time.perf_counter() - start
        rows = list(store.iter_results(result.run_id))
        store.close()
        info = {"batch_width": model.batch_width, "concurrency": model.concurrency,
                "threads": model.threads.to_dict(), "identity": model.identity}
    finally:
        model.close()
    texts = [r["raw_output"] if r["raw_output"] is not None else (r["output"] or "")
             for r in rows]
    return {"seconds": seconds, "texts": texts, "accuracy": result.score.mean, **info}


def batch_inputs(args):
    """The examples and the 8-demo prompt of the batch part, and the requests they render to."""
    from promptmill.rendering import Renderer

    examples = load_ii(args.task, "execute")[: args.n]
    pool = load_ii(args.task, "induce")
    prompt = Prompt(instruction=seed_instruction(args.task), template="{{ input }}",
                    demos=tuple(Demo(inputs=ex.inputs, output=ex.target or "")
                                for ex in pool[: args.demos]))
    renderer = Renderer(mode="chat", params=PARAMS)
    return examples, prompt, [renderer.render(prompt, ex) for ex in examples]


def batch_child(args) -> dict:
    """One measurement of the batch part, in a process of its own (``--child-width``; 0 is the
    raw loop). Each llama.cpp model gets a fresh process: OpenMP keeps a thread team per
    calling thread, and a team left by an earlier model slowed every later forward pass by a
    quarter to a half (measured), which would favour whichever ran first."""
    examples, prompt, requests = batch_inputs(args)
    if args.child_width == 0:
        seconds, texts, settings = raw_round(requests)
        return {"seconds": seconds, "texts": texts, "settings": settings}
    with tempfile.TemporaryDirectory(prefix="promptmill-bench-batch-") as tmp_name:
        return batched_eval(args.child_width, examples, prompt, Path(tmp_name), "w")


def _child(args, width: int) -> dict:
    import json

    cmd = [sys.executable, __file__, "--part", "batch", "--child-width", str(width),
           "--task", args.task, "--n", str(args.n), "--demos", str(args.demos)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    if proc.returncode != 0:
        sys.exit(f"a batch measurement failed: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def batch_part(args) -> dict:
    """The Evaluator at each width / the raw sequential loop, side by side, alternating, each
    measurement in a fresh process."""
    widths = [int(w) for w in args.widths.split(",")]
    repeats = args.repeats or 2
    examples, _, _ = batch_inputs(args)
    raw_times: list[float] = []
    runs: dict[int, list[dict]] = {w: [] for w in widths}
    loads = [load_average()]
    for rep in range(repeats):
        raw = _child(args, 0)
        raw_times.append(raw["seconds"])
        raw_texts, raw_settings = raw["texts"], raw["settings"]
        for width in widths:
            print(f"batch: width {width} (round {rep + 1})", file=sys.stderr)
            runs[width].append(_child(args, width))
            loads.append(load_average())
    raw_best = min(raw_times)
    curve = {}
    for width, rows in runs.items():
        best = min(r["seconds"] for r in rows)
        curve[str(width)] = {
            "seconds": round(best, 3), "all_seconds": [round(r["seconds"], 3) for r in rows],
            "speedup_vs_raw": round(raw_best / best, 3),
            "answers_equal_to_raw": sum(a == b for a, b in zip(rows[0]["texts"], raw_texts,
                                                                strict=True)),
            "accuracy": round(rows[0]["accuracy"], 4), "engine_width": rows[0]["batch_width"],
            "concurrency": rows[0]["concurrency"]}
    best_width = max(curve, key=lambda w: curve[w]["speedup_vs_raw"])
    first = runs[widths[0]][0]
    return {
        "benchmark": "bench_eval_batch", "task": args.task, "examples": len(examples),
        "demos": args.demos, "repeats": repeats, "params": PARAMS.to_dict(),
        "model": first["identity"], "environment": environment(),
        "promptmill_threads": first["threads"], "OMP_WAIT_POLICY": os.environ.get(
            "OMP_WAIT_POLICY"), "user_thread_env": args.user_thread_env,
        "load_average": {"before": loads[0], "after_each_measurement": loads[1:]},
        "raw_loop": {"seconds": round(raw_best, 3),
                     "all_seconds": [round(t, 3) for t in raw_times], **raw_settings},
        "by_width": curve, "best_width": int(best_width),
        "best_speedup": curve[best_width]["speedup_vs_raw"], "floor": BATCH_FLOOR,
        "meets_floor": curve[best_width]["speedup_vs_raw"] >= BATCH_FLOOR,
        "figure": "raw loop seconds / Evaluator seconds (best of the repeats); answers compared "
                  "with the raw loop's, example by example",
    }


PARTS = {"overhead": overhead_part, "load": load_part, "batch": batch_part}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=[*PARTS, "all"], default="overhead")
    parser.add_argument("--task", default="antonyms")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--demos", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=None,
                        help="rounds, best kept (default: overhead 3, load 1, batch 2)")
    parser.add_argument("--widths", default="1,2,4,8,16,32", help="batch part: batch widths")
    parser.add_argument("--child-width", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, default=None,
                        help="load part: only the first N sentiment examples (smoke runs)")
    parser.add_argument("--modes", default=DEFAULT_LOAD_MODES,
                        help=f"load part: thread setups to compare ({', '.join(LOAD_MODES)})")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="load part: seconds before an evaluation is killed")
    args = parser.parse_args()
    require_data()
    # what the user had set, before promptmill's import sets a wait policy for this process
    args.user_thread_env = thread_env()
    prepare_openmp()
    if args.child_width is not None:  # one measurement of the batch part, for its parent
        import json

        print(json.dumps(batch_child(args)))
        return
    names = list(PARTS) if args.part == "all" else [args.part]
    results = {name: PARTS[name](args) for name in names}
    name = "bench_eval" if args.part == "overhead" else f"bench_eval_{args.part}"
    emit(name, results if len(results) > 1 else results[names[0]])


if __name__ == "__main__":
    main()
