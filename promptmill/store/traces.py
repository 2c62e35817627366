"""The ``traces`` table: every request ``promptmill serve`` answered."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict, cast

import sqlalchemy as sa

from . import schema
from .db import Store


class TraceRow(TypedDict):
    """One served request; ``inputs`` and ``messages`` are JSON text."""

    id: int
    prompt_name: str
    prompt_id: int | None
    model: str
    inputs: str
    messages: str | None
    output: str | None
    status: int
    error: str | None
    tokens_in: int
    tokens_out: int
    seconds: float
    created_at: datetime


def add_traces(store: Store, rows: Sequence[dict[str, Any]]) -> None:
    """Insert trace rows (without ``id``) in one transaction."""
    if rows:
        with store.engine.begin() as conn:
            conn.execute(schema.traces.insert(), list(rows))


def list_traces(store: Store, prompt_name: str | None = None, status: int | None = None,
                limit: int | None = None) -> list[TraceRow]:
    """Traces oldest first, of one prompt and one HTTP status when given."""
    t = schema.traces
    query = sa.select(t).order_by(t.c.id)
    if prompt_name:
        query = query.where(t.c.prompt_name == prompt_name)
    if status is not None:
        query = query.where(t.c.status == status)
    if limit:
        query = query.limit(limit)
    with store.engine.connect() as conn:
        # the traces table's columns are exactly TraceRow's keys
        return [cast(TraceRow, dict(r)) for r in conn.execute(query).mappings()]
