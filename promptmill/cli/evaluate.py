"""``promptmill eval``: evaluate prompts on a task split, compared pairwise."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import EXECUTOR_HELP
from .eval_flow import run_eval


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
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show the model's "
                                 "runtime settings (threads, OpenMP wait policy, batch width)."),
) -> None:
    """Evaluate one or more prompts on a task split; two or more are compared pairwise."""
    refs: list[str | None] = list(prompt) if prompt else [None]  # None: the config's prompt
    run_eval(config, refs, model_spec=model, split=split, limit=limit,
             cache=not no_cache, resume=not fresh, alpha=alpha, progress=not quiet,
             executor=executor, verbose=verbose)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
