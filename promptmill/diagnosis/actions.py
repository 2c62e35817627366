"""The diagnose steps that call the model or write to the store: robustness, re-scoring with
logprobs, and saving applied suggestions as a new prompt version."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import PromptmillError
from ..store.db import Store
from .core import Diagnosis
from .data import DiagnoseError, RunData
from .rebuild import rebuild
from .robustness import KINDS, RobustnessCheck
from .suggest import Suggestion, apply_suggestions


def check_robustness(store: Store, data: RunData, *, n: int = 30, variants: int = 2,
                     kinds: Sequence[str] = KINDS, seed: int = 0, model=None, proposer=None,
                     on_step: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Score perturbed prompts and inputs on a seeded sample of the run's examples."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise DiagnoseError(f"unknown perturbation '{unknown[0]}'", where="--kinds",
                            fix="use some of: " + ", ".join(KINDS))
    if data.prompt is None:
        raise DiagnoseError(f"run {data.run['id']} has no saved prompt",
                            where=f"run {data.run['id']}", fix="evaluate with a saved prompt")
    built = rebuild(data, model)
    sample = list(built.examples)
    random.Random(seed).shuffle(sample)
    sample = sorted(sample[:n], key=lambda ex: ex.id)
    if not sample:
        raise DiagnoseError(f"run {data.run['id']}'s examples are no longer in its task data",
                            where=f"run {data.run['id']}", fix="check the task's data file")
    check = RobustnessCheck(built.evaluator(store), data.prompt, sample, store=store,
                            proposer=proposer, contextualizer=built.contextualizer(),
                            variants=variants, seed=seed, threshold=data.threshold,
                            on_step=on_step)
    return [r.to_dict() for r in check.run(tuple(kinds))]


def choose(diagnosis: Diagnosis, wanted: Sequence[str]) -> list[Suggestion]:
    actionable = [s for s in diagnosis.suggestions if s.action]
    if list(wanted) == ["all"]:
        return actionable
    by_id = {s.id: s for s in diagnosis.suggestions}
    chosen = []
    for sid in wanted:
        if sid not in by_id:
            raise DiagnoseError(f"no suggestion '{sid}' for run {diagnosis.run['id']}",
                                where="--apply",
                                fix="use one of: " + (", ".join(by_id) or "(none)") + " or all")
        if by_id[sid].action is None:
            raise DiagnoseError(f"suggestion '{sid}' is advice only and cannot be applied",
                                where="--apply",
                                fix="apply one with an action: " +
                                    (", ".join(s.id for s in actionable) or "(none)"))
        chosen.append(by_id[sid])
    return chosen


def save_applied(store: Store, diagnosis: Diagnosis, wanted: Sequence[str]
                 ) -> tuple[dict[str, Any], list[Suggestion]]:
    """Apply suggestions to the run's prompt and save the result as its next version."""
    data = diagnosis.data
    if data is None or data.prompt is None or data.prompt_name is None:  # saved together
        raise DiagnoseError("this run has no saved prompt to change", where="--apply",
                            fix="evaluate with a saved prompt")
    chosen = choose(diagnosis, wanted)
    if not chosen:
        raise DiagnoseError(f"run {data.run['id']} has no suggestion to apply", where="--apply",
                            fix="there is nothing mechanical to change; try promptmill optimize")
    try:
        train = rebuild(data).task.train
    except PromptmillError:
        train = []  # labels and demos then come only from the prompt itself
    confused: list[str] = next((c.get("detail", {}).get("labels", []) for c in diagnosis.categories
                     if c["category"] == "wrong_label"), [])
    new = apply_suggestions(data.prompt, chosen, train, confused)
    if new.hash == data.prompt.hash:
        raise DiagnoseError("the suggestions change nothing in this prompt", where="--apply",
                            fix="the prompt already has these fixes; try promptmill optimize")
    note = f"diagnose run {data.run['id']}: " + ", ".join(s.id for s in chosen)
    saved = store.save_prompt(data.prompt_name, new.content(), new.hash,
                              parent_id=data.run["prompt_id"], note=note)
    return saved, chosen
