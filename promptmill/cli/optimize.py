"""``promptmill optimize``: search for a better prompt, live, and report it on the test split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from .common import EXECUTOR_HELP
from .optimize_flow import run_optimization


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    from ..errors import ConfigError

    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"bad option '{pair}'", where="--option", fix="write KEY=VALUE")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def optimize_command(
    config: Path = typer.Argument(..., help="Task config (YAML)."),
    method: str = typer.Option("auto", "--method", help="ape, opro, protegi, evolve, mipro, "
                               "fewshot or auto."),
    budget_calls: int = typer.Option(None, "--budget-calls", min=1,
                                     help="Most model calls the search may make."),
    budget_tokens: int = typer.Option(None, "--budget-tokens", min=1),
    budget_seconds: float = typer.Option(None, "--budget-seconds", min=1),
    prompt: str = typer.Option(None, "--prompt", "-p", help="Seed prompt (default: the "
                               "config's)."),
    model: str = typer.Option(None, "--model", "-m", help="Task model spec."),
    proposer: str = typer.Option(None, "--proposer", help="Model that writes prompts "
                                 "(default: the task model)."),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level of the gate."),
    no_gate: bool = typer.Option(False, "--no-gate", help="Accept any higher validation mean "
                                 "(not recommended)."),
    seed: int = typer.Option(0, "--seed"),
    option: list[str] = typer.Option(None, "--option", "-o", help="Method option KEY=VALUE."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Estimate the cost; make no call."),
    fresh: bool = typer.Option(False, "--fresh", help="Start over instead of resuming."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live display."),
    human_feedback: bool = typer.Option(False, "--human-feedback", help="Add reviewers' "
                                        "rating comments (from 'promptmill ui') to the "
                                        "feedback the optimizer reads."),
    executor: str = typer.Option("local", "--executor", help=EXECUTOR_HELP),
    limit: int = typer.Option(None, "--limit", min=1, help="Cap validation and test at N "
                              "examples for a quick look (small splits detect only large "
                              "gains)."),
) -> None:
    """Optimize a prompt on train+validation; report seed vs optimized on test."""
    run_optimization(config, method=method, budget_calls=budget_calls,
                     budget_tokens=budget_tokens, budget_seconds=budget_seconds, prompt=prompt,
                     model=model, proposer=proposer, alpha=alpha, gate=not no_gate, seed=seed,
                     options=parse_options(option), dry_run=dry_run, resume=not fresh,
                     progress=not quiet, human_feedback=human_feedback, executor=executor,
                     limit=limit)


def register(app: typer.Typer) -> None:
    app.command("optimize")(optimize_command)
