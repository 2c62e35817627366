"""The Python API: the same verbs as the CLI (evaluate, compare, runs, show, export)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .config import TaskConfig, load_task_config
from .errors import ConfigError, PromptmillError, TemplateError
from .evaluation import EvalResult, Evaluator
from .metrics import Metric, get_metric
from .models.base import GenerationParams, Model
from .models.registry import load_model
from .prompt import Prompt, parse_prompt_ref
from .stats import PairedComparison, paired_test
from .store.db import Store
from .task import FieldMap, Task, load_examples


def load_task(config: TaskConfig | str | Path) -> tuple[TaskConfig, Task]:
    """Read a task config and its data, and split it deterministically."""
    cfg = config if isinstance(config, TaskConfig) else load_task_config(config)
    examples = load_examples(cfg.data_path(), field_map(cfg))
    sizes = cfg.splits.model_dump(exclude={"seed"})
    return cfg, Task.from_examples(cfg.name, examples, sizes, seed=cfg.splits.seed)


def field_map(cfg: TaskConfig) -> FieldMap:
    return FieldMap(inputs=tuple(cfg.data.input), target=cfg.data.target,
                    answers=cfg.data.answers, id=cfg.data.id)


def check_prompt_fields(prompt: Prompt, cfg: TaskConfig, where: str) -> Prompt:
    """A template variable the data does not have is an error before any call is made."""
    unknown = sorted(_template_variables(prompt, where) - set(cfg.data.input))
    if unknown:
        raise ConfigError(f"the prompt template uses '{unknown[0]}', which is not an input field "
                          f"(inputs: {', '.join(cfg.data.input)})", where=where,
                          fix=f"add '{unknown[0]}' to data.input in {cfg.source} or change the "
                              "template")
    return prompt


def _template_variables(prompt: Prompt, where: str) -> set[str]:
    """The template's variables; a template that does not parse names the prompt and line."""
    import jinja2

    try:
        return prompt.variables()
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error at line {exc.lineno}: {exc.message}",
                            where=where, fix="check the {{ }} and {% %} pairs in the template"
                            ) from None
    except RecursionError:
        raise TemplateError("the template nests too deeply to parse", where=where,
                            fix="flatten the nested expressions") from None


def resolve_prompt(ref: str | Prompt | None, cfg: TaskConfig, store: Store) -> Prompt:
    """A Prompt object, a YAML file path, or NAME[@VERSION|@TAG] from the store."""
    if ref is None:
        prompt = cfg.prompt if cfg.prompt.name else cfg.prompt.model_copy(update={"name": cfg.name})
        where = (f"{cfg.prompt_source}: template" if cfg.prompt_source
                 else f"{cfg.source}: prompt.template")
        return check_prompt_fields(prompt, cfg, where)
    if isinstance(ref, Prompt):
        return check_prompt_fields(ref, cfg, f"prompt '{ref.name or ref.hash}'")
    path = Path(ref)
    if path.suffix in (".yaml", ".yml", ".json") or path.exists():
        prompt = Prompt.from_file(path)
        prompt = prompt if prompt.name else prompt.model_copy(update={"name": path.stem})
        return check_prompt_fields(prompt, cfg, f"{path}: template")
    name, version = parse_prompt_ref(ref)
    row = store.get_prompt(name, version)
    prompt = Prompt.model_validate({**json.loads(row["body"]), "name": name})
    return check_prompt_fields(prompt, cfg, f"prompt {name}@{row['version']}")


def build_model(cfg: TaskConfig, spec: str | None = None) -> Model:
    if spec is None:
        return load_model(cfg.model.name, **cfg.model.params)
    return load_model(spec, **(cfg.model.params if spec == cfg.model.name else {}))


def build_metric(cfg: TaskConfig) -> Metric:
    from .store.ratings import bind_ratings  # the human metric reads ratings the store lends

    return bind_ratings(get_metric(cfg.metric.name, cfg.metric.params, base_dir=cfg.base_dir))


def generation_params(cfg: TaskConfig) -> GenerationParams:
    g = cfg.generation
    return GenerationParams(max_tokens=g.max_tokens, temperature=g.temperature, top_p=g.top_p,
                            seed=g.seed, stop=tuple(g.stop), logprobs=g.logprobs)


def evaluate(config: TaskConfig | str | Path, prompt: str | Prompt | None = None, *,
             model: str | Model | None = None, split: str = "test", store: Store | None = None,
             cache: bool = True, limit: int | None = None, progress: bool = False,
             resume: bool = True) -> EvalResult:
    """Evaluate a prompt on one split of a task and keep every call and score in the store."""
    cfg, task = load_task(config)
    store = store or Store()
    chosen = resolve_prompt(prompt, cfg, store)
    backend = model if isinstance(model, Model) else build_model(cfg, model)
    examples = task.split(split)[: limit or None]
    evaluator = Evaluator(backend, build_metric(cfg), store, params=generation_params(cfg),
                          cache=cache, mode=cfg.model.mode, progress=progress,
                          demo_pool=task.train)
    return evaluator.evaluate(examples, chosen, task=cfg.name, split=split, resume=resume,
                              config=config_record(cfg),
                              contextualizer=build_context(cfg, task, backend))


def build_context(cfg: TaskConfig, task: Task, model: Model):
    """The contextualizer chain of the config's ``context:`` section, or None."""
    from .context.factory import build_contextualizer

    return build_contextualizer(cfg.context, task, model, base_dir=cfg.base_dir,
                                reserve_output=cfg.generation.max_tokens, source=cfg.source)


def segment_scores(run_id: int, *, store: Store | None = None) -> dict[str, Any]:
    """Scores per intent segment of a run (empty when the run was not routed)."""
    from .context.intent import scores_by_segment

    store = store or Store()
    segments = store.segments_by_example(run_id)
    if not segments:
        return {}
    return scores_by_segment(segments, store.scores_by_example(run_id))


def config_record(cfg: TaskConfig) -> dict[str, Any]:
    """What a run keeps of its config: enough to rebuild the task for a replay."""
    return {**cfg.model_dump(mode="json"), "base_dir": str(cfg.base_dir.resolve())}


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
