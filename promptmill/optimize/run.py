"""Run an optimization end to end, under the protocol.

1. The search sees train and validation only; the seed is scored on validation first.
2. A candidate replaces the incumbent only when a paired test on validation says so.
3. The seed and the winner are then evaluated on the test split, which the search never saw;
   the reported gain is that paired comparison.
4. Every step is in the store. Running the same optimization again replays the finished part
   from the cache and carries on where it stopped.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from ..context.base import Contextualizer
from ..distributed import Executor
from ..errors import ConfigError, PromptmillError
from ..evaluation import EvalResult, Evaluator, announce_wait
from ..metrics import Metric
from ..models.base import GenerationParams, Model, request_text
from ..prompt import Prompt, canonical_json, sha256_hex
from ..rendering import Renderer
from ..stats import PairedComparison, paired_test
from ..store.db import Store, utcnow
from ..task import Task
from .base import Optimizer
from .budget import Budget, BudgetExhausted
from .context import Candidate, EventHook, OptimizationContext
from .gate import AcceptanceGate
from .registry import get_optimizer

MIN_VALIDATION = 5
MIN_TEST = 5
OVERFIT_GAP = 0.15


@dataclass
class OptimizationResult:
    run_id: int
    method: str
    seed_prompt: Prompt
    best_prompt: Prompt
    best_version: dict[str, Any]
    candidates: list[Candidate]
    spend: dict[str, Any]
    seed_validation: float
    best_validation: float
    seed_test: EvalResult
    best_test: EvalResult
    comparison: PairedComparison
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "method": self.method,
                "best_prompt_version": self.best_version.get("version"),
                "best_candidate_origin": next((c.origin for c in self.candidates
                                               if c.prompt.hash == self.best_prompt.hash), None),
                "candidates": len(self.candidates), "spend": self.spend,
                "seed_validation": self.seed_validation,
                "best_validation": self.best_validation,
                "seed_test": self.seed_test.to_dict(), "best_test": self.best_test.to_dict(),
                "test_comparison": self.comparison.to_dict(), "warnings": self.warnings}


def check_protocol(task: Task, budget: Budget) -> None:
    """Refuse, before any call, what cannot give an honest result."""
    needs = {"train": 1, "validation": MIN_VALIDATION, "test": MIN_TEST}
    for split, minimum in needs.items():
        have = len(task.split(split))
        if have < minimum:
            raise ConfigError(f"the {split} split has {have} examples; optimizing needs at least "
                              f"{minimum}", where="splits",
                              fix=f"give '{split}' at least {minimum} examples "
                                  f"(the task has {len(task.split('all'))} in all)")
    floor = 2 * len(task.validation)
    if budget.calls is not None and budget.calls < floor:
        raise ConfigError(f"a budget of {budget.calls} calls cannot score the seed and one "
                          f"candidate on {len(task.validation)} validation examples",
                          where="--budget-calls", fix=f"give at least {floor} calls, or a "
                          "smaller validation split")


def estimate(task: Task, seed: Prompt, budget: Budget, params: GenerationParams,
             renderer: Renderer) -> dict[str, Any]:
    """A dry run: what the budget allows, in calls, tokens and the final test evaluation.

    ``renderer`` renders the seed as the search would (``Renderer(mode=..., demo_pool=train)``);
    no model is loaded or called.
    """
    words = [len(request_text(renderer.render(seed, ex)).split())
             for ex in task.validation[:20]]
    per_call = int(1.4 * sum(words) / max(1, len(words))) + params.max_tokens
    calls = budget.calls if budget.calls is not None else (budget.tokens or 0) // max(1, per_call)
    return {"search_calls": calls, "tokens_per_call_estimate": per_call,
            "search_tokens_estimate": calls * per_call,
            "test_calls": 2 * len(task.test), "validation_examples": len(task.validation),
            "candidates_fully_scored_at_most": max(0, calls // max(1, len(task.validation)) - 1),
            "seconds_limit": budget.seconds}


def fingerprint(task: Task, seed: Prompt, model: Model, proposer: Model, metric: Metric,
                params: GenerationParams, method: dict, budget: Budget, gate: AcceptanceGate,
                seed_value: int, context: dict[str, Any] | None = None) -> str:
    ids = [ex.id for ex in (*task.train, *task.validation)]
    body = {"task": task.name, "ids": sha256_hex("\n".join(ids)), "seed_prompt": seed.hash,
            "model": model.identity, "proposer": proposer.identity,
            "metric": metric.describe(), "params": params.to_dict(), "method": method,
            "budget": budget.to_dict(), "gate": [gate.alpha, gate.enabled], "seed": seed_value}
    if context:  # absent without a context, so earlier runs keep their fingerprints
        body["context"] = context
    return sha256_hex(canonical_json(body))[:32]


def optimize(task: Task, seed_prompt: Prompt, model: Model, *, metric: Metric, budget: Budget,
             method: str | Optimizer = "auto", options: dict[str, Any] | None = None,
             proposer: Model | None = None, store: Store | None = None,
             params: GenerationParams | None = None, alpha: float = 0.05, gate: bool = True,
             seed: int = 0, mode: str = "chat", prompt_name: str | None = None,
             on_event: EventHook | None = None, config: dict[str, Any] | None = None,
             resume: bool = True,
             contextualizer: Contextualizer | None = None,
             executor: Executor | None = None) -> OptimizationResult:
    """Search for a better prompt on train+validation; report seed vs best on test.

    ``contextualizer`` (a task config's ``context:`` chain) shapes every prompt per example
    during the search and the test evaluation alike, so the optimized prompt is measured the
    way it will be used. ``executor`` (``promptmill.distributed``) runs the task model's calls,
    candidate scoring and the test evaluation alike, e.g. across a Ray cluster.
    """
    store = store or Store()
    params = params or GenerationParams()
    proposer = proposer or model
    check_protocol(task, budget)
    # a registered name, or an instance (promptmill.testing passes the one under test)
    optimizer = (method if isinstance(method, Optimizer)
                 else get_optimizer(method, **(options or {})))
    acceptance = AcceptanceGate(alpha=alpha, enabled=gate)
    key = fingerprint(task, seed_prompt, model, proposer, metric, params,
                      optimizer.describe(), budget, acceptance, seed,
                      contextualizer.describe() if contextualizer is not None else None)
    # the same optimization started twice at once: the second waits for the first to finish,
    # then replays it from the store's cache (no new model calls) instead of racing it
    with store.lease(f"optimize:{key}", on_wait=announce_wait("optimized")) as lease:
        run_id = _open_run(store, key, task, seed_prompt, model, proposer, metric, optimizer,
                           budget, acceptance, seed, config, resume, prompt_name)
        lease.attach(run_id)
        started = time.perf_counter()
        ctx = OptimizationContext(train=task.train, validation=task.validation, model=model,
                                  metric=metric, store=store, budget=budget, params=params,
                                  proposer=proposer, gate=acceptance, seed=seed, mode=mode,
                                  run_id=run_id, on_event=on_event, contextualizer=contextualizer,
                                  executor=executor)
        try:
            _search(ctx, optimizer, seed_prompt)
            result = _report(ctx, task, seed_prompt, optimizer, store, run_id, prompt_name, params,
                             mode, config)
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            message = exc.one_line() if isinstance(exc, PromptmillError) else str(exc)
            store.stop_run(run_id, status, message,  # best effort: the disk may be full
                           wall_seconds=time.perf_counter() - started, **_ledger(ctx))
            raise
        store.update_run(run_id, status="finished", finished_at=utcnow(),
                         wall_seconds=time.perf_counter() - started,
                         score_sum=result.best_validation * len(task.validation),
                         n_done=len(task.validation), config=_with_summary(store, run_id, result),
                         **_ledger(ctx))
        return result


def _search(ctx: OptimizationContext, optimizer, seed_prompt: Prompt) -> None:
    seed = ctx.add_seed(seed_prompt)
    ctx.event("start", seed, detail={"method": optimizer.describe(),
                                     "budget": ctx.spend.budget.to_dict()})
    ctx.consider(seed)
    try:
        optimizer.optimize(ctx)
        ctx.event("search finished")
    except BudgetExhausted as exc:
        ctx.event("budget exhausted", detail={"reason": str(exc)})


def _report(ctx: OptimizationContext, task: Task, seed_prompt: Prompt, optimizer, store: Store,
            run_id: int, prompt_name: str | None, params: GenerationParams,
            mode: str, config: dict[str, Any] | None) -> OptimizationResult:
    name = prompt_name or seed_prompt.name or task.name
    seed_cand, best = ctx.candidates[0], ctx.incumbent or ctx.candidates[0]
    seed_row = store.save_prompt(name, seed_prompt.content(), seed_prompt.hash)
    best_prompt = best.prompt.model_copy(update={"name": name})
    best_row = store.save_prompt(name, best_prompt.content(), best_prompt.hash,
                                 parent_id=seed_row["id"] if best is not seed_cand else None,
                                 note=f"{optimizer.name} run {run_id}: {best.origin}")
    evaluator = Evaluator(ctx.model, ctx.metric, store, params=params, progress=False, mode=mode,
                          demo_pool=task.train, executor=ctx.evaluator.executor)
    seed_test, best_test = (evaluator.evaluate(task.test, prompt, task=task.name, split="test",
                                               prompt_name=name, parent_run_id=run_id,
                                               config=config,
                                               contextualizer=ctx.contextualizer)
                            for prompt in (seed_prompt, best_prompt))
    shared = sorted(set(seed_test.scores) & set(best_test.scores))
    comparison = paired_test([seed_test.scores[k] for k in shared],
                             [best_test.scores[k] for k in shared],
                             label_a="seed", label_b="optimized")
    warnings = []
    gap = best.mean() - best_test.score.mean
    if best is not seed_cand and gap > OVERFIT_GAP:
        warnings.append(f"possible overfitting: validation {best.mean():.3f} vs test "
                        f"{best_test.score.mean:.3f} (gap {gap:.3f} > {OVERFIT_GAP})")
    if comparison.winner == "seed":
        warnings.append("the optimized prompt is significantly worse than the seed on test")
    ctx.event("report", best, detail={"seed_test": seed_test.score.mean,
                                      "best_test": best_test.score.mean,
                                      "p_value": comparison.p_value, "warnings": warnings})
    return OptimizationResult(run_id, optimizer.name, seed_prompt, best_prompt, best_row,
                              ctx.candidates, ctx.spend.to_dict(), seed_cand.mean(), best.mean(),
                              seed_test, best_test, comparison, warnings)


def _open_run(store, key, task, seed_prompt, model, proposer, metric, optimizer, budget,
              acceptance, seed, config, resume, prompt_name) -> int:
    existing = store.find_resumable_run(key) if resume else None
    if existing is not None:
        store.reset_search(existing["id"])  # replayed from the cache, step by step
        store.update_run(existing["id"], status="running", error=None)
        return existing["id"]
    record = {**(config or {}), "optimizer": optimizer.describe(), "budget": budget.to_dict(),
              "alpha": acceptance.alpha, "gate": acceptance.enabled,
              "proposer": proposer.identity, "prompt_name": prompt_name,
              "seed_prompt": seed_prompt.content()}
    return store.create_run(kind="optimize", task=task.name, split="validation",
                            model=getattr(model, "spec", model.identity),
                            model_identity=model.identity, metric=metric.describe(),
                            prompt_hash=seed_prompt.hash, fingerprint=key, seed=seed,
                            config=json.dumps(record, default=str),
                            n_examples=len(task.validation))


def _ledger(ctx: OptimizationContext) -> dict[str, Any]:
    fresh = ctx.spend.fresh  # real calls only: cache hits cost nothing
    return {"calls": fresh.calls, "cache_hits": fresh.cache_hits, "tokens_in": fresh.tokens_in,
            "tokens_out": fresh.tokens_out, "model_seconds": fresh.model_seconds}


def _with_summary(store: Store, run_id: int, result: OptimizationResult) -> str:
    record = json.loads(store.get_run(run_id)["config"])
    record["result"] = result.summary()
    return json.dumps(record, default=str)
