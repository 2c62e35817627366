"""The ``adapters`` table: one row per tuned adapter, with its folder, settings and metrics."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TypedDict, cast

import sqlalchemy as sa

from . import schema
from .db import Store, utcnow

t = schema.adapters


class AdapterRow(TypedDict):
    """An adapter, with ``config`` and ``metrics`` decoded from their JSON."""

    id: int
    name: str
    method: str
    base_model: str
    task: str
    path: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    status: str
    created_at: datetime
    finished_at: datetime | None


def _decoded(row: sa.RowMapping) -> AdapterRow:
    out = dict(row)
    out["config"] = json.loads(out["config"] or "{}")
    out["metrics"] = json.loads(out["metrics"] or "{}")
    return cast(AdapterRow, out)  # the adapters table's columns are AdapterRow's keys


def find_adapter(store: Store, name: str) -> AdapterRow | None:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.name == name)).mappings().first()
    return _decoded(row) if row else None


def list_adapters(store: Store) -> list[AdapterRow]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(t).order_by(t.c.id)).mappings().all()
    return [_decoded(r) for r in rows]


def save_adapter(store: Store, name: str, values: dict[str, Any]) -> None:
    """Create adapter NAME with ``values``, or overwrite those columns of the existing row."""
    with store.engine.begin() as conn:
        if conn.execute(sa.select(t.c.id).where(t.c.name == name)).first():
            conn.execute(t.update().where(t.c.name == name).values(**values))
        else:
            conn.execute(t.insert().values(name=name, created_at=utcnow(), metrics="{}",
                                           **values))


def update_adapter(store: Store, name: str, *, status: str | None = None,
                   metrics: dict[str, Any] | None = None, finished: bool = False) -> None:
    values: dict[str, Any] = {}
    if status is not None:
        values["status"] = status
    if metrics is not None:
        values["metrics"] = json.dumps(metrics, sort_keys=True, default=float)
    if finished:
        values["finished_at"] = utcnow()
    with store.engine.begin() as conn:
        conn.execute(t.update().where(t.c.name == name).values(**values))


def delete_adapter(store: Store, name: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(t.delete().where(t.c.name == name))
