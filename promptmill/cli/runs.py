"""``promptmill runs``, ``show``, ``compare`` and ``export``: reading the store."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import State, clip, console, fmt_score, fmt_seconds


def runs(limit: int = typer.Option(20, "--limit", min=1), task: str = typer.Option(None)) -> None:
    """List recent runs."""
    from rich.table import Table

    store = State.store()
    table = Table(title=f"Runs in {store.safe_url()}", title_justify="left")
    for col in ("run", "task", "split", "prompt", "status", "n", "mean", "errors", "calls",
                "hits", "time"):
        table.add_column(col, no_wrap=col in ("task", "status"))
    for run in store.list_runs(limit=limit, task=task):
        mean = run["score_sum"] / run["n_done"] if run["n_done"] else float("nan")
        table.add_row(str(run["id"]), run["task"], run["split"], run["prompt_hash"][:8],
                      run["status"], f"{run['n_done']}/{run['n_examples']}", fmt_score(mean),
                      str(run["n_errors"]), str(run["calls"]), str(run["cache_hits"]),
                      fmt_seconds(run["wall_seconds"]))
    console.print(table)


def show(run: str = typer.Argument(..., help="Run id."),
         failures: bool = typer.Option(False, "--failures", help="Only examples that failed."),
         limit: int = typer.Option(50, "--limit", min=1, help="Rows to show.")) -> None:
    """Show a run's summary and per-example results."""
    from itertools import islice

    from rich.table import Table

    from ..stats import mean_ci

    store = State.store()
    info = store.get_run(run)
    scores = list(store.scores_by_example(info["id"]).values())
    est = mean_ci(scores)
    console.print(f"[bold]run {info['id']}[/] {info['task']}/{info['split']}  "
                  f"status={info['status']}  model={info['model']}  metric={info['metric']}")
    console.print(f"score {fmt_score(est.mean, est.low, est.high)} over {est.n} examples; "
                  f"{info['n_errors']} errors; {info['calls']} calls, {info['cache_hits']} cache "
                  f"hits, {info['tokens_in']}/{info['tokens_out']} tokens, "
                  f"{fmt_seconds(info['wall_seconds'])}")
    if info["error"]:
        console.print(f"[red]stopped with: {info['error']}[/]")
    table = Table(title="failures" if failures else "examples", title_justify="left")
    for col in ("#", "id", "input", "target", "output", "score", "note"):
        table.add_column(col)
    rows = store.iter_results(info["id"], failures_only=failures)
    for row in islice(rows, limit):
        note = row["error"] or row["feedback"] or ""
        table.add_row(str(row["idx"]), clip(row["example_id"], 12), clip(row["inputs"], 40),
                      clip(row["target"], 16), clip(row["output"], 30),
                      "-" if row["score"] is None else f"{row['score']:.2f}", clip(note, 40))
    console.print(table)


def compare(run_a: str = typer.Argument(...), run_b: str = typer.Argument(...),
            alpha: float = typer.Option(0.05, "--alpha")) -> None:
    """Paired significance test between two runs on their shared examples."""
    from ..api import compare as compare_runs

    store = State.store()
    a, b = store.get_run(run_a), store.get_run(run_b)
    result = compare_runs(a["id"], b["id"], store=store, alpha=alpha)
    console.print(f"run {a['id']}: {fmt_score(result.mean_a)}   run {b['id']}: "
                  f"{fmt_score(result.mean_b)}   over {result.n} shared examples")
    diff = result.diff
    console.print(f"difference (B - A): {fmt_score(diff.mean, diff.low, diff.high)}")
    console.print(f"[bold]Verdict:[/] {result.verdict}")


def export(run: str = typer.Argument(...),
           fmt: str = typer.Option("jsonl", "--format", help="jsonl or csv."),
           output: Path = typer.Option(None, "--output", "-o", help="File to write.")) -> None:
    """Write a run's per-example results to a file."""
    from ..api import export as export_run

    info = State.store().get_run(run)
    path = output or Path(f"run-{info['id']}.{fmt}")
    count = export_run(info["id"], path, fmt, store=State.store())
    console.print(f"wrote {count} rows to {path}")


def register(app: typer.Typer) -> None:
    app.command("runs")(runs)
    app.command("show")(show)
    app.command("compare")(compare)
    app.command("export")(export)
