"""``promptmill runs``, ``show``, ``compare`` and ``export``: reading the store."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from .common import State, clip, console, fmt_score, fmt_seconds, prompt_label


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
        table.add_row(str(run["id"]), run["task"], run["split"], prompt_label(store, run),
                      status_text(run, host=False), f"{run['n_done']}/{run['n_examples']}",
                      fmt_score(mean),
                      str(run["n_errors"]), str(run["calls"]), str(run["cache_hits"]),
                      fmt_seconds(run["wall_seconds"]))
    console.print(table)


def status_text(run: dict, host: bool = True) -> str:
    """A run's status; a running one names its process, so a stuck one can be found.

    The store has already turned the runs of processes that are gone into 'interrupted'.
    """
    if run["status"] == "running" and run.get("owner_pid"):
        where = f" on {run['owner_host']}" if host else ""
        return f"running (pid {run['owner_pid']}{where})"
    return run["status"]


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
                  f"status={status_text(info)}  model={info['model']}  metric={info['metric']}")
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


def compare(runs: list[str] = typer.Argument(..., help="Two or more run ids; the first is "
                                              "the baseline."),
            alpha: float = typer.Option(0.05, "--alpha"),
            show: int = typer.Option(10, "--show", min=0, help="Differing examples to show."),
            json_out: Path = typer.Option(None, "--json", help="Write the comparison as JSON.")
            ) -> None:
    """Paired tests against the first run, differing answers side by side, prompt changes."""
    from ..diagnosis.compare import compare_runs

    result = compare_runs(runs, store=State.store(), alpha=alpha, show=show)
    table = Table(title=f"{len(result.runs)} runs over {result.n} shared examples")
    for col in ("run", "prompt", "model", "score [95% CI]", "vs first run", "verdict"):
        table.add_column(col)
    first = result.runs[0]
    table.add_row(str(first["id"]), first["prompt"], clip(first["model"], 30),
                  fmt_score(first["mean"], first["low"], first["high"]), "baseline", "")
    for row, test in zip(result.runs[1:], result.tests, strict=True):
        table.add_row(str(row["id"]), row["prompt"], clip(row["model"], 30),
                      fmt_score(row["mean"], row["low"], row["high"]),
                      f"{test['diff']:+.3f} [{test['low']:+.3f}, {test['high']:+.3f}]",
                      test["verdict"])
    console.print(table)
    for test in result.tests:
        console.print(f"[bold]Verdict (run {test['run']} vs run {first['id']}):[/] "
                      f"{test['verdict']}", highlight=False)
    _print_changes(result)
    _print_differing(result)
    if json_out:
        json_out.write_text(json.dumps(result.to_dict(), indent=2, default=str))
        console.print(f"wrote the comparison to {json_out}")


def _print_changes(result) -> None:
    for change in result.changes:
        lines = change["prompt"] + change["settings"]
        console.print(f"[bold]What changed in run {change['run']}:[/] "
                      + ("nothing in the prompt or settings" if not lines else ""))
        for line in lines:
            console.print("  " + line.replace("\n", "\n    "), highlight=False, markup=False)


def _print_differing(result) -> None:
    if not result.differing:
        return
    from ..diagnosis.compare import output_diff

    table = Table(title=f"Examples with different answers ({result.n_differing}; "
                        f"showing {len(result.differing)})")
    table.add_column("example")
    table.add_column("target")
    for run in result.runs:
        table.add_column(f"run {run['id']}")
    table.add_column("diff (first → last)")
    for row in result.differing:
        cells = [f"{clip(o, 30)} ({'-' if s is None else f'{s:.2f}'})"
                 for o, s in zip(row["outputs"], row["scores"], strict=True)]
        table.add_row(clip(row["inputs"], 30), clip(row["target"], 16), *cells,
                      clip(output_diff(row["outputs"][0], row["outputs"][-1]), 40))
    console.print(table)


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
