"""What ``promptmill optimize`` does, as plain functions: the command and the demo call them.

Commands never call each other: a Typer command's defaults are ``OptionInfo`` objects, which
are truthy, so calling one as a function turns on every flag it was not given.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import State, console, executor_for, fmt_score, fmt_seconds

if TYPE_CHECKING:
    from ..assembly import Setup


def run_optimization(config: Path, *, method: str = "auto", budget_calls: int | None = None,
                     budget_tokens: int | None = None, budget_seconds: float | None = None,
                     prompt: str | None = None, model: str | None = None,
                     proposer: str | None = None, alpha: float = 0.05, gate: bool = True,
                     seed: int = 0, options: dict[str, Any] | None = None,
                     dry_run: bool = False, resume: bool = True, progress: bool = True,
                     human_feedback: bool = False, executor: str | None = "local",
                     limit: int | None = None) -> None:
    """What ``promptmill optimize`` does, with real defaults, for any command that needs it."""
    from ..api import setup
    from ..optimize import Budget
    from ..optimize.registry import get_optimizer
    from ..optimize.run import check_protocol

    budget = Budget(calls=budget_calls, tokens=budget_tokens, seconds=budget_seconds)
    options = options or {}
    get_optimizer(method, **options)  # unknown methods and options fail before any work
    with setup(config, prompt=prompt, model=model, store=State.store()) as s:
        if limit:
            _check_limit(limit)
            s.task = s.task.limited(limit)
            warn_small_splits(limit)
        check_protocol(s.task, budget)
        if dry_run:
            _dry_run(s, budget, method)
            return
        metric, record = _with_human_feedback(s.metric, s.record(), s.store, s.cfg.name,
                                              human_feedback)
        if limit:
            record = {**record, "limit": limit}  # replay cuts the splits the same way
        search = dict(method=method, options=options, alpha=alpha, gate=gate, seed=seed,
                      resume=resume, params=s.params, metric=metric, config=record)
        result = _run_search(s, budget, search, proposer, progress, executor)
    print_report(result)


# an exact paired test needs about this many more examples right than the seed, all one way,
# before any gain can be significant at the 5% level ((1/2)**5 = 3.1%)
MIN_DISCORDANT = 5


def _check_limit(limit: int) -> None:
    from ..errors import ConfigError
    from ..optimize.run import MIN_TEST, MIN_VALIDATION

    least = max(MIN_TEST, MIN_VALIDATION)
    if limit < least:
        raise ConfigError(f"--limit {limit} leaves too few validation or test examples to "
                          f"optimize honestly", where="--limit",
                          fix=f"use --limit {least} or more")


def warn_small_splits(limit: int) -> None:
    points = min(100.0, 100.0 * MIN_DISCORDANT / limit)
    console.print(f"[yellow]--limit {limit}: validation and test hold at most {limit} examples "
                  f"each. Splits this small detect only large gains: a gain of fewer than "
                  f"{MIN_DISCORDANT} examples ({points:.0f} points) cannot be significant.[/]")


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


def _dry_run(s: Setup, budget, method: str) -> None:
    """The estimate from the config alone: the setup's model is never loaded."""
    from ..optimize import estimate

    show_estimate(estimate(s.task, s.prompt, budget, s.params, s.renderer()), method)


def _run_search(s: Setup, budget, search: dict[str, Any], proposer: str | None, progress: bool,
                executor: str | None):
    """Load the models, run the search with a live display, and return its result."""
    from ..models.registry import load_model
    from ..optimize import optimize

    with console.status(f"loading model {s.model_name}…"):
        s.load_model()
        proposer_model = load_model(proposer) if proposer else None
    display = LiveDisplay(budget, enabled=progress)
    runner = executor_for(executor, s)
    with display, runner:
        return optimize(s.task, s.prompt, s.model, budget=budget, proposer=proposer_model,
                        store=s.store, mode=s.cfg.model.mode, on_event=display.update,
                        contextualizer=s.contextualizer, executor=runner, **search)


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
        self._live: Any = None  # a rich Live while shown; rich is imported only then
        self._ticker: Any = None  # without a terminal: a plain line every 10 s instead

    def __enter__(self) -> LiveDisplay:
        from ..progress import PlainTicker, is_terminal

        if self.enabled and not is_terminal():
            self._ticker = PlainTicker()
        elif self.enabled:
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
        if event["event"] == "auto decision":
            self._show_plan(event["detail"] or {})
        elif event["event"] not in ("start",):
            reason = event["detail"].get("reason", "") if event["detail"] else ""
            label = "" if event["candidate_idx"] is None else f"#{event['candidate_idx']} "
            self.recent = (self.recent + [f"{label}{event['event']} {reason}".strip()[:110]])[-6:]
        if self._live is not None:
            self._live.update(self._render())
        elif self._ticker is not None:
            self._ticker.tick(self._plain_line)

    def _show_plan(self, detail: dict[str, Any]) -> None:
        """The plan ``auto`` chose and its reasons, printed once, above the live panel."""
        if not self.enabled:
            return
        reasons = "; ".join(detail.get("reasons") or []) or "no reasons given"
        console.print(f"auto chose {detail.get('method', '?')}: {reasons}", soft_wrap=True)

    def _budget_used(self) -> str:
        b = self.budget
        limits = [f"calls {self.spent['calls']}/{b.calls}" if b.calls else "",
                  f"tokens {self.spent['tokens']}/{b.tokens}" if b.tokens else "",
                  f"{self.spent['seconds']:.0f}s/{b.seconds:.0f}s" if b.seconds else ""]
        return "  ".join(x for x in limits if x)

    def _plain_line(self) -> str:
        best = "-" if self.best is None else f"{self.best:.3f}"
        latest = f"; latest: {self.recent[-1]}" if self.recent else ""
        return f"optimizing: best validation {best}, budget used {self._budget_used()}{latest}"

    def _render(self):
        from rich.panel import Panel

        best = "-" if self.best is None else f"{self.best:.3f}"
        lines = [f"best validation score: [bold]{best}[/]   budget used: "
                 + self._budget_used(), *self.recent]
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
