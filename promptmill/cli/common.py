"""Shared CLI pieces: the store option, one-line errors, and number formatting."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from ..store.db import Store

console = Console()
if not console.is_terminal and "COLUMNS" not in os.environ:
    console.width = 120  # logs and CI output: Rich's 80-column default crushes tables
err_console = Console(stderr=True)


class State:
    db_url: str | None = None
    _store: Store | None = None

    @classmethod
    def store(cls) -> Store:
        if cls._store is None:
            from ..store.db import Store

            cls._store = Store(cls.db_url)
        return cls._store


def fmt_score(mean: float, low: float | None = None, high: float | None = None) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if low is None or high is None:
        return f"{mean:.3f}"
    return f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def fmt_seconds(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def clip(text: Any, width: int = 60) -> str:
    text = "" if text is None else " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def is_loopback(host: str) -> bool:
    """Is ``host`` reachable only from this machine? Servers bound elsewhere need a key."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)
