"""``promptmill optimize``: search for a better prompt, live, and report it on the test split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from .common import State, console, fmt_score, fmt_seconds
from .evaluate import EXECUTOR_HELP, executor_for


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


def _with_human_feedback(metric, record, store, task: str, wanted: bool):
    """Reviewers' comments join the metric's feedback; the run keeps a snapshot for replay."""
    if not wanted:
        return metric, record
    from ..metrics.human import WithReviewerComments
    from ..store.ratings import rating_feedback

    comments = rating_feedback(store, task)
    if not comments:
        console.print(f"no rating comments for task '{task}' yet: rate outputs in "
                      "'promptmill ui' first; optimizing with the metric's feedback only")
        return metric, record
    console.print(f"showing the proposer {sum(map(len, comments.values()))} reviewer comments "
                  f"on {len(comments)} examples")
    return WithReviewerComments(metric, comments), {**record, "human_feedback": comments}


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
) -> None:
    """Optimize a prompt on train+validation; report seed vs optimized on test."""
    run_optimization(config, method=method, budget_calls=budget_calls,
                     budget_tokens=budget_tokens, budget_seconds=budget_seconds, prompt=prompt,
                     model=model, proposer=proposer, alpha=alpha, gate=not no_gate, seed=seed,
                     options=parse_options(option), dry_run=dry_run, resume=not fresh,
                     progress=not quiet, human_feedback=human_feedback, executor=executor)


def run_optimization(config: Path, *, method: str = "auto", budget_calls: int | None = None,
                     budget_tokens: int | None = None, budget_seconds: float | None = None,
                     prompt: str | None = None, model: str | None = None,
                     proposer: str | None = None, alpha: float = 0.05, gate: bool = True,
                     seed: int = 0, options: dict[str, Any] | None = None,
                     dry_run: bool = False, resume: bool = True, progress: bool = True,
                     human_feedback: bool = False, executor: str | None = "local") -> None:
    """What ``promptmill optimize`` does, with real defaults, for any command that needs it.

    Commands never call each other: a Typer command's defaults are ``OptionInfo`` objects,
    which are truthy, so calling one as a function turns on every flag it was not given.
    """
    from ..api import build_metric, config_record, generation_params, load_task, resolve_prompt
    from ..optimize import Budget
    from ..optimize.registry import get_optimizer
    from ..optimize.run import check_protocol

    budget = Budget(calls=budget_calls, tokens=budget_tokens, seconds=budget_seconds)
    options = options or {}
    get_optimizer(method, **options)  # unknown methods and options fail before any work
    store = State.store()
    cfg, task = load_task(config)
    seed_prompt = resolve_prompt(prompt, cfg, store)
    check_protocol(task, budget)
    if dry_run:
        _dry_run(cfg, task, seed_prompt, budget, method, store)
        return
    metric, record = _with_human_feedback(build_metric(cfg), config_record(cfg), store, cfg.name,
                                          human_feedback)
    search = dict(method=method, options=options, alpha=alpha, gate=gate, seed=seed,
                  resume=resume, params=generation_params(cfg), metric=metric, config=record)
    print_report(_run_search(cfg, task, seed_prompt, budget, search, model, proposer, progress,
                         executor))


def _dry_run(cfg, task, seed_prompt, budget, method: str, store) -> None:
    from ..api import build_metric, generation_params
    from ..evaluation import Evaluator
    from ..optimize import estimate

    params = generation_params(cfg)
    evaluator = Evaluator(_NoModel(), build_metric(cfg), store, params=params,
                          mode=cfg.model.mode, demo_pool=task.train)
    show_estimate(estimate(task, seed_prompt, budget, params, evaluator), method)


def _run_search(cfg, task, seed_prompt, budget, search: dict[str, Any], model: str | None,
                proposer: str | None, progress: bool, executor: str | None):
    """Load the models, run the search with a live display, and return its result."""
    from ..api import build_context, build_model
    from ..models.registry import load_model
    from ..optimize import optimize

    with console.status(f"loading model {model or cfg.model.name}…"):
        task_model = build_model(cfg, model)
        proposer_model = load_model(proposer) if proposer else None
    display = LiveDisplay(budget, enabled=progress)
    runner = executor_for(executor, cfg, model, task_model)
    with display, runner:
        return optimize(task, seed_prompt, task_model, budget=budget, proposer=proposer_model,
                        store=State.store(), mode=cfg.model.mode, on_event=display.update,
                        contextualizer=build_context(cfg, task, task_model), executor=runner,
                        **search)


class _NoModel:
    """Rendering for a dry run needs a model identity but never calls it."""

    identity = "dry-run"
    concurrency = 1


def show_estimate(est: dict[str, Any], method: str) -> None:
    from rich.table import Table

    table = Table(title=f"Dry run: {method} (no model calls made)", title_justify="left")
    table.add_column("figure")
    table.add_column("estimate", justify="right")
    for key, value in est.items():
        table.add_row(key.replace("_", " "), "-" if value is None else f"{value:,}")
    console.print(table)


class LiveDisplay:
    """Best score so far, the latest candidates and the budget used, refreshed on each step."""

    def __init__(self, budget, enabled: bool = True):
        self.budget, self.enabled = budget, enabled
        self.best: float | None = None
        self.recent: list[str] = []
        self.spent = {"calls": 0, "tokens": 0, "seconds": 0.0}
        self._live = None

    def __enter__(self) -> LiveDisplay:
        if self.enabled:
            from rich.live import Live

            self._live = Live(self._render(), console=console, refresh_per_second=4,
                              transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def update(self, event: dict[str, Any]) -> None:
        if event.get("incumbent_score") is not None:
            self.best = event["incumbent_score"]
        self.spent = {k: event[k] for k in ("calls", "tokens", "seconds")}
        if event["event"] not in ("start",):
            reason = event["detail"].get("reason", "") if event["detail"] else ""
            self.recent = (self.recent + [f"#{event['candidate_idx']} {event['event']} "
                                          f"{reason}"[:110]])[-6:]
        if self._live is not None:
            self._live.update(self._render())

    def _render(self):
        from rich.panel import Panel

        b = self.budget
        limits = [f"calls {self.spent['calls']}/{b.calls}" if b.calls else "",
                  f"tokens {self.spent['tokens']}/{b.tokens}" if b.tokens else "",
                  f"{self.spent['seconds']:.0f}s/{b.seconds:.0f}s" if b.seconds else ""]
        best = "-" if self.best is None else f"{self.best:.3f}"
        lines = [f"best validation score: [bold]{best}[/]   budget used: "
                 + "  ".join(x for x in limits if x), *self.recent]
        return Panel("\n".join(lines), title="optimizing", border_style="cyan")


def print_report(result) -> None:
    from rich.table import Table

    cmp = result.comparison
    console.print(f"[bold]Optimization run {result.run_id} ({result.method})[/]: scores on the "
                  "test split, which the search never saw")
    table = Table()
    for col in ("prompt", "validation", "test score [95% CI]", "n", "run"):
        table.add_column(col, justify="left" if col == "prompt" else "right")
    for label, val, res in (("seed", result.seed_validation, result.seed_test),
                            ("optimized", result.best_validation, result.best_test)):
        table.add_row(label, f"{val:.3f}", fmt_score(res.score.mean, res.score.low,
                                                     res.score.high), str(res.n),
                      str(res.run_id))
    console.print(table)
    console.print(f"[bold]Verdict:[/] {cmp.verdict}")
    spend = result.spend
    console.print(f"search spend: {spend['calls']} calls ({spend['fresh_calls']} new, "
                  f"{spend['cache_hits']} from cache), {spend['tokens']} tokens, "
                  f"{fmt_seconds(spend['seconds'])}; {len(result.candidates)} candidates")
    version = result.best_version
    console.print(f"optimized prompt saved as [bold]{version['name']}@{version['version']}[/]"
                  f" (see: promptmill prompts show {version['name']}@{version['version']})")
    for warning in result.warnings:
        console.print(f"[yellow]warning: {warning}[/]")


def register(app: typer.Typer) -> None:
    app.command("optimize")(optimize_command)
