"""Rebuild what a run was evaluated with, for the checks that must call the model again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import PromptmillError
from ..evaluation import Evaluator
from ..models.base import Model
from ..store.db import Store
from ..task import Example, Task
from .data import DiagnoseError, RunData


@dataclass
class Rebuilt:
    cfg: Any
    task: Task
    examples: list[Example]
    model: Model

    def evaluator(self, store: Store, logprobs: bool = False, progress: bool = False
                  ) -> Evaluator:
        from ..api import build_metric, generation_params

        cfg = self.cfg
        if logprobs:
            cfg = cfg.model_copy(update={"generation": cfg.generation.model_copy(
                update={"logprobs": True})})
        return Evaluator(self.model, build_metric(cfg), store, params=generation_params(cfg),
                         mode=cfg.model.mode, progress=progress, demo_pool=self.task.train)

    def contextualizer(self):
        from ..api import build_context

        return build_context(self.cfg, self.task, self.model)


def rebuild(data: RunData, model: Model | str | None = None) -> Rebuilt:
    """The task config, examples and model a run recorded; a clear error when they are gone."""
    from ..api import build_model, load_task, task_config_from_record

    run_id = data.run["id"]
    if "data" not in data.config:
        raise DiagnoseError(f"run {run_id} did not record its task config",
                            where=f"run {run_id}",
                            fix="evaluate through a task config (promptmill eval CONFIG) and "
                                "diagnose that run")
    try:
        cfg, task = load_task(task_config_from_record(data.config))
    except PromptmillError as exc:
        raise DiagnoseError(f"cannot reload run {run_id}'s task ({exc.one_line()})",
                            where=f"run {run_id}",
                            fix="run diagnose where the task's data files are") from None
    wanted = {r.example_id for r in data.rows}
    examples = [ex for ex in task.split(data.run["split"]) if ex.id in wanted]
    backend = model if isinstance(model, Model) else build_model(cfg, model)
    return Rebuilt(cfg=cfg, task=task, examples=examples, model=backend)


def rescore_with_logprobs(store: Store, data: RunData, model: Model | str | None = None) -> int:
    """Evaluate the run's prompt and examples again, keeping log-probabilities; the new run id."""
    if data.prompt is None:
        raise DiagnoseError(f"run {data.run['id']} has no saved prompt",
                            where=f"run {data.run['id']}", fix="evaluate with a saved prompt")
    built = rebuild(data, model)
    result = built.evaluator(store, logprobs=True, progress=True).evaluate(
        built.examples, data.prompt, task=data.run["task"], split=data.run["split"],
        prompt_name=data.prompt_name, config=data.config,
        contextualizer=built.contextualizer())
    return result.run_id
