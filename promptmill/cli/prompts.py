"""``promptmill prompts list|show|diff|tag|export|import``: the prompt registry."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import State, clip, console, renamed_alias

prompts_app = typer.Typer(help="List, show, diff, tag, export and import saved prompt "
                          "versions.", no_args_is_help=True)


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


@prompts_app.command("export")
def export_version(
    ref: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@TAG."),
    fmt: str = typer.Option("json", "--format", "-f", help="json, yaml or python (a standalone "
                            "renderer that needs only the standard library)."),
    out: Path = typer.Option(None, "--out", "-o", help="File to write (default: stdout)."),
) -> None:
    """Export a prompt version to JSON, YAML or a standalone Python snippet."""
    from ..portable import export_prompt

    text = export_prompt(State.store(), ref, fmt)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    console.print(f"wrote {ref} to {out} ({fmt})", highlight=False)


@prompts_app.command("import")
def import_version(
    path: Path = typer.Argument(..., help="A file written by 'prompts export' (JSON or YAML)."),
    name: str = typer.Option(None, "--name", help="Save under another prompt name."),
    no_tags: bool = typer.Option(False, "--no-tags", help="Do not move tags to this version."),
) -> None:
    """Import an exported prompt version; its content hash is checked."""
    from ..portable import import_prompt

    row = import_prompt(State.store(), path, name=name, tags=not no_tags)
    console.print(f"imported {row['name']}@{row['version']} (hash {row['hash']})",
                  highlight=False)


def register(app: typer.Typer) -> None:
    """Add the ``prompts`` group to the app, and the flat names two of its commands had before
    it (hidden, for one release)."""
    app.add_typer(prompts_app, name="prompts")
    for old, new, command in (("prompts-export", "prompts export", export_version),
                              ("prompts-import", "prompts import", import_version)):
        app.command(old, hidden=True)(renamed_alias(command, old, new))
