"""Suite runs in the store: one row per ``promptmill test`` invocation (migration 0007).

Data access only, returning typed rows: the store knows no suite model. Each prompt x model x
sample of a suite is an ordinary run in ``runs`` (so ``runs``, ``show``, ``compare`` and
``diagnose`` see it); this table ties them together, and keeps the whole matrix as the JSON of
``SuiteResult.to_dict()`` so the workbench and ``--baseline SUITE_RUN`` read it back whole.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TypedDict

import sqlalchemy as sa

from ..errors import StoreError
from . import schema
from .db import Store, inserted_id, utcnow

# Declared here, beside its only readers and writers; on the shared metadata so that the
# schema checks (a foreign database, the migrations building the declared tables) see it.
suite_runs = sa.Table(
    "suite_runs", schema.metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),  # one of STATUSES
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("result", sa.Text, nullable=True),  # JSON: SuiteResult.to_dict()
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime, nullable=True),
    sa.Index("ix_suite_runs_name_id", "name", "id"),  # a suite's runs, newest first
)

STATUSES = ("running", "finished", "failed", "interrupted")  # the runner's; the CLI may add
# the gates' outcome ("passed") when it saves the verdicts


class SuiteRunSummary(TypedDict):
    id: int
    name: str
    source: str
    status: str
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class SuiteRunRow(SuiteRunSummary):
    result: str | None  # JSON of SuiteResult.to_dict(), once the run finished


def create_suite_run(store: Store, name: str, source: str) -> int:
    """A new suite run, 'running' until :func:`finish_suite_run` says otherwise."""
    with store.transaction() as conn:
        return inserted_id(conn.execute(suite_runs.insert().values(
            name=name, source=source, status="running", created_at=utcnow())))


def finish_suite_run(store: Store, suite_run_id: int, status: str,
                     result: dict[str, Any] | None = None, error: str | None = None) -> None:
    """Record how a suite run ended: its matrix when it finished, or why it stopped."""
    values: dict[str, Any] = {"status": status, "error": error, "finished_at": utcnow()}
    if result is not None:
        values["result"] = _as_json(result)
    _update(store, suite_run_id, values)


def save_suite_result(store: Store, suite_run_id: int, result: dict[str, Any],
                      status: str | None = None) -> None:
    """Replace a run's matrix (and status), e.g. once the CLI has added its gate verdicts."""
    values: dict[str, Any] = {"result": _as_json(result)}
    if status is not None:
        values["status"] = status
    _update(store, suite_run_id, values)


def get_suite_run(store: Store, suite_run_id: int | str) -> SuiteRunRow | None:
    """One suite run with its result JSON text, or None when there is no such run."""
    key = _suite_run_key(suite_run_id)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(suite_runs).where(suite_runs.c.id == key)
                           ).mappings().first()
    if row is None:
        return None
    found = dict(row)
    return SuiteRunRow(**_summary(found), result=found["result"])


def suite_run_result(row: SuiteRunRow) -> dict[str, Any] | None:
    """The recorded ``SuiteResult.to_dict()`` of a run, or None before it finished."""
    return json.loads(row["result"]) if row["result"] else None


def list_suite_runs(store: Store, name: str | None = None, limit: int = 50,
                    offset: int = 0) -> list[SuiteRunRow]:
    """Suite runs newest first (one suite's, if ``name`` is given), with their result JSON."""
    query = sa.select(suite_runs).order_by(suite_runs.c.id.desc()).limit(limit).offset(offset)
    if name is not None:
        query = query.where(suite_runs.c.name == name)
    with store.engine.connect() as conn:
        rows = [dict(row) for row in conn.execute(query).mappings()]
    return [SuiteRunRow(**_summary(row), result=row["result"]) for row in rows]


def _update(store: Store, suite_run_id: int, values: dict[str, Any]) -> None:
    with store.transaction() as conn:
        updated = conn.execute(suite_runs.update().where(suite_runs.c.id == suite_run_id)
                               .values(**values)).rowcount
    if not updated:
        raise StoreError(f"suite run {suite_run_id} does not exist", where=store.safe_url(),
                         fix="create it with create_suite_run first")


def _suite_run_key(suite_run_id: int | str) -> int:
    try:
        return int(suite_run_id)
    except (TypeError, ValueError):
        raise StoreError(f"'{suite_run_id}' is not a suite run id", where="SUITE_RUN",
                         fix="give the number of a recorded suite run") from None


def _summary(row: dict[str, Any]) -> SuiteRunSummary:
    return SuiteRunSummary(id=row["id"], name=row["name"], source=row["source"],
                           status=row["status"], error=row["error"],
                           created_at=row["created_at"], finished_at=row["finished_at"])


def _as_json(result: dict[str, Any]) -> str:
    # pass@k of a case with fewer samples than k is NaN: JSON has no NaN, so it is kept null
    try:  # most results hold no NaN: skip the walk over every outcome
        return json.dumps(result, ensure_ascii=False, default=str, allow_nan=False)
    except ValueError:
        return json.dumps(_no_nan(result), ensure_ascii=False, default=str)


def _no_nan(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {str(k): _no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(v) for v in value]
    return value
