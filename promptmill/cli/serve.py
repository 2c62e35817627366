"""Commands for this capability; filled in by its issue. Registered in app.py."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the promptmill app."""
