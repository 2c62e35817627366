"""How many of promptfoo's own example configs promptmill reads, and runs, unchanged.

Reads every ``promptfooconfig*`` file (YAML, JSON, JS/TS) under EXAMPLES (promptfoo's
``examples/`` folder, from a checkout fetched for the benchmark and never committed), tries
:func:`promptmill.suites.promptfoo.load_promptfoo` on each, and prints JSON:

- ``loaded``: configs read into a suite;
- ``run_unchanged``: of those, configs whose every provider maps to a promptmill backend and
  that pass the checks a run makes before any model call (prompts resolved and saved to a
  throwaway store, assertion types and values, files, vars against templates);
- ``failures``: grouped by their one-line reason (file names, quoted names and numbers
  generalised, so alike failures count together), with counts and a few example files;
- the same figures for the files named exactly ``promptfooconfig.yaml``, and for every file
  with its providers swapped for promptmill models (how much of the rest of
  promptfoo's format reads: the failures that remain are not about providers).

Usage: python benchmarks/promptfoo_compat.py EXAMPLES [--list]
(``--list`` adds every file with its outcome.)
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit

CONFIG_SUFFIXES = (".yaml", ".yml", ".json", ".js", ".cjs", ".mjs", ".ts")
EXAMPLES_PER_REASON = 3


def configs(examples: Path) -> list[Path]:
    found = [p for p in examples.rglob("promptfooconfig*") if p.suffix in CONFIG_SUFFIXES
             and "node_modules" not in p.parts]
    return sorted(found)


def outcome(path: Path, store: Any) -> tuple[str, str | None]:
    """("run", None), ("loaded", reason it would not run) or ("failed", reason)."""
    from promptmill.errors import PromptmillError
    from promptmill.suites.promptfoo import load_promptfoo

    try:
        suite = load_promptfoo(path)
    except PromptmillError as exc:
        return "failed", exc.message
    try:
        check_before_calls(suite, store)
    except PromptmillError as exc:
        return "loaded", exc.message
    return "run", None


def outcome_on_our_models(path: Path, store: Any) -> tuple[str, str | None]:
    """The outcome were every provider one of promptmill's (a fake model per provider, so
    names stay distinct): what the rest of the config, promptfoo's format, makes of it."""
    from promptmill.errors import PromptmillError
    from promptmill.suites import promptfoo

    original = promptfoo.map_provider
    swapped = iter(range(1_000_000))  # one distinct fake per provider read

    def ours(provider_id: str, config: dict[str, Any], where: str, config_where: Any = None):
        try:
            return original(provider_id, config, where, config_where)
        except PromptmillError:
            return original(f"promptmill:fake:{next(swapped)}:{provider_id}", {}, where)

    promptfoo.map_provider = ours  # type: ignore[assignment]
    try:
        return outcome(path, store)
    finally:
        promptfoo.map_provider = original


def check_before_calls(suite: Any, store: Any) -> None:
    """What ``promptmill test`` checks before the first model call."""
    from promptmill.suites import checks
    from promptmill.suites.load import check_suite, resolve_prompts

    prompts = resolve_prompts(suite, store)
    check_suite(suite, prompts)
    for index in range(len(suite.cases)):
        case = suite.merged(index)
        for position, assertion in enumerate(case.assertions):
            where = f"{suite.source}: case {index + 1}, assert {position + 1}"
            rendered = assertion.model_copy(update={
                "value": checks._render(assertion.value, case.vars, where)})
            checks._plan(rendered, where)  # the assertion's value and threshold make sense


def reason_key(message: str) -> str:
    """A reason with its particulars generalised: alike failures group together."""
    text = re.sub(r"'(\w[\w.-]*):[^']*'", r"'\1:…'", message)  # provider ids keep their family
    text = re.sub(r"'(file://)?[^']*[/\\][^']*'", "'FILE'", text)
    text = re.sub(r"\(got [^)]*\)", "(got …)", text)
    text = re.sub(r"\b\d+(\.\d+)?\b", "N", text)
    return text


def summarize(results: dict[Path, tuple[str, str | None]]) -> dict[str, Any]:
    counts = Counter(kind for kind, _ in results.values())
    groups: dict[str, list[str]] = defaultdict(list)
    for path, (kind, reason) in results.items():
        if reason is not None:
            groups[f"{'load' if kind == 'failed' else 'run'}: {reason_key(reason)}"].append(
                str(path))
    failures = [{"reason": key, "count": len(files), "examples": files[:EXAMPLES_PER_REASON]}
                for key, files in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))]
    total = len(results)
    return {"configs": total, "loaded": counts["run"] + counts["loaded"],
            "run_unchanged": counts["run"],
            "loaded_pct": round(100 * (counts["run"] + counts["loaded"]) / total, 1)
            if total else 0.0,
            "run_unchanged_pct": round(100 * counts["run"] / total, 1) if total else 0.0,
            "failures": failures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", type=Path, help="promptfoo's examples/ folder")
    parser.add_argument("--list", action="store_true", help="add every file's outcome")
    args = parser.parse_args()
    if not args.examples.is_dir():
        sys.exit(f"{args.examples}: not a folder (fetch promptfoo and give its examples/)")
    logging.getLogger("promptmill.suites.promptfoo").setLevel(logging.ERROR)  # warnings off

    from promptmill.store.db import Store

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'compat.db'}")
        results = {path: outcome(path, store) for path in configs(args.examples)}
        swapped = {path: outcome_on_our_models(path, store) for path in results}
    exact = {p: r for p, r in results.items() if p.name == "promptfooconfig.yaml"}
    payload = {"examples": str(args.examples), "all_promptfooconfig_files": summarize(results),
               "promptfooconfig_yaml_only": summarize(exact),
               "with_providers_swapped_for_promptmill_models": summarize(swapped)}
    if args.list:
        payload["files"] = {str(p.relative_to(args.examples)): {"outcome": k, "reason": r}
                            for p, (k, r) in results.items()}
    emit("promptfoo_compat", payload)


if __name__ == "__main__":
    main()
