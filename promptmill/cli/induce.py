"""``promptmill induce``: zero-shot instructions written from a few examples, ranked on data."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .common import State, clip, console, fmt_score


def induce_command(
    config: Path = typer.Argument(..., help="Task config (YAML)."),
    n: int = typer.Option(6, "--n", min=1, help="How many instructions to induce."),
    shots: int = typer.Option(5, "--shots", min=1, help="Training pairs shown per induction."),
    strategy: list[str] = typer.Option(["answer_only", "output_format"], "--strategy", "-s",
                                       help="Strategy applied to each induced instruction as "
                                            "an extra candidate; repeat, or 'none'."),
    model: str = typer.Option(None, "--model", "-m", help="Task model spec."),
    proposer: str = typer.Option(None, "--proposer", help="Model that writes instructions "
                                 "(default: the task model)."),
    limit: int = typer.Option(None, "--limit", min=1, help="Validation examples to rank on."),
    seed: int = typer.Option(0, "--seed"),
    save: bool = typer.Option(True, "--save/--no-save", help="Save the best as a prompt "
                              "version named TASK-induced, when it is significantly better "
                              "than the seed."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Write instruction candidates from a handful of examples and rank them on validation."""
    from ..api import setup
    from ..induce import induce
    from ..models.registry import load_model

    store = State.store()
    chosen = [] if strategy == ["none"] else strategy
    with setup(config, model=model, store=store) as s:
        with console.status(f"loading model {s.model_name}…"):
            s.load_model()
            proposer_model = load_model(proposer) if proposer else None
        with console.status(f"inducing {n} instructions and ranking them on validation…"):
            result = induce(s.task, s.model, s.metric, seed_prompt=s.prompt,
                            proposer=proposer_model, n=n, shots=shots, strategies=chosen,
                            store=store, params=s.params, limit=limit, seed=seed,
                            mode=s.cfg.model.mode)
    saved = None
    if save and result.improved:
        best = result.best.prompt
        saved = store.save_prompt(f"{s.cfg.name}-induced", best.content(), best.hash,
                                  note=f"induced ({result.best.origin}), validation "
                                       f"{result.best.mean:.3f}")
    if as_json:
        payload = result.to_dict()
        payload["saved"] = f"{saved['name']}@{saved['version']}" if saved else None
        console.print_json(json.dumps(payload, default=str))
        return
    _print(result, saved)


def _print(result, saved) -> None:
    from rich.table import Table

    table = Table(title="Induced instructions (validation)", title_justify="left")
    for col in ("rank", "origin", "score [95% CI]", "instruction", "format note"):
        table.add_column(col, no_wrap=col in ("origin", "score [95% CI]"))
    for rank, cand in enumerate(result.ranked, 1):
        score = cand.result.score
        table.add_row(str(rank), cand.origin, fmt_score(score.mean, score.low, score.high),
                      clip(cand.prompt.instruction, 70), clip(_format(cand.prompt), 30))
    console.print(table)
    console.print(f"best vs seed: {result.best_vs_seed.verdict}")
    if result.rejected:
        console.print(f"{len(result.rejected)} proposal(s) rejected as unusable "
                      "(empty, a fragment or too long)")
    led = result.ledger
    console.print(f"cost: {led.calls} calls, {led.cache_hits} cache hits, "
                  f"{led.tokens_in + led.tokens_out} tokens")
    if saved:
        console.print(f"saved the best as [bold]{saved['name']}@{saved['version']}[/]")
    elif result.best.origin == "seed":
        console.print("the seed prompt ranked first: nothing saved")
    elif not result.improved:
        console.print(f"{result.best.origin} ranked first but is not significantly better "
                      "than the seed: nothing saved, keep the seed")


def _format(prompt) -> str:
    if prompt.output_spec is not None and prompt.output_spec.labels is not None:
        return "labels: " + " | ".join(prompt.output_spec.labels)
    if prompt.output_spec is not None:
        return f"{prompt.output_spec.kind} enforced"
    return prompt.output_format or ""


def register(app: typer.Typer) -> None:
    app.command("induce")(induce_command)
