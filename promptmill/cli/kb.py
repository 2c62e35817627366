"""``promptmill kb build|query``: build a knowledge base from documents and try queries on it."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .common import clip, console, fmt_seconds

kb_app = typer.Typer(help="Build and query knowledge bases for context slots.",
                     no_args_is_help=True)


@kb_app.command("build")
def build_kb(
    source: Path = typer.Argument(..., help="A folder of .txt/.md files (read recursively) or "
                                            "a JSONL file of {\"id\", \"text\"} records."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the knowledge base."),
    kind: str = typer.Option("bm25", "--kind", help="bm25, embedding or hybrid (both, fused "
                                                    "by reciprocal rank)."),
    chunk_words: int = typer.Option(120, "--chunk-words", help="Words per chunk."),
    overlap: int = typer.Option(20, "--overlap", help="Words shared by consecutive chunks."),
) -> None:
    """Chunk and index the documents in SOURCE, and save the result to --out."""
    from rich.markup import escape
    from rich.table import Table

    from ..context.kb import KnowledgeBase

    with console.status(f"building a {kind} knowledge base from {source}…"):
        kb = KnowledgeBase.build(source, chunk_words=chunk_words, overlap=overlap, kind=kind)
        kb.save(out)
    table = Table(title=escape(f"Knowledge base {out}"), title_justify="left",
                  show_header=False)
    for label, value in (("source", str(source)), ("kind", kind),
                         ("files", str(kb.info["files"])), ("chunks", str(len(kb))),
                         ("seconds", fmt_seconds(kb.info["seconds"]))):
        table.add_row(label, escape(value))
    console.print(table)
    console.print(f'try it: promptmill kb query {out} "a question"', highlight=False)


@kb_app.command("query")
def query_kb(
    directory: Path = typer.Argument(..., help="A directory written by 'promptmill kb build'."),
    question: str = typer.Argument(..., help="The text to search for."),
    k: int = typer.Option(3, "-k", "--k", min=1, help="How many passages."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Show the passages a KnowledgeContext would put in the prompt for QUESTION."""
    from ..context.kb import KnowledgeBase

    kb = KnowledgeBase.load(directory)
    found = kb.query(question, k)
    if as_json:
        rows = [{"id": p.id, "score": p.score, "text": p.text} for p in found]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    _print_passages(found, kb.kind)


def _print_passages(found: list, kind: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    if not found:
        console.print("no passage matched")
        return
    table = Table(title=f"{len(found)} passages ({kind})", title_justify="left")
    for col in ("id", "score", "text"):
        table.add_column(col)
    for p in found:
        table.add_row(escape(p.id), f"{p.score:.4f}", escape(clip(p.text, 80)))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(kb_app, name="kb")
