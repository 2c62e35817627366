"""Shared benchmark helpers: where the data lives, loading instruction-induction tasks, output."""

from __future__ import annotations

import json
import os
import platform
import random
import sys
from pathlib import Path
from typing import Any

from promptmill.task import Example

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("PROMPTMILL_BENCH_DATA", ROOT.parent / "shared" / "data"))
II = DATA / "instruction_induction"


def require_data() -> None:
    if not II.exists():
        sys.exit(f"benchmark data not found at {II}. Fix: set PROMPTMILL_BENCH_DATA to the folder "
                 "that holds instruction_induction/")


# Alternative correct answers, where the data set lists them (as APE scores them).
ALTERNATIVES = {"rhymes": "other_rhymes", "translation_en-de": "possible_translations",
                "translation_en-fr": "possible_translations",
                "translation_en-es": "possible_translations"}


# APE scores most tasks by exact match after normalisation, a few by containment.
CONTAINS_TASKS = ("synonyms", "rhymes")


# APE's own scores for the tasks outside the 8-task set (its utility.py's TASK_TO_METRIC): token
# F1 for open phrasing, the same words in any order for lists. orthography_starts_with, in the
# 8-task set, stays on exact match (stricter than APE's exact set) to stay comparable with
# bench_dspy.py's runs.
APE_METRICS = {"common_concept": "f1", "informal_to_formal": "f1", "taxonomy_animal": "word_set"}


def metric_for(task: str) -> str:
    return "contains" if task in CONTAINS_TASKS else APE_METRICS.get(task, "exact")


def load_ii(task: str, part: str) -> list[Example]:
    """Instruction-induction examples: ``part`` is 'induce' (train pool) or 'execute' (test)."""
    raw = json.loads((II / "raw" / part / f"{task}.json").read_text())
    alt = ALTERNATIVES.get(task)
    examples = []
    for key, row in raw["examples"].items():
        text, target, others = _ape_fields(task, f"{part}-{key}", row)
        if alt:
            others = tuple(str(a) for a in row.get(alt) or [])
        examples.append(Example(f"{part}-{key}", {"input": text}, target, others))
    return examples


def _ape_fields(task: str, key: str, row: dict) -> tuple[Any, Any, tuple[str, ...]]:
    """The input, target and other accepted answers of a row, built as APE builds them for
    the tasks whose rows have no single input field."""
    if task == "cause_and_effect":
        # APE shows the two sentences in a random order; seeded per example here, so a run
        # and its replay see the same order
        pair = [row["cause"], row["effect"]]
        random.Random(f"{task}/{key}").shuffle(pair)
        return f"Sentence 1: {pair[0]} Sentence 2: {pair[1]}", row["cause"], ()
    if task == "common_concept":
        answers = [str(a) for a in row["all_common_concepts"]]
        return ", ".join(row["items"]), answers[0], tuple(answers[1:])
    return row["input"], row["output"], ()


def ii_tasks() -> list[str]:
    """Every instruction-induction task in the data set (``--tasks all``)."""
    return sorted(path.stem for path in (II / "raw" / "execute").glob("*.json"))


def simple_ii_tasks() -> list[str]:
    """Tasks with one input and one output field and a 100-example test split."""
    names = []
    for path in sorted((II / "raw" / "execute").glob("*.json")):
        rows = list(json.loads(path.read_text())["examples"].values())
        if len(rows) >= 100 and "input" in rows[0] and "output" in rows[0]:
            names.append(path.stem)
    return names


def seed_instruction(task: str) -> str:
    return json.loads((II / "annotations" / f"{task}.json").read_text())["annotations"][0]


def environment() -> dict:
    import llama_cpp

    return {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "llama_cpp_python": llama_cpp.__version__}


def estimate(scores: list[float]) -> dict:
    """Mean and 95% CI of per-example scores, rounded for the JSON output."""
    from promptmill.stats import mean_ci

    e = mean_ci(scores)
    return {"mean": round(e.mean, 4), "ci": [round(e.low, 4), round(e.high, 4)]}


def emit(name: str, payload: dict) -> None:
    """Print JSON to stdout and keep a copy under benchmarks/results/ (ignored by git)."""
    text = json.dumps(payload, indent=2)
    print(text)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / f"{name}.json").write_text(text + "\n")


# --- issue 18: machine load and thread settings, recorded in every speed figure -----------------
THREAD_ENV_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "PROMPTMILL_THREADS",
                   "PROMPTMILL_BATCH_WIDTH")

# Run in a child with the child's environment, so it reports what that process would load with
# (promptmill sets the wait policy when promptmill.models.llamacpp is imported).
_SETTINGS_PROBE = ("import json, os\nimport promptmill.models.llamacpp\n"
                   "from promptmill.models.threads import thread_settings\n"
                   "print(json.dumps({'threads': thread_settings().to_dict(),\n"
                   "                  'OMP_WAIT_POLICY': os.environ.get('OMP_WAIT_POLICY'),\n"
                   "                  'GOMP_SPINCOUNT': os.environ.get('GOMP_SPINCOUNT')}))\n")


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages: other work on the cores moves every timing."""
    return [round(x, 2) for x in os.getloadavg()]


def thread_env(env: dict[str, str] | None = None) -> dict[str, str | None]:
    """The environment variables that decide llama.cpp's threads, as set (None: unset)."""
    source = os.environ if env is None else env
    return {name: source.get(name) for name in THREAD_ENV_VARS}


def child_thread_settings(env: dict[str, str]) -> dict:
    """The thread settings a promptmill process started with ``env`` loads llama.cpp with."""
    import subprocess

    proc = subprocess.run([sys.executable, "-c", _SETTINGS_PROBE], env=env, capture_output=True,
                          text=True, timeout=120)
    if proc.returncode != 0:
        sys.exit(f"could not read the thread settings: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def model_threads(model) -> dict:
    """A loaded model's thread settings and the wait policy this process runs with."""
    threads = getattr(model, "threads", None)
    return {"threads": threads.to_dict() if threads is not None else None,
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
            "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT"),
            "batch_width": getattr(model, "batch_width", None)}
