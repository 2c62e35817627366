"""``promptmill init``: a working task folder to start from."""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from .common import console, example_dir, fail


def init(directory: Path = typer.Argument(Path("promptmill-task"),
                                          help="Folder to create."),
         force: bool = typer.Option(False, "--force", help="Overwrite existing files.")) -> None:
    """Scaffold a task config, example data and two prompts."""
    source = example_dir()
    if directory.exists() and any(directory.iterdir()) and not force:
        fail(f"{directory}: folder is not empty. Fix: choose a new folder or pass --force")
    shutil.copytree(source, directory, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    console.print(f"Created [bold]{directory}[/]: task.yaml, data.jsonl, prompts/*.yaml")
    console.print(f"Next: promptmill eval {directory / 'task.yaml'} "
                  f"--prompt {directory / 'prompts/plain.yaml'} "
                  f"--prompt {directory / 'prompts/labelled.yaml'}")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
