"""Paginated reads for the workbench pages, in SQLAlchemy Core against the store's tables.

Every list is one LIMIT/OFFSET page plus one COUNT, both served by an index (``runs`` by its
primary key, ``results`` by ``ix_results_run_idx``), so a page costs the same with 100 runs as
with 10,000, and the same for a 100-example run as for a 10,000-example one.

Rows are plain dicts (templates and JSON read them as such), typed as TypedDicts so callers
know their keys.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypedDict, TypeVar, cast

import sqlalchemy as sa

from . import schema
from .db import Store, inserted_id, utcnow
from .ratings import RatingRow, attach_ratings

runs_t, results_t, prompts_t, jobs_t = schema.runs, schema.results, schema.prompts, schema.jobs

MAX_PER_PAGE = 200

RowT = TypeVar("RowT")


class RunRow(TypedDict, total=False):
    """A ``runs`` row, with its prompt's name and version (and body, for one run)."""

    id: int
    kind: str
    task: str
    split: str
    model: str
    model_identity: str
    metric: str
    prompt_id: int | None
    prompt_hash: str
    fingerprint: str
    config: str
    seed: int
    status: str
    error: str | None
    n_examples: int
    n_done: int
    n_errors: int
    score_sum: float
    calls: int
    cache_hits: int
    tokens_in: int
    tokens_out: int
    model_seconds: float
    wall_seconds: float
    created_at: datetime
    finished_at: datetime | None
    parent_run_id: int | None
    owner_pid: int | None
    owner_host: str | None
    owner_started: str | None
    heartbeat_at: datetime | None
    mean: float | None
    prompt_name: str | None
    prompt_version: int | None
    prompt_body: str | None


class TaskRow(TypedDict):
    task: str
    runs: int
    best: float | None
    latest: int


class ResultRow(TypedDict, total=False):
    """A ``results`` row; pages add ``rating`` (the mean human score) and ``n_ratings``."""

    run_id: int
    example_id: str
    idx: int
    inputs: str
    target: str | None
    answers: str | None
    output: str | None
    score: float | None
    feedback: str | None
    error: str | None
    tokens_in: int
    tokens_out: int
    seconds: float
    cached: bool
    call_key: str | None
    segment: str | None
    raw_output: str | None
    context_notes: str | None
    rating: float | None
    n_ratings: int


class ScoreSummary(TypedDict):
    n: int
    mean: float | None
    low: float | None
    high: float | None


class Confusion(TypedDict):
    labels: list[str]
    columns: list[str]
    matrix: dict[str, dict[str, int]]


class CostPoint(TypedDict):
    """One finished eval run on the cost/accuracy plot."""

    id: int
    split: str
    model: str
    mean: float | None
    tokens_in: int
    tokens_out: int
    n_done: int
    prompt_hash: str
    cost: float


class JobRow(TypedDict):
    id: int
    kind: str
    status: str
    config: str
    run_id: int | None
    progress: float
    error: str | None
    created_at: datetime
    updated_at: datetime


class PromptNameRow(TypedDict):
    name: str
    latest: int
    versions: int
    updated: datetime


@dataclass
class Page(Generic[RowT]):
    rows: list[RowT]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def clamp_page(page: int, per_page: int) -> tuple[int, int]:
    return max(1, page), min(MAX_PER_PAGE, max(1, per_page))


def _rows(conn: sa.Connection, query: sa.Select) -> list[Any]:
    return [dict(r) for r in conn.execute(query).mappings()]


# --- runs ------------------------------------------------------------------------------------
def run_mean() -> sa.Case:
    """The mean score of a run as SQL, NULL before its first result."""
    return sa.case((runs_t.c.n_done > 0, runs_t.c.score_sum * 1.0 / runs_t.c.n_done),
                   else_=None)


RUN_SORTS = {
    "id": runs_t.c.id, "task": runs_t.c.task, "status": runs_t.c.status,
    "calls": runs_t.c.calls, "time": runs_t.c.wall_seconds,
    "tokens": runs_t.c.tokens_in + runs_t.c.tokens_out, "n": runs_t.c.n_done,
}
RUN_FILTERS = ("task", "kind", "status", "split")


def list_runs(store: Store, *, filters: dict[str, str] | None = None, model: str | None = None,
              sort: str = "id", descending: bool = True, page: int = 1,
              per_page: int = 50) -> Page[RunRow]:
    page, per_page = clamp_page(page, per_page)
    where = [runs_t.c[name] == value for name, value in (filters or {}).items()
             if name in RUN_FILTERS and value]
    if model:
        where.append(runs_t.c.model.contains(model, autoescape=True))
    key = run_mean() if sort == "mean" else RUN_SORTS.get(sort, runs_t.c.id)
    order = [key.desc() if descending else key.asc(), runs_t.c.id.desc()]
    query = (sa.select(runs_t, run_mean().label("mean"), prompts_t.c.name.label("prompt_name"),
                       prompts_t.c.version.label("prompt_version"))
             .outerjoin(prompts_t, prompts_t.c.id == runs_t.c.prompt_id)
             .where(*where).order_by(*order).limit(per_page).offset((page - 1) * per_page))
    count = sa.select(sa.func.count()).select_from(runs_t).where(*where)
    with store.engine.connect() as conn:
        rows = _rows(conn, query)
        total = conn.execute(count).scalar_one()
    return Page(rows, total, page, per_page)


TASK_SORTS = ("task", "runs", "best", "latest")


def list_tasks(store: Store, *, sort: str = "latest", descending: bool = True, page: int = 1,
               per_page: int = 50) -> Page[TaskRow]:
    """One row per task: how many runs, the best mean score and the newest run."""
    page, per_page = clamp_page(page, per_page)
    columns: dict[str, Any] = {
        "task": runs_t.c.task, "runs": sa.func.count().label("runs"),
        "best": sa.func.max(run_mean()).label("best"),
        "latest": sa.func.max(runs_t.c.id).label("latest")}
    key = columns.get(sort, columns["latest"])
    key = sa.literal_column(sort) if sort in ("runs", "best", "latest") else key
    query = (sa.select(*columns.values()).group_by(runs_t.c.task)
             .order_by(key.desc() if descending else key.asc(), runs_t.c.task)
             .limit(per_page).offset((page - 1) * per_page))
    count = sa.select(sa.func.count(sa.distinct(runs_t.c.task)))
    with store.engine.connect() as conn:
        rows = _rows(conn, query)
        total = conn.execute(count).scalar_one()
    return Page(rows, total, page, per_page)


def distinct_values(store: Store, column: str, limit: int = 200) -> list[str]:
    """The values a runs filter can take, for its drop-down."""
    col = runs_t.c[column]
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(col).distinct().order_by(col).limit(limit)).scalars())


def get_run(store: Store, run_id: int) -> RunRow | None:
    query = (sa.select(runs_t, prompts_t.c.name.label("prompt_name"),
                       prompts_t.c.version.label("prompt_version"),
                       prompts_t.c.body.label("prompt_body"))
             .outerjoin(prompts_t, prompts_t.c.id == runs_t.c.prompt_id)
             .where(runs_t.c.id == run_id))
    with store.engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return cast(RunRow, dict(row)) if row else None


def score_summary(store: Store, run_id: int) -> ScoreSummary:
    """A run's mean score and 95% CI: the same estimate as the CLI and diagnose
    (:func:`promptmill.stats.mean_ci`). For a pass/fail run it comes from SQL counts in
    constant work per page view; for graded scores, from the scores themselves."""
    from ..stats import mean_ci, proportion_ci

    s = results_t.c.score
    binary = sa.func.sum(sa.case((sa.or_(s.is_(None), s.in_((0.0, 1.0))), 1), else_=0))
    query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(s), 0.0),
                      binary).where(results_t.c.run_id == run_id)
    with store.engine.connect() as conn:
        n_rows, total, n_binary = conn.execute(query).one()
    if not n_rows:
        return {"n": 0, "mean": None, "low": None, "high": None}
    if n_binary == n_rows:
        est = proportion_ci(round(total), n_rows)  # unscored (errored) examples count as 0
    else:
        est = mean_ci(list(store.scores_by_example(run_id).values()))
    return {"n": est.n, "mean": est.mean, "low": est.low, "high": est.high}


# --- results ---------------------------------------------------------------------------------
def _results_where(run_id: int, search: str | None, failures_only: bool,
                   threshold: float = 1.0) -> list[Any]:
    where: list[Any] = [results_t.c.run_id == run_id]
    if failures_only:
        where.append(sa.or_(results_t.c.score < threshold, results_t.c.score.is_(None)))
    if search:
        where.append(sa.or_(*(results_t.c[name].contains(search, autoescape=True)
                              for name in ("example_id", "inputs", "target", "output"))))
    return where


def results_page(store: Store, run_id: int, *, search: str | None = None,
                 failures_only: bool = False, page: int = 1,
                 per_page: int = 50) -> Page[ResultRow]:
    page, per_page = clamp_page(page, per_page)
    where = _results_where(run_id, search, failures_only)
    query = (sa.select(results_t).where(*where).order_by(results_t.c.idx)
             .limit(per_page).offset((page - 1) * per_page))
    count = sa.select(sa.func.count()).select_from(results_t).where(*where)
    with store.engine.connect() as conn:
        rows: list[ResultRow] = _rows(conn, query)
        total = conn.execute(count).scalar_one()
    attach_ratings(store, run_id, rows)
    return Page(rows, total, page, per_page)


def result_rows(store: Store, run_id: int, example_ids: list[str]) -> dict[str, ResultRow]:
    if not example_ids:
        return {}
    query = sa.select(results_t).where(results_t.c.run_id == run_id,
                                       results_t.c.example_id.in_(example_ids))
    with store.engine.connect() as conn:
        return {r["example_id"]: r for r in _rows(conn, query)}


def count_results(store: Store, run_id: int) -> int:
    query = sa.select(sa.func.count()).select_from(results_t).where(results_t.c.run_id == run_id)
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def get_result(store: Store, run_id: int, example_id: str) -> ResultRow | None:
    return result_rows(store, run_id, [example_id]).get(example_id)


def score_histogram(store: Store, run_id: int, bins: int = 10) -> list[int]:
    """Counts of scores in ``bins`` equal buckets of [0, 1], counted by the database."""
    bucket = sa.func.min(sa.cast(sa.func.coalesce(results_t.c.score, 0.0) * bins, sa.Integer),
                         bins - 1)
    query = (sa.select(bucket.label("b"), sa.func.count())
             .where(results_t.c.run_id == run_id).group_by("b"))
    counts = [0] * bins
    with store.engine.connect() as conn:
        for b, n in conn.execute(query):
            counts[max(0, min(bins - 1, int(b)))] += n
    return counts


def confusion(store: Store, run_id: int, top: int = 12) -> Confusion | None:
    """Target against output counts for label tasks; None when targets are not labels."""
    t = results_t
    with store.engine.connect() as conn:
        labels = list(conn.execute(
            sa.select(t.c.target).where(t.c.run_id == run_id, t.c.target.is_not(None))
            .group_by(t.c.target).order_by(sa.func.count().desc()).limit(top + 1)).scalars())
        if not labels or len(labels) > top:
            return None
        pairs = conn.execute(sa.select(t.c.target, t.c.output, sa.func.count())
                             .where(t.c.run_id == run_id, t.c.target.in_(labels))
                             .group_by(t.c.target, t.c.output)).all()
    columns = [*labels, "(other)"]
    matrix = {label: dict.fromkeys(columns, 0) for label in labels}
    for target, output, n in pairs:
        out = (output or "").strip()
        matrix[target][out if out in matrix else "(other)"] += n
    return {"labels": labels, "columns": columns, "matrix": matrix}


def task_cost_accuracy(store: Store, task: str, limit: int = 500) -> list[CostPoint]:
    """Finished eval runs of a task: mean score against tokens per example."""
    query = (sa.select(runs_t.c.id, runs_t.c.split, runs_t.c.model, run_mean().label("mean"),
                       runs_t.c.tokens_in, runs_t.c.tokens_out, runs_t.c.n_done,
                       runs_t.c.prompt_hash)
             .where(runs_t.c.task == task, runs_t.c.kind == "eval", runs_t.c.n_done > 0)
             .order_by(runs_t.c.id.desc()).limit(limit))
    with store.engine.connect() as conn:
        rows: list[CostPoint] = _rows(conn, query)
    for row in rows:
        row["cost"] = (row["tokens_in"] + row["tokens_out"]) / row["n_done"]
    return rows


# --- ratings ---------------------------------------------------------------------------------
def add_rating(store: Store, run_id: int, example_id: str, score: float,
               comment: str | None = None, author: str | None = None) -> int:
    with store.engine.begin() as conn:
        return inserted_id(conn.execute(schema.ratings.insert().values(
            run_id=run_id, example_id=example_id, score=score, comment=comment or None,
            author=author or None, created_at=utcnow())))


def ratings_for(store: Store, run_id: int, example_id: str) -> list[RatingRow]:
    ratings_t = schema.ratings
    query = (sa.select(ratings_t).where(ratings_t.c.run_id == run_id,
                                        ratings_t.c.example_id == example_id)
             .order_by(ratings_t.c.id))
    with store.engine.connect() as conn:
        return _rows(conn, query)


# --- jobs ------------------------------------------------------------------------------------
def create_job(store: Store, kind: str, config: dict[str, Any]) -> int:
    now = utcnow()
    with store.engine.begin() as conn:
        return inserted_id(conn.execute(jobs_t.insert().values(
            kind=kind, status="queued", config=json.dumps(config), progress=0.0,
            created_at=now, updated_at=now)))


def update_job(store: Store, job_id: int, **fields: Any) -> None:
    with store.engine.begin() as conn:
        conn.execute(jobs_t.update().where(jobs_t.c.id == job_id)
                     .values(updated_at=utcnow(), **fields))


def get_job(store: Store, job_id: int) -> JobRow | None:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(jobs_t).where(jobs_t.c.id == job_id)).mappings().first()
    return cast(JobRow, dict(row)) if row else None


def list_jobs(store: Store, page: int = 1, per_page: int = 50) -> Page[JobRow]:
    page, per_page = clamp_page(page, per_page)
    with store.engine.connect() as conn:
        rows = _rows(conn, sa.select(jobs_t).order_by(jobs_t.c.id.desc()).limit(per_page)
                     .offset((page - 1) * per_page))
        total = conn.execute(sa.select(sa.func.count()).select_from(jobs_t)).scalar_one()
    return Page(rows, total, page, per_page)


# --- prompts ---------------------------------------------------------------------------------
def prompt_names(store: Store) -> list[PromptNameRow]:
    """One row per prompt name: its newest version and how many versions it has."""
    query = (sa.select(prompts_t.c.name, sa.func.max(prompts_t.c.version).label("latest"),
                       sa.func.count().label("versions"),
                       sa.func.max(prompts_t.c.created_at).label("updated"))
             .group_by(prompts_t.c.name).order_by(prompts_t.c.name))
    with store.engine.connect() as conn:
        return _rows(conn, query)


def prompt_versions(store: Store, name: str) -> list[dict[str, Any]]:
    """One prompt's versions with their tags, newest first."""
    return store.list_prompts(name)[::-1]
