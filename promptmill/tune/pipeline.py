"""Prompt, then model, then prompt again: optimize the prompt on the base model, tune the model
under that prompt, re-optimize the prompt for the tuned model. Every stage is scored on the
test split (which no stage searched on) and compared with the seed prompt on the base model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..evaluation import Evaluator
from ..metrics import Metric
from ..models.base import GenerationParams, Model
from ..optimize import Budget, optimize
from ..prompt import Prompt
from ..stats import mean_ci, paired_test
from ..store.db import Store
from ..task import Task
from .settings import TuneSettings


@dataclass
class Stage:
    name: str
    model: str
    prompt: Prompt
    scores: list[float]
    extra: dict[str, Any]

    def row(self, seed_scores: list[float]) -> dict[str, Any]:
        est = mean_ci(self.scores)
        cmp = paired_test(seed_scores, self.scores, label_a="seed", label_b=self.name)
        return {"stage": self.name, "model": self.model, "prompt_hash": self.prompt.hash,
                "test": est.mean, "ci": [est.low, est.high], "p_vs_seed": cmp.p_value,
                "verdict": cmp.verdict, **self.extra}


def test_scores(model: Model, metric: Metric, store: Store, task: Task, prompt: Prompt,
                params: GenerationParams) -> list[float]:
    """A recorded test run; PyTorch backends answer in batches through the call cache."""
    evaluator = Evaluator(model, metric, store, params=params, progress=False,
                          demo_pool=task.train)
    if model.batch_width > 1:
        from .batch_eval import warm_cache

        warm_cache(evaluator, prompt, task.test)
    result = evaluator.evaluate(task.test, prompt, task=task.name, split="test")
    return [result.scores[ex.id] for ex in task.test]


def run_pipeline(task: Task, seed_prompt: Prompt, metric: Metric, *, name: str,
                 base: str = "embedded", store: Store | None = None,
                 params: GenerationParams | None = None, budget_calls: int = 100,
                 settings: TuneSettings | None = None, method: str = "auto",
                 threads: int | None = None, progress: bool = False, seed: int = 0
                 ) -> list[dict[str, Any]]:
    """The four stages' test scores, each with a paired test against the seed stage."""
    from ..models.transformers_model import TransformersModel
    from .backend import hf_model
    from .registry import get_adapter, load_tuned
    from .train import tune

    store = store or Store()
    params = params or GenerationParams()
    base_model = hf_model(base, threads=threads)
    budget = Budget(calls=budget_calls)
    seed_stage = Stage("seed", base_model.spec, seed_prompt,
                       test_scores(base_model, metric, store, task, seed_prompt, params), {})
    first = optimize(task, seed_prompt, base_model, metric=metric, budget=budget, method=method,
                     store=store, params=params, seed=seed)
    optimized = Stage("optimized prompt", base_model.spec, first.best_prompt,
                      test_scores(base_model, metric, store, task, first.best_prompt, params),
                      {"search_calls": first.spend["calls"]})
    tuned = tune(task, first.best_prompt, metric, name=name, base=base, settings=settings,
                 store=store, params=params, threads=threads, progress=progress)
    model, tokenizer, identity = load_tuned(get_adapter(store, name))
    tuned_model = TransformersModel(model, tokenizer, identity, f"tuned:{name}", threads)
    tuned_stage = Stage("optimized prompt + tuned", tuned_model.spec, first.best_prompt,
                        test_scores(tuned_model, metric, store, task, first.best_prompt,
                                    params),
                        {"best_validation": tuned.best_score, "train_steps": tuned.steps})
    second = optimize(task, first.best_prompt, tuned_model, metric=metric, budget=budget,
                      method=method, store=store, params=params, seed=seed,
                      proposer=base_model)
    final = Stage("re-optimized prompt + tuned", tuned_model.spec, second.best_prompt,
                  test_scores(tuned_model, metric, store, task, second.best_prompt, params),
                  {"search_calls": second.spend["calls"]})
    stages = [seed_stage, optimized, tuned_stage, final]
    return [s.row(seed_stage.scores) for s in stages]
