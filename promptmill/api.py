"""The Python API: the same verbs as the CLI (evaluate, compare, runs, show, export)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .assembly import (
    Setup,
    assemble,
    build_context,
    build_model,
    check_prompt_fields,
    config_record,
    generation_params,
    model_choice,
    resolve_prompt,
)
from .config import TaskConfig, load_task_config
from .errors import ConfigError, PromptmillError
from .evaluation import EvalResult
from .metrics import Metric, get_metric
from .models.base import Model
from .prompt import Prompt
from .stats import PairedComparison, paired_test
from .store.db import Store
from .task import FieldMap, Task, load_examples

# Most building blocks live in promptmill.assembly; these names stay importable from here.
__all__ = ["Setup", "build_context", "build_metric", "build_model", "check_prompt_fields",
           "compare", "config_record", "evaluate", "export", "field_map", "generation_params",
           "load_task", "model_choice", "resolve_prompt", "runs", "segment_scores", "setup",
           "show", "task_config_from_record"]


def load_task(config: TaskConfig | str | Path) -> tuple[TaskConfig, Task]:
    """Read a task config and its data, and split it deterministically."""
    cfg = config if isinstance(config, TaskConfig) else load_task_config(config)
    examples = load_examples(cfg.data_path(), field_map(cfg))
    sizes = cfg.splits.model_dump(exclude={"seed"})
    return cfg, Task.from_examples(cfg.name, examples, sizes, seed=cfg.splits.seed)


def field_map(cfg: TaskConfig) -> FieldMap:
    return FieldMap(inputs=tuple(cfg.data.input), target=cfg.data.target,
                    answers=cfg.data.answers, id=cfg.data.id)


def build_metric(cfg: TaskConfig) -> Metric:
    from .ratings_binding import bind_ratings  # the human metric reads ratings the store lends

    return bind_ratings(get_metric(cfg.metric.name, cfg.metric.params, base_dir=cfg.base_dir))


def setup(config: TaskConfig | str | Path, *, prompt: str | Prompt | None = None,
          model: str | Model | None = None, store: Store | None = None,
          metric: Metric | None = None, logprobs: bool = False,
          prompt_label: str | None = None) -> Setup:
    """The one assembly path from a task config: its task, the prompt resolved and checked
    (``prompt`` as ``resolve_prompt`` takes it; None for the config's), the metric, the
    generation params (``logprobs`` forces log-probabilities on) and the model, loaded on
    first use unless a Model is given. Close it, or use it as a context manager.
    ``prompt_label`` names a given Prompt object in errors.
    """
    cfg, task = load_task(config)
    chosen = resolve_prompt(prompt, cfg, store, prompt_label)
    return assemble(cfg, task, chosen, build_metric(cfg) if metric is None else metric,
                    model=model, store=store, logprobs=logprobs)


def evaluate(config: TaskConfig | str | Path, prompt: str | Prompt | None = None, *,
             model: str | Model | None = None, split: str = "test", store: Store | None = None,
             cache: bool = True, limit: int | None = None, progress: bool = False,
             resume: bool = True) -> EvalResult:
    """Evaluate a prompt on one split of a task and keep every call and score in the store."""
    with setup(config, prompt=prompt, model=model, store=store or Store()) as s:
        return s.evaluator(cache=cache, progress=progress).evaluate(
            s.examples(split, limit), s.prompt, task=s.cfg.name, split=split, resume=resume,
            config=s.record(), contextualizer=s.contextualizer)


def segment_scores(run_id: int, *, store: Store | None = None) -> dict[str, Any]:
    """Scores per intent segment of a run (empty when the run was not routed)."""
    from .context.intent import scores_by_segment

    store = store or Store()
    segments = store.segments_by_example(run_id)
    if not segments:
        return {}
    return scores_by_segment(segments, store.scores_by_example(run_id))


def task_config_from_record(record: dict[str, Any]) -> TaskConfig:
    """Rebuild the task config a run recorded, for a replay."""
    fields = {k: v for k, v in record.items() if k in TaskConfig.model_fields}
    return TaskConfig.model_validate({**fields, "base_dir": Path(record.get("base_dir", "."))})


def compare(run_a: int, run_b: int, *, store: Store | None = None,
            alpha: float = 0.05) -> PairedComparison:
    """Paired test of two runs over the examples both have scored."""
    store = store or Store()
    a, b = store.get_run(run_a), store.get_run(run_b)
    scores_a, scores_b = store.scores_by_example(a["id"]), store.scores_by_example(b["id"])
    shared = sorted(set(scores_a) & set(scores_b))
    if not shared:
        raise PromptmillError(f"runs {run_a} and {run_b} share no examples",
                              fix="compare runs on the same task and split")
    return paired_test([scores_a[k] for k in shared], [scores_b[k] for k in shared], alpha=alpha,
                       label_a=f"run {run_a}", label_b=f"run {run_b}")


def runs(*, store: Store | None = None, limit: int = 50, task: str | None = None
         ) -> list[dict[str, Any]]:
    return (store or Store()).list_runs(limit=limit, task=task)


def show(run_id: int, *, store: Store | None = None, failures: bool = False
         ) -> Iterator[dict[str, Any]]:
    store = store or Store()
    store.get_run(run_id)
    return store.iter_results(run_id, failures_only=failures)


EXPORT_FIELDS = ["example_id", "idx", "inputs", "target", "answers", "output", "score",
                 "feedback", "error", "tokens_in", "tokens_out", "seconds", "cached"]


def export(run_id: int, path: str | Path, fmt: str = "jsonl", *, store: Store | None = None
           ) -> int:
    """Write a run's per-example results to JSONL or CSV; returns the number of rows."""
    if fmt not in ("jsonl", "csv"):
        raise ConfigError(f"unknown export format '{fmt}'", where="--format",
                          fix="use jsonl or csv")
    rows = show(run_id, store=store)
    count = 0
    with Path(path).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, EXPORT_FIELDS, extrasaction="ignore") if fmt == "csv" else None
        if writer:
            writer.writeheader()
        for row in rows:
            if writer:
                writer.writerow(row)
            else:
                fh.write(json.dumps({k: row[k] for k in EXPORT_FIELDS}, ensure_ascii=False) + "\n")
            count += 1
    return count
