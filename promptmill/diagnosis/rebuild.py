"""Rebuild what a run was evaluated with, for the checks that must call the model again."""

from __future__ import annotations

from dataclasses import dataclass

from ..assembly import Setup
from ..errors import PromptmillError
from ..evaluation import Evaluator
from ..models.base import Model
from ..store.db import Store
from ..task import Example
from .data import DiagnoseError, RunData


@dataclass
class Rebuilt:
    """A run's Setup (its recorded task config; the model loads on first use) and the examples
    of its split that it scored."""

    setup: Setup
    examples: list[Example]

    @property
    def task(self):
        return self.setup.task

    def evaluator(self, store: Store, progress: bool = False) -> Evaluator:
        return self.setup.evaluator(progress=progress, store=store)

    def contextualizer(self):
        return self.setup.contextualizer


def rebuild(data: RunData, model: Model | str | None = None, *, logprobs: bool = False
            ) -> Rebuilt:
    """The task config, examples and model a run recorded; a clear error when they are gone."""
    from ..api import setup, task_config_from_record

    run_id = data.run["id"]
    if "data" not in data.config:
        raise DiagnoseError(f"run {run_id} did not record its task config",
                            where=f"run {run_id}",
                            fix="evaluate through a task config (promptmill eval CONFIG) and "
                                "diagnose that run")
    try:
        built = setup(task_config_from_record(data.config), prompt=data.prompt, model=model,
                      logprobs=logprobs)
    except PromptmillError as exc:
        raise DiagnoseError(f"cannot reload run {run_id}'s task ({exc.one_line()})",
                            where=f"run {run_id}",
                            fix="run diagnose where the task's data files are") from None
    wanted = {r.example_id for r in data.rows}
    examples = [ex for ex in built.examples(data.run["split"]) if ex.id in wanted]
    return Rebuilt(setup=built, examples=examples)


def rescore_with_logprobs(store: Store, data: RunData, model: Model | str | None = None) -> int:
    """Evaluate the run's prompt and examples again, keeping log-probabilities; the new run id."""
    if data.prompt is None:
        raise DiagnoseError(f"run {data.run['id']} has no saved prompt",
                            where=f"run {data.run['id']}", fix="evaluate with a saved prompt")
    built = rebuild(data, model, logprobs=True)
    with built.setup:
        result = built.evaluator(store, progress=True).evaluate(
            built.examples, data.prompt, task=data.run["task"], split=data.run["split"],
            prompt_name=data.prompt_name, config=data.config,
            contextualizer=built.contextualizer())
    return result.run_id
