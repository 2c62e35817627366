"""What ``promptmill eval`` does, as plain functions: the command and the demo call them.

Commands never call each other: a Typer command's defaults are ``OptionInfo`` objects, which
are truthy, so calling one as a function turns on every flag it was not given.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .common import State, console, executor_for, fmt_score, fmt_seconds, prompt_label

if TYPE_CHECKING:
    from ..assembly import Setup


def run_eval(config: Path, prompts: list[str | None] | None = None, *,
             model_spec: str | None = None, split: str = "test", limit: int | None = None,
             cache: bool = True, resume: bool = True, alpha: float = 0.05,
             progress: bool = True, executor: str | None = "local",
             verbose: bool = False) -> list:
    """What ``promptmill eval`` does, with real defaults, for any command that needs it."""
    from ..api import setup

    first, *others = prompts or [None]
    with setup(config, prompt=first, model=model_spec, store=State.store()) as s:
        chosen = [s.prompt, *(s.resolve(p) for p in others)]
        with console.status(f"loading model {s.model_name}…"):
            s.load_model()
        if verbose:
            print_model_settings(s.model)
        with executor_for(executor, s) as runner:
            results = _evaluate_each(s, chosen, split, limit, cache, resume, progress, runner)
    print_results(results, alpha)
    return results


def _evaluate_each(s: Setup, chosen: list, split: str, limit: int | None, cache: bool, resume: bool,
                   progress: bool, runner) -> list:
    evaluator = s.evaluator(cache=cache, progress=progress, executor=runner)
    results = []
    for p in chosen:
        result = evaluator.evaluate(s.examples(split, limit), p, task=s.cfg.name, split=split,
                                    resume=resume, config=s.record(),
                                    contextualizer=s.contextualizer)
        if result.resumed_from:
            console.print(f"resumed run {result.run_id}: {result.resumed_from} examples "
                          "were already done")
        results.append((p, result))
    return results


def print_model_settings(model) -> None:
    """One line per runtime setting, as the model reports them (``Model.runtime_settings``)."""
    console.print(f"model {getattr(model, 'spec', None) or model.identity}: {model.identity}")
    for name, value in model.runtime_settings().items():
        console.print(f"  {name}: {value}")


def print_results(results: list, alpha: float) -> None:
    from rich.table import Table

    table = Table(title="Evaluation", title_justify="left")
    for col in ("run", "prompt", "score [95% CI]", "n", "errors", "calls", "cache hits",
                "tokens", "time"):
        table.add_column(col, justify="left" if col == "prompt" else "right",
                         no_wrap=col in ("prompt", "score [95% CI]"))
    store = State.store()
    labels = {r.run_id: prompt_label(store, store.get_run(r.run_id)) for _, r in results}
    for _, r in results:
        led = r.ledger
        table.add_row(str(r.run_id), labels[r.run_id],
                      fmt_score(r.score.mean, r.score.low, r.score.high), str(r.n),
                      str(r.n_errors), str(led.calls), str(led.cache_hits),
                      str(led.tokens_in + led.tokens_out), fmt_seconds(led.wall_seconds))
    console.print(table)
    _print_segments(results)
    if len(results) > 1:
        from ..api import compare

        base = results[0][1]
        for _, r in results[1:]:
            cmp = compare(base.run_id, r.run_id, store=store, alpha=alpha)
            cmp = type(cmp)(**{**cmp.__dict__, "label_a": labels[base.run_id],
                               "label_b": labels[r.run_id]})
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
