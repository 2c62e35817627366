"""``promptmill eval`` and ``promptmill demo``."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import State, console, fmt_score, fmt_seconds

EXECUTOR_HELP = ("Where model calls run: local, ray (a local Ray instance) or ray://HOST:PORT "
                 "(a cluster started with 'ray start --head'); each worker loads the model once.")


def eval_command(
    config: Path = typer.Argument(..., help="Task config (YAML)."),
    prompt: list[str] = typer.Option(None, "--prompt", "-p",
                                     help="Prompt YAML file, NAME, NAME@VERSION or NAME@TAG. "
                                          "Repeat to compare prompts."),
    model: str = typer.Option(None, "--model", "-m",
                              help="Model spec: embedded, gguf:PATH, openai:NAME, fake:TEXT."),
    split: str = typer.Option("test", "--split", help="train, validation, test or all."),
    limit: int = typer.Option(None, "--limit", min=1, help="Only the first N examples."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Call the model even when a "
                                  "cached answer exists."),
    fresh: bool = typer.Option(False, "--fresh", help="Start a new run instead of resuming an "
                               "unfinished identical one."),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level for comparisons."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    executor: str = typer.Option("local", "--executor", help=EXECUTOR_HELP),
) -> None:
    """Evaluate one or more prompts on a task split; two or more are compared pairwise."""
    run_eval(config, prompt or [None], model_spec=model, split=split, limit=limit,
             cache=not no_cache, resume=not fresh, alpha=alpha, progress=not quiet,
             executor=executor)


def run_eval(config: Path, prompts: list[str | None] | None = None, *,
             model_spec: str | None = None, split: str = "test", limit: int | None = None,
             cache: bool = True, resume: bool = True, alpha: float = 0.05,
             progress: bool = True, executor: str | None = "local") -> list:
    """What ``promptmill eval`` does, with real defaults, for any command that needs it."""
    from ..api import (
        build_context,
        build_metric,
        build_model,
        config_record,
        generation_params,
        load_task,
        resolve_prompt,
    )
    from ..evaluation import Evaluator

    store = State.store()
    cfg, task = load_task(config)
    chosen = [resolve_prompt(p, cfg, store) for p in prompts or [None]]
    examples = task.split(split)[: limit or None]
    with console.status(f"loading model {model_spec or cfg.model.name}…"):
        model = build_model(cfg, model_spec)
    runner = executor_for(executor, cfg, model_spec, model)
    evaluator = Evaluator(model, build_metric(cfg), store, params=generation_params(cfg),
                          cache=cache, mode=cfg.model.mode, progress=progress,
                          demo_pool=task.train, executor=runner)
    contextualizer = build_context(cfg, task, model)
    results = []
    try:
        for p in chosen:
            result = evaluator.evaluate(examples, p, task=cfg.name, split=split, resume=resume,
                                        config=config_record(cfg), contextualizer=contextualizer)
            if result.resumed_from:
                console.print(f"resumed run {result.run_id}: {result.resumed_from} examples "
                              "were already done")
            results.append((p, result))
    finally:
        runner.close()
        model.close()
    print_results(results, alpha)
    return results


def executor_for(choice: str | None, cfg, model_spec: str | None, model):
    """The ``--executor`` choice, started: Ray workers load the same model as ``model``."""
    from ..distributed import RayExecutor, make_executor

    spec = model_spec or cfg.model.name
    runner = make_executor(choice, spec, cfg.model.params if spec == cfg.model.name else {})
    if isinstance(runner, RayExecutor):  # fail on a missing cluster before a run is recorded
        with console.status(f"starting Ray workers ({runner.describe()})…"):
            runner.start(model.identity)
    return runner


def print_results(results: list, alpha: float) -> None:
    from rich.table import Table

    table = Table(title="Evaluation", title_justify="left")
    for col in ("run", "prompt", "score [95% CI]", "n", "errors", "calls", "cache hits",
                "tokens", "time"):
        table.add_column(col, justify="left" if col == "prompt" else "right",
                         no_wrap=col in ("prompt", "score [95% CI]"))
    for prompt, r in results:
        led = r.ledger
        table.add_row(str(r.run_id), prompt.name or r.prompt_hash[:8],
                      fmt_score(r.score.mean, r.score.low, r.score.high), str(r.n),
                      str(r.n_errors), str(led.calls), str(led.cache_hits),
                      str(led.tokens_in + led.tokens_out), fmt_seconds(led.wall_seconds))
    console.print(table)
    _print_segments(results)
    if len(results) > 1:
        from ..api import compare

        base_prompt, base = results[0]
        for prompt, r in results[1:]:
            cmp = compare(base.run_id, r.run_id, store=State.store(), alpha=alpha)
            cmp = type(cmp)(**{**cmp.__dict__, "label_a": base_prompt.name or "A",
                               "label_b": prompt.name or "B"})
            console.print(f"[bold]Verdict:[/] {cmp.verdict}")
    errors = sum(r.n_errors for _, r in results)
    if errors:
        console.print(f"[yellow]{errors} example(s) failed after retries; see "
                      "'promptmill show RUN --failures'.[/]")
    last = results[-1][1].run_id
    console.print(f"[dim]Next: promptmill show {last} --failures · promptmill runs · "
                  f"promptmill export {last}[/]")


def _print_segments(results: list) -> None:
    """Per-intent-segment scores, when the runs were routed by intent."""
    from rich.table import Table

    from ..api import segment_scores

    for _, r in results:
        by_segment = segment_scores(r.run_id, store=State.store())
        if not by_segment:
            continue
        table = Table(title=f"Run {r.run_id} by intent segment", title_justify="left")
        for col in ("segment", "score [95% CI]", "n"):
            table.add_column(col, justify="left" if col == "segment" else "right")
        for segment, est in sorted(by_segment.items()):
            table.add_row(segment, fmt_score(est.mean, est.low, est.high), str(est.n))
        console.print(table)


def demo(
    method: str = typer.Option("auto", "--method", help="Optimization method."),
    budget_calls: int = typer.Option(200, "--budget-calls", min=1),
    model: str = typer.Option(None, "--model", "-m", help="Model spec for both steps "
                              "(default: the embedded model)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
) -> None:
    """Compare two prompts, then optimize one, on the bundled sentiment task (embedded model)."""
    from .optimize import run_optimization
    from .scaffold import example_dir

    folder = example_dir()
    task = folder / "task.yaml"
    console.rule("[bold]promptmill demo 1/2: two hand-written prompts, a paired verdict")
    console.print(f"task: {task}  model: {model or 'embedded (SmolLM2-135M-Instruct)'}")
    run_eval(task, [str(folder / "prompts/plain.yaml"), str(folder / "prompts/labelled.yaml")],
             model_spec=model, progress=not quiet)
    console.rule(f"[bold]promptmill demo 2/2: optimize the plain prompt ({method}, "
                 f"{budget_calls} calls)")
    run_optimization(task, method=method, budget_calls=budget_calls, model=model,
                     progress=not quiet)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
    app.command("demo")(demo)
