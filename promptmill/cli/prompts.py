"""``promptmill prompts list|show|diff|tag``: the prompt registry."""

from __future__ import annotations

import typer

from .common import State, clip, console

prompts_app = typer.Typer(help="List, show, diff and tag saved prompt versions.",
                          no_args_is_help=True)


def _load(ref: str):
    from ..prompt import Prompt, parse_prompt_ref

    name, version = parse_prompt_ref(ref)
    row = State.store().get_prompt(name, version)
    return row, Prompt.from_stored(row["body"], f"{name}@{row['version']}", name=name)


def _yaml(prompt) -> str:
    return prompt.to_yaml()


@prompts_app.command("list")
def list_prompts(name: str = typer.Argument(None, help="Only this prompt's versions.")) -> None:
    """Every saved version, with its hash, tags and note."""
    from rich.table import Table

    table = Table(title="Prompt versions", title_justify="left")
    for col in ("name", "version", "hash", "tags", "parent", "note", "created"):
        table.add_column(col)
    for row in State.store().list_prompts(name or None):
        table.add_row(row["name"], str(row["version"]), row["hash"][:12],
                      ", ".join(row["tags"]), str(row["parent_id"] or ""),
                      clip(row["note"], 40), row["created_at"].strftime("%Y-%m-%d %H:%M"))
    console.print(table)


@prompts_app.command("show")
def show_prompt(ref: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@TAG.")) -> None:
    """Print a prompt version as YAML (the same format 'eval --prompt FILE' reads)."""
    row, prompt = _load(ref)
    console.print(f"# {row['name']}@{row['version']}  hash {row['hash']}", highlight=False)
    console.print(_yaml(prompt), highlight=False, markup=False)


@prompts_app.command("diff")
def diff_prompts(a: str = typer.Argument(...), b: str = typer.Argument(...)) -> None:
    """Unified diff between two versions."""
    import difflib

    row_a, prompt_a = _load(a)
    row_b, prompt_b = _load(b)
    lines = difflib.unified_diff(_yaml(prompt_a).splitlines(), _yaml(prompt_b).splitlines(),
                                 f"{row_a['name']}@{row_a['version']}",
                                 f"{row_b['name']}@{row_b['version']}", lineterm="")
    text = "\n".join(lines)
    console.print(text or "no differences", highlight=False, markup=False)


@prompts_app.command("tag")
def tag_prompt(ref: str = typer.Argument(..., help="NAME@VERSION"),
               tag: str = typer.Argument(..., help="e.g. production")) -> None:
    """Point a tag at a version (moving it if it pointed elsewhere)."""
    row, _ = _load(ref)
    State.store().tag_prompt(row["name"], row["version"], tag)
    console.print(f"{row['name']}@{tag} -> version {row['version']}")


def register(app: typer.Typer) -> None:
    app.add_typer(prompts_app, name="prompts")
