"""Hardening: attack cases held, fuzzed inputs that never escape, and the sandbox's cost.

Figures:
- attacks: the test cases under tests/security/, counted per category (the file name), run here
  with pytest; every one must hold (pass), none may be skipped;
- fuzz: for each fuzz target (data loaders, config and prompt loaders, the served endpoint's
  body), how many Hypothesis examples ran and how many raised anything but a PromptmillError
  (must be zero);
- sandbox: the time of 10,000 renders by the sandboxed renderer against the plain
  ``jinja2.Environment`` it replaced (ceiling 1.5x), and one render against one embedded-model
  call (rendering must stay negligible).

Usage: python benchmarks/bench_hardening.py [--examples 300] [--renders 10000] [--skip-attacks]
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, emit, environment

SECURITY = ROOT / "tests" / "security"


# --- attack cases -------------------------------------------------------------------------------
def attack_cases() -> dict:
    """Run tests/security with pytest and count its cases per category."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(SECURITY), f"--junitxml={report}"], cwd=ROOT,
                              capture_output=True, text=True)
        cases = ET.parse(report).getroot().iter("testcase")
        ran, held, skipped = Counter(), Counter(), Counter()
        for case in cases:
            category = case.get("classname", "").split(".")[-1].removeprefix("test_")
            ran[category] += 1
            if case.find("skipped") is not None:
                skipped[category] += 1
            elif case.find("failure") is None and case.find("error") is None:
                held[category] += 1
    rows = {c: {"ran": ran[c], "held": held[c], "skipped": skipped[c]} for c in sorted(ran)}
    return {"per_category": rows, "ran": sum(ran.values()), "held": sum(held.values()),
            "skipped": sum(skipped.values()), "all_held": sum(held.values()) == sum(ran.values()),
            "pytest_exit": proc.returncode}


# --- fuzzing ------------------------------------------------------------------------------------
def _module(name: str):
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(SECURITY))
    spec = importlib.util.spec_from_file_location(name, SECURITY / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _serve_bodies():
    """Random bytes, random JSON values and byte-mutated valid bodies, for both endpoints."""
    from hypothesis import strategies as st

    valid = [json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode(),
             json.dumps({"prompt": "hi", "stream": True}).encode()]
    values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats()
                          | st.text(max_size=30),
                          lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                          max_leaves=12)
    mutated = st.builds(lambda body, at, junk: body[:at % (len(body) + 1)] + junk
                        + body[at % (len(body) + 1) + 1:],
                        st.sampled_from(valid), st.integers(0, 200), st.binary(max_size=4))
    body = st.one_of(st.binary(max_size=1024),
                     values.map(lambda v: json.dumps(v).encode()), mutated)
    return st.tuples(st.integers(0, 255), body).map(lambda t: bytes([t[0]]) + t[1])


def _count(strategy, call, examples: int) -> dict:
    from hypothesis import HealthCheck, given, settings

    counts: Counter = Counter()
    failures: list[str] = []

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def feed(data: bytes) -> None:
        counts["examples"] += 1
        try:
            call(data)
        except Exception as exc:  # what the property forbids: count it, go on
            counts["unexpected"] += 1
            if len(failures) < 5:
                failures.append(f"{type(exc).__name__}: {exc}"[:300])

    feed()
    return {**counts, "unexpected": counts["unexpected"], "failures": failures}


def fuzz(examples: int) -> dict:
    loaders = _module("fuzz_targets_loaders")
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in loaders.TARGETS:
            out[name] = loaders.run_target(name, examples, Path(tmp))
    serve = _module("fuzz_targets_serve")
    out["serve_body"] = _count(_serve_bodies(), serve.fuzz_serve_body, examples)
    return {"per_target": out, "examples": sum(v["examples"] for v in out.values()),
            "unexpected": sum(v["unexpected"] for v in out.values())}


# --- the sandbox's cost -------------------------------------------------------------------------
TEMPLATE = ("Review: {{ text }}\n{% if stars %}Stars: {{ stars }}{% endif %}\n"
            "First word: {{ text.split()[0] | upper }}")
INPUTS = {"text": "great product, works well", "stars": "5"}


def _best_of(fn, renders: int, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(renders):
            fn()
        best = min(best, time.perf_counter() - start)
    return best


def _legacy_renderer():
    """promptmill's renderer as it was: a plain Environment, Template.render, no limits."""
    import jinja2

    from promptmill import prompt as module

    plain = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False,
                               autoescape=False)
    return {"_compile": functools.lru_cache(maxsize=256)(plain.from_string),
            "render_limited": lambda template, inputs: template.render(**inputs)}, module


def _time_prompt(renders: int, swap: dict | None = None) -> float:
    from promptmill.prompt import Prompt

    prompt = Prompt(instruction="Classify the review.", template=TEMPLATE)
    saved = {}
    module = None
    if swap is not None:
        swap, module = swap
        saved = {name: getattr(module, name) for name in swap}
        for name, value in swap.items():
            setattr(module, name, value)
    try:
        return _best_of(lambda: prompt.render_messages(INPUTS), renders)
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


def sandbox_cost(renders: int, with_model: bool) -> dict:
    """The same prompt rendered to chat messages by the old and the sandboxed renderer."""
    from promptmill.prompt import Prompt

    old_s = _time_prompt(renders, _legacy_renderer())
    new_s = _time_prompt(renders)
    out = {"renders": renders, "plain_environment_s": round(old_s, 4),
           "sandboxed_s": round(new_s, 4), "ratio": round(new_s / old_s, 3),
           "ceiling": 1.5, "per_render_us": round(new_s / renders * 1e6, 2)}
    if with_model:
        prompt = Prompt(instruction="Classify the review.", template=TEMPLATE)
        out["model_call_s"] = round(_model_call_seconds(prompt), 4)
        out["render_share_of_a_call"] = round(new_s / renders / out["model_call_s"], 6)
    return out


def _model_call_seconds(prompt) -> float:
    from promptmill.models import GenerationParams, load_model

    model = load_model("embedded", n_ctx=1024)
    params = GenerationParams(max_tokens=8, temperature=0.0, seed=0)
    times = []
    for i in range(5):
        start = time.perf_counter()
        model.generate(prompt.render_messages({**INPUTS, "text": f"review {i}: fine"}), params)
        times.append(time.perf_counter() - start)
    model.close()
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=300, help="Hypothesis examples a target")
    parser.add_argument("--renders", type=int, default=10_000)
    parser.add_argument("--skip-attacks", action="store_true")
    parser.add_argument("--no-model", action="store_true", help="skip the model-call baseline")
    args = parser.parse_args()
    payload = {"environment": environment(), "load_average": list(os.getloadavg()),
               "sandbox": sandbox_cost(args.renders, not args.no_model),
               "fuzz": fuzz(args.examples)}
    if not args.skip_attacks:
        payload["attacks"] = attack_cases()
    emit("hardening", payload)


if __name__ == "__main__":
    main()
