"""``promptmill tune run|search|augment|pipeline|list|export``: tuning the model itself.

Memory ceiling (measured on the embedded 135M model, fp32 on CPU): 2.0 GB peak RSS for a LoRA
run at batch 4 x 48 tokens; 2.6-2.8 GB for LoRA or a soft prompt at batch 8 x 96 tokens,
including the loaded tuned model scored on test afterwards (benchmarks/bench_tune.py). Plan
for 3 GB. Activations grow with --batch-size x --max-length: halve the batch and double
--grad-accum to stay below it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from typer.core import TyperGroup

from .common import State, console, fmt_score, fmt_seconds, note_renamed, renamed_alias

if TYPE_CHECKING:
    from typer._click import Context  # Typer vendors click: its groups get this Context

THREADS_HELP = ("PyTorch threads. Default 1: on a busy 2-core machine more threads spin-wait "
                "and run 4-8x slower (measured); raise it on an idle machine.")


class TuneGroup(TyperGroup):
    """The ``tune`` group, which still runs its old form: ``tune CONFIG [OPTIONS]`` (before the
    group, ``tune`` was the training command) is ``tune run CONFIG [OPTIONS]``, with a note."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if args and self._is_old_form(ctx, args[0]):
            note_renamed("tune CONFIG", "tune run CONFIG")
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def _is_old_form(self, ctx: Context, first: str) -> bool:
        """Is the first word a config file or an option of ``run``, not a subcommand?

        A bare word such as ``serach`` stays a subcommand, so a typo gets click's
        "No such command" with its suggestion instead of "no such config file".
        """
        if first in self.commands or first in ctx.help_option_names:
            return False
        bare_word = first.replace("-", "_").isidentifier()
        return first.startswith("-") or not bare_word or Path(first).exists()


tune_app = typer.Typer(cls=TuneGroup, no_args_is_help=True,
                       help="Tune the model itself (PEFT) on a task: train an adapter, search "
                            "its hyperparameters, augment the data, run the optimize-tune "
                            "pipeline, list and export adapters.")


def _settings(method, lr, epochs, max_steps, batch_size, grad_accum, max_length, rank, alpha,
              virtual_tokens, patience, eval_limit, checkpoint_every, seed):
    from ..errors import ConfigError
    from ..tune.settings import METHODS, TuneSettings

    if method not in METHODS:
        raise ConfigError(f"unknown tuning method '{method}'", where="--method",
                          fix=f"use one of: {', '.join(METHODS)}")
    return TuneSettings(method=method, learning_rate=lr, epochs=epochs, max_steps=max_steps,
                        batch_size=batch_size, grad_accum=grad_accum, max_length=max_length,
                        rank=rank, alpha=alpha, virtual_tokens=virtual_tokens,
                        patience=patience, eval_limit=eval_limit,
                        checkpoint_every=checkpoint_every, seed=seed)


def base_spec(cfg, override: str | None) -> str:
    """The base model to tune: --base, else the task's model (embedded, gguf:PATH, hf:PATH)."""
    from ..errors import ConfigError

    spec = override or cfg.model.name
    kind, _, argument = spec.partition(":")
    if kind in ("embedded", "hf", "gguf") or Path(spec).exists():
        return argument if kind in ("hf", "gguf") else spec
    raise ConfigError(f"model '{spec}' cannot be tuned: it is not a local model", where="model",
                      fix="pass --base embedded, --base PATH.gguf or --base MODEL_FOLDER")


def _setup(config: Path, prompt_ref: str | None):
    """The task, prompt, metric and params to tune with; the task's model is loaded only if
    a step uses it (tuning loads its own base)."""
    from ..api import setup

    return setup(config, prompt=prompt_ref, store=State.store())


@tune_app.command("run")
def tune_command(
    config: Path = typer.Argument(..., help="Task config (YAML)."),
    method: str = typer.Option("lora", "--method", help="lora, prompt-tuning or prefix."),
    name: str = typer.Option(None, "--name", help="Adapter name (default TASK-METHOD). A run "
                             "with an existing name resumes from its last checkpoint."),
    base: str = typer.Option(None, "--base", help="Base model: embedded, a .gguf file or a "
                             "Hugging Face folder (default: the task's model)."),
    prompt: str = typer.Option(None, "--prompt", "-p", help="Prompt to train under (default: "
                               "the config's); e.g. an optimized one, NAME@VERSION."),
    lr: float = typer.Option(None, "--lr", help="Learning rate (default 1e-3 for LoRA, 3e-2 "
                             "for soft prompts and prefixes)."),
    epochs: int = typer.Option(3, "--epochs", min=1),
    max_steps: int = typer.Option(None, "--max-steps", min=1, help="Stop after N steps."),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    grad_accum: int = typer.Option(1, "--grad-accum", min=1, help="Batches per optimizer step."),
    max_length: int = typer.Option(128, "--max-length", min=8, help="Tokens per sequence."),
    rank: int = typer.Option(8, "--rank", min=1, help="LoRA rank."),
    alpha: int = typer.Option(16, "--alpha", min=1, help="LoRA alpha."),
    virtual_tokens: int = typer.Option(16, "--virtual-tokens", min=1,
                                       help="Soft prompt / prefix length."),
    patience: int = typer.Option(1, "--patience", min=0, help="Epochs without a better "
                                 "validation score before stopping (0: never)."),
    eval_limit: int = typer.Option(None, "--eval-limit", min=1,
                                   help="Validation examples scored per epoch."),
    checkpoint_every: int = typer.Option(None, "--checkpoint-every", min=1,
                                         help="Also checkpoint every N steps."),
    threads: int = typer.Option(1, "--threads", min=1, help=THREADS_HELP),
    seed: int = typer.Option(0, "--seed"),
    fresh: bool = typer.Option(False, "--fresh", help="Start over instead of resuming."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Tune the model on the task's train split (PEFT), keeping the best epoch on validation.

    Memory: plan for 3 GB with the embedded 135M model (measured 2.0 GB at batch 4 x 48
    tokens, 2.8 GB at batch 8 x 96); lower --batch-size (and raise --grad-accum) or
    --max-length to use less. Evaluate the result with
    'promptmill eval CONFIG --model tuned:NAME'.
    """
    from ..tune.train import tune

    s = _setup(config, prompt)
    settings = _settings(method, lr, epochs, max_steps, batch_size, grad_accum, max_length,
                         rank, alpha, virtual_tokens, patience, eval_limit, checkpoint_every,
                         seed)
    name = name or f"{s.cfg.name}-{method}"
    source = base_spec(s.cfg, base)
    with console.status(f"loading base model {source}…"):
        from ..tune.base import load_base

        load_base(source)
    result = tune(s.task, s.prompt, s.metric, name=name, base=source, settings=settings,
                  store=s.store, params=s.params, resume=not fresh, progress=not quiet,
                  threads=threads)
    _print_tune(result)


def _print_tune(result) -> None:
    from rich.table import Table

    if result.resumed_at_step:
        console.print(f"resumed at step {result.resumed_at_step}")
    table = Table(title=f"Adapter {result.name} ({result.method})", title_justify="left")
    for col in ("epoch", "step", "train loss", "validation"):
        table.add_column(col, justify="right")
    for h in result.history:
        table.add_row(str(h["epoch"]), str(h["step"]), _num(h["train_loss"]),
                      _num(h["validation"]))
    console.print(table)
    stop = " (stopped early)" if result.stopped_early else ""
    console.print(f"best epoch {result.best_epoch}: validation {_num(result.best_score)}{stop}; "
                  f"loss {result.initial_loss:.3f} -> {result.final_loss:.3f}; "
                  f"{result.steps} steps in {fmt_seconds(result.seconds)}; "
                  f"peak memory {result.peak_rss_mb:.0f} MB")
    console.print(f"[dim]Next: promptmill eval CONFIG --model tuned:{result.name} --split test"
                  "[/]")


def _num(value) -> str:
    return "-" if value is None else f"{value:.3f}"


@tune_app.command("search")
def search_command(
    config: Path = typer.Argument(..., help="Task config (YAML)."),
    method: str = typer.Option("lora", "--method", help="lora, prompt-tuning or prefix."),
    trials: int = typer.Option(6, "--trials", min=1, help="Trials to finish (counting earlier "
                               "ones of the same study)."),
    max_epochs: int = typer.Option(3, "--max-epochs", min=1),
    study: str = typer.Option(None, "--study", help="Study name (default tune-TASK-METHOD). "
                              "The same name resumes the study."),
    base: str = typer.Option(None, "--base", help="Base model (default: the task's)."),
    prompt: str = typer.Option(None, "--prompt", "-p"),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    max_length: int = typer.Option(128, "--max-length", min=8),
    eval_limit: int = typer.Option(None, "--eval-limit", min=1),
    max_steps: int = typer.Option(None, "--max-steps", min=1, help="Per trial."),
    threads: int = typer.Option(1, "--threads", min=1, help=THREADS_HELP),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Search learning rate, rank/alpha, virtual tokens and epochs with Optuna.

    Trials are pruned per epoch; the study is kept in the store's database and resumes after
    a kill.
    """
    from ..tune.search import search
    from ..tune.settings import TuneSettings

    s = _setup(config, prompt)
    # validated from the raw option, so a bad --method is pydantic's field error, as before
    fixed = TuneSettings.model_validate(dict(method=method, batch_size=batch_size,
                                             max_length=max_length, eval_limit=eval_limit,
                                             max_steps=max_steps, seed=seed))
    result = search(s.task, s.prompt, s.metric, method=fixed.method, base=base_spec(s.cfg, base),
                    store=s.store, trials=trials, max_epochs=max_epochs,
                    study_name=study, seed=seed, fixed=fixed, params=s.params, threads=threads)
    from rich.table import Table

    if result.failed_stale:
        console.print(f"resumed study {result.study}: {result.failed_stale} trial(s) left "
                      "running by a killed process were marked failed")
    table = Table(title=f"Study {result.study}", title_justify="left")
    for col in ("trial", "state", "validation", "params", "adapter"):
        table.add_column(col)
    for t in result.trials:
        table.add_row(str(t["number"]), t["state"], _num(t["value"]),
                      ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in t["params"].items()), t["adapter"] or "-")
    console.print(table)
    console.print(f"best: {_num(result.best_value)} with {result.best_params} "
                  f"(adapter {result.best_adapter})")


@tune_app.command("augment")
def augment_command(
    config: Path = typer.Argument(..., help="Task config (YAML)."),
    out: Path = typer.Option(..., "--out", help="JSONL file for the augmented train split."),
    rules: str = typer.Option("typo,case,spacing,punct", "--rules",
                              help="Comma-separated rule edits ('' for none)."),
    per_example: int = typer.Option(1, "--per-example", min=1),
    paraphrase: bool = typer.Option(False, "--paraphrase", help="Add one model paraphrase per "
                                    "example (the task's model), label-checked."),
    compare: bool = typer.Option(False, "--compare", help="Tune with and without the "
                                 "augmentation and report both validation scores."),
    method: str = typer.Option("lora", "--method"),
    epochs: int = typer.Option(2, "--epochs", min=1),
    max_steps: int = typer.Option(None, "--max-steps", min=1),
    threads: int = typer.Option(1, "--threads", min=1, help=THREADS_HELP),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Augment the train split (rule edits, paraphrases, dedup).

    With --compare, also tune with and without the augmentation to measure its effect on the
    validation score.
    """
    import json
    from dataclasses import replace

    from ..tune.augment import augment

    s = _setup(config, None)
    paraphraser = s.model if paraphrase else None
    made = augment(s.task.train, rules=[r for r in rules.split(",") if r],
                   per_example=per_example, paraphraser=paraphraser, seed=seed)
    with out.open("w", encoding="utf-8") as fh:
        for ex in made.examples:
            fh.write(json.dumps(ex.to_dict(), ensure_ascii=False) + "\n")
    console.print(f"{made.stats['original']} -> {made.stats['total']} training examples "
                  f"({dict(made.stats)}); written to {out}")
    if not compare:
        return
    from ..tune.train import tune

    settings = _settings(method, None, epochs, max_steps, 8, 1, 128, 8, 16, 16, 0, None, None,
                         seed)
    source = base_spec(s.cfg, None)
    scores = {}
    for label, train in (("plain", s.task.train), ("augmented", made.examples)):
        result = tune(replace(s.task, train=list(train)), s.prompt, s.metric,
                      name=f"{s.cfg.name}-{method}-{label}", base=source, settings=settings,
                      store=s.store, params=s.params, resume=False, threads=threads)
        scores[label] = result.best_score
    console.print(f"validation: plain {_num(scores['plain'])}, augmented "
                  f"{_num(scores['augmented'])}")


@tune_app.command("pipeline")
def pipeline_command(
    config: Path = typer.Argument(..., help="Task config (YAML)."),
    name: str = typer.Option(None, "--name", help="Adapter name (default TASK-pipeline)."),
    method: str = typer.Option("lora", "--method"),
    budget_calls: int = typer.Option(100, "--budget-calls", min=1,
                                     help="Calls per prompt optimization."),
    epochs: int = typer.Option(2, "--epochs", min=1),
    max_steps: int = typer.Option(None, "--max-steps", min=1),
    base: str = typer.Option(None, "--base"),
    threads: int = typer.Option(1, "--threads", min=1, help=THREADS_HELP),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Optimize the prompt, tune the model under it, re-optimize; each stage on the test split."""
    from rich.table import Table

    from ..tune.pipeline import run_pipeline

    s = _setup(config, None)
    settings = _settings(method, None, epochs, max_steps, 8, 1, 128, 8, 16, 16, 1, None, None,
                         seed)
    rows = run_pipeline(s.task, s.prompt, s.metric, name=name or f"{s.cfg.name}-pipeline",
                        base=base_spec(s.cfg, base), store=s.store, params=s.params,
                        budget_calls=budget_calls, settings=settings, threads=threads,
                        seed=seed)
    table = Table(title="Pipeline (test split)", title_justify="left")
    for col in ("stage", "model", "score [95% CI]", "vs seed"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["stage"], r["model"], fmt_score(r["test"], *r["ci"]), r["verdict"])
    console.print(table)


@tune_app.command("list")
def list_command() -> None:
    """Tuned adapters in the store."""
    from rich.table import Table

    from ..tune.registry import list_adapters

    table = Table(title="Adapters", title_justify="left")
    for col in ("name", "method", "task", "base", "status", "best validation", "steps"):
        table.add_column(col)
    for row in list_adapters(State.store()):
        m = row["metrics"]
        table.add_row(row["name"], row["method"], row["task"], row["base_model"], row["status"],
                      _num(m.get("best_score")), str(m.get("steps", "-")))
    console.print(table)


@tune_app.command("export")
def export_command(
    name: str = typer.Argument(..., help="Adapter name."),
    out: Path = typer.Option(..., "--out", help="Folder for the merged model."),
    gguf: bool = typer.Option(False, "--gguf", help="Also convert to GGUF (needs llama.cpp's "
                              "convert_hf_to_gguf.py in $LLAMA_CPP_DIR or on PATH)."),
) -> None:
    """Merge a LoRA adapter into its base model; optionally export a GGUF for llama.cpp."""
    from ..tune.export import merge, to_gguf

    folder = merge(State.store(), name, out)
    console.print(f"merged model saved to {folder}")
    if gguf:
        target = to_gguf(folder, out / f"{name}.gguf")
        console.print(f"GGUF written to {target}; run it with --model gguf:{target}")


def register(app: typer.Typer) -> None:
    """Add the ``tune`` group to the app, and the flat names its commands had before it
    (hidden, for one release; the old ``tune CONFIG`` itself is TuneGroup's to run)."""
    app.add_typer(tune_app, name="tune")
    for old, new, command in (("tune-search", "tune search", search_command),
                              ("tune-augment", "tune augment", augment_command),
                              ("tune-pipeline", "tune pipeline", pipeline_command),
                              ("tune-list", "tune list", list_command),
                              ("tune-export", "tune export", export_command)):
        app.command(old, hidden=True)(renamed_alias(command, old, new))
