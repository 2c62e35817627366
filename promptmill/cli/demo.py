"""``promptmill demo``: two prompts compared, then one optimized, on the bundled task."""

from __future__ import annotations

import typer

from .common import console, example_dir
from .eval_flow import run_eval
from .optimize_flow import run_optimization


def demo(
    method: str = typer.Option("auto", "--method", help="Optimization method."),
    budget_calls: int = typer.Option(200, "--budget-calls", min=1),
    model: str = typer.Option(None, "--model", "-m", help="Model spec for both steps "
                              "(default: the embedded model)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
) -> None:
    """Compare two prompts, then optimize one, on the bundled sentiment task (embedded model)."""
    # The plain functions behind eval and optimize, never their commands: a command called as
    # a function gets truthy OptionInfo defaults for every option it is not given.
    folder = example_dir()
    task = folder / "task.yaml"
    console.rule("[bold]promptmill demo 1/2: two hand-written prompts, a paired verdict")
    console.print(f"task: {task}  model: {model or 'embedded (SmolLM2-135M-Instruct)'}")
    run_eval(task, [str(folder / "prompts/plain.yaml"), str(folder / "prompts/labelled.yaml")],
             model_spec=model, progress=not quiet)
    console.rule(f"[bold]promptmill demo 2/2: optimize the plain prompt ({method}, "
                 f"{budget_calls} calls)")
    run_optimization(task, method=method, budget_calls=budget_calls, model=model,
                     progress=not quiet)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
