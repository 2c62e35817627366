"""``promptmill diagnose RUN``: why a run's answers fail, and what to change."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from .common import State, clip, console, fmt_score


def _pct(value: float, low: float, high: float) -> str:
    return f"{value:.0%} [{low:.0%}, {high:.0%}]"


def _print_categories(d, examples: int) -> None:
    table = Table(title=f"Failure categories ({d.n_failures} failures of {d.n})")
    for col in ("category", "count", "share of failures [95% CI]", "rate of all [95% CI]",
                "example"):
        table.add_column(col, justify="right" if col == "count" else "left")
    for c in d.categories:
        shown = "\n".join(f"{clip(e['input'], 30)} → {clip(e['output'], 30)}  ({e['why']})"
                          for e in c["examples"][:examples])
        table.add_row(c["category"], str(c["count"]),
                      _pct(c["share"], c["share_low"], c["share_high"]),
                      _pct(c["rate"], c["rate_low"], c["rate_high"]), shown)
    console.print(table)


def _print_confusion(matrix) -> None:
    table = Table(title="Confusion matrix (rows: target, columns: answer)")
    table.add_column("target")
    for col in matrix["columns"]:
        table.add_column(col, justify="right")
    for label, counts in zip(matrix["labels"], matrix["matrix"], strict=True):
        table.add_row(label, *(str(v) for v in counts))
    console.print(table)


def _print_clusters(clusters) -> None:
    table = Table(title="Failure clusters")
    for col in ("size", "share", "top terms", "main category", "representative input"):
        table.add_column(col)
    for c in clusters:
        table.add_row(str(c["size"]), f"{c['share']:.0%}", ", ".join(c["terms"]),
                      c["main_category"], clip(c["examples"][0]["input"], 50))
    console.print(table)


def _print_slices(d) -> None:
    flagged = [s for s in d.slices if s["below"]]
    table = Table(title="Slices below the run's mean" if flagged else "Worst slices")
    for col in ("slice", "value", "n", "score [95% CI]"):
        table.add_column(col)
    for s in (flagged or d.slices)[:8]:
        table.add_row(s["by"], clip(s["value"], 30), str(s["n"]),
                      fmt_score(s["mean"], s["low"], s["high"]))
    console.print(table)


def _print_robustness(results) -> None:
    table = Table(title="Robustness")
    for col in ("perturbation", "variants × n", "change [95% CI]", "flip rate [95% CI]",
                "spread"):
        table.add_column(col)
    for r in results:
        if not r["applicable"]:
            table.add_row(r["kind"], "-", f"not applicable: {r['note']}", "", "")
            continue
        table.add_row(r["kind"], f"{r['variants']} × {r['n']}",
                      f"{r['delta']:+.3f} [{r['delta_low']:+.3f}, {r['delta_high']:+.3f}]",
                      _pct(r["flip_rate"], r["flip_low"], r["flip_high"]), f"{r['spread']:.3f}")
    console.print(table)


def _print_report(d, examples: int) -> None:
    console.print(f"[bold]Run {d.run['id']}[/] {d.run['task']}/{d.run['split']}  prompt "
                  f"{d.prompt_ref or '-'}  model {d.run['model']}  metric {d.run['metric']}")
    console.print(f"score {fmt_score(d.mean, d.mean_low, d.mean_high)} over {d.n} examples; "
                  f"{d.n_failures} failures (score < {d.threshold:g})")
    if d.n_failures == 0:
        console.print("[green]No failures:[/] every example reached the threshold; "
                      "nothing to diagnose.")
    else:
        _print_categories(d, examples)
    if d.confusion:
        _print_confusion(d.confusion)
    if d.clusters:
        _print_clusters(d.clusters)
    if d.slices:
        _print_slices(d)
    if d.robustness:
        _print_robustness(d.robustness)
    if d.calibration:
        c = d.calibration
        console.print(f"Calibration: ECE {c['ece']:.3f}, Brier {c['brier']:.3f} over {c['n']} "
                      f"answers (mean confidence {c['mean_confidence']:.3f}, accuracy "
                      f"{c['accuracy']:.3f})")
    if d.suggestions:
        console.print("[bold]Suggested fixes[/]")
        for s in d.suggestions:
            how = f"  [dim](--apply {s.id})[/]" if s.action else ""
            console.print(f"  • [cyan]{s.id}[/] {s.message}{how}", highlight=False)


def _robustness(store, data, n, variants, kinds, seed):
    from rich.progress import Progress

    from ..diagnosis.actions import check_robustness

    chosen = tuple(k.strip() for k in kinds.split(",") if k.strip()) if kinds else None
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("robustness", total=None)

        def step(kind: str) -> None:
            bar.update(task, description=f"robustness: {kind}", advance=1)

        extra = {"kinds": chosen} if chosen else {}
        return check_robustness(store, data, n=n, variants=variants, seed=seed,
                                on_step=step, **extra)


def diagnose_command(
    run: str = typer.Argument(..., help="Run id (see 'promptmill runs')."),
    threshold: float = typer.Option(1.0, "--threshold", help="Scores below this are failures."),
    clusters: str = typer.Option("tfidf", "--clusters", help="tfidf, embedding or none."),
    robustness: bool = typer.Option(False, "--robustness", help="Perturbation suite (calls "
                                    "the model)."),
    n: int = typer.Option(30, "--n", min=2, help="Examples in the robustness sample."),
    variants: int = typer.Option(2, "--variants", min=1, help="Variants per perturbation."),
    kinds: str = typer.Option(None, "--kinds", help="Comma-separated perturbations (default: "
                              "all)."),
    calibration: bool = typer.Option(False, "--calibration", help="Require calibration "
                                     "(needs logprobs)."),
    compute: bool = typer.Option(False, "--compute", help="With --calibration: re-score the "
                                 "run with logprobs when it has none."),
    apply: list[str] = typer.Option(None, "--apply", help="Suggestion id (or 'all') to turn "
                                    "into a new prompt version."),
    html: Path = typer.Option(None, "--html", help="Write a self-contained HTML report."),
    json_out: Path = typer.Option(None, "--json", help="Write the diagnosis as JSON."),
    examples: int = typer.Option(1, "--examples", min=0, help="Examples shown per category."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Failure taxonomy, confusion, clusters, slices, robustness, calibration and fixes."""
    from ..diagnosis import diagnose
    from ..diagnosis.data import load_run
    from ..diagnosis.rebuild import rescore_with_logprobs

    store = State.store()
    data = load_run(store, run, threshold)
    if calibration and compute and not any(r.logprobs for r in data.rows):
        data = load_run(store, rescore_with_logprobs(store, data), threshold)
        console.print(f"re-scored with logprobs as run {data.run['id']}")
    robust = _robustness(store, data, n, variants, kinds, seed) if robustness else None
    method = None if clusters == "none" else clusters
    d = diagnose(data.run["id"], store=store, threshold=threshold, clusters=method,
                 calibration=True if calibration else None, robustness=robust, seed=seed,
                 data=data)
    _print_report(d, examples)
    _write_outputs(d, html, json_out)
    if apply:
        _apply(store, d, apply)


def _write_outputs(d, html: Path | None, json_out: Path | None) -> None:
    if html:
        from ..diagnosis.report import render_html

        html.write_text(render_html(d), encoding="utf-8")
        console.print(f"wrote the HTML report to {html}")
    if json_out:
        json_out.write_text(json.dumps(d.to_dict(), indent=2, default=str), encoding="utf-8")
        console.print(f"wrote the diagnosis to {json_out}")


def _apply(store, d, wanted: list[str]) -> None:
    from ..diagnosis.actions import save_applied

    saved, chosen = save_applied(store, d, wanted)
    ref = f"{saved['name']}@{saved['version']}"
    console.print(f"saved [bold]{ref}[/] with {', '.join(s.id for s in chosen)}; check it "
                  f"with 'promptmill eval CONFIG --prompt {ref}' or start an optimization "
                  f"from it with 'promptmill optimize CONFIG --prompt {ref}'", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("diagnose")(diagnose_command)
