"""Paginated reads for the workbench pages, in SQLAlchemy Core against the store's tables.

Every list is one LIMIT/OFFSET page plus one COUNT, both served by an index (``runs`` by its
primary key, ``results`` by ``ix_results_run_idx``), so a page costs the same with 100 runs as
with 10,000, and the same for a 100-example run as for a 10,000-example one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from ..store import schema
from ..store.db import Store, utcnow

runs_t, results_t, prompts_t = schema.runs, schema.results, schema.prompts
ratings_t, jobs_t = schema.ratings, schema.jobs

MAX_PER_PAGE = 200


@dataclass
class Page:
    rows: list[dict[str, Any]]
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


# --- runs ------------------------------------------------------------------------------------
def run_mean():
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
              per_page: int = 50) -> Page:
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
        rows = [dict(r) for r in conn.execute(query).mappings()]
        total = conn.execute(count).scalar_one()
    return Page(rows, total, page, per_page)


TASK_SORTS = ("task", "runs", "best", "latest")


def list_tasks(store: Store, *, sort: str = "latest", descending: bool = True, page: int = 1,
               per_page: int = 50) -> Page:
    """One row per task: how many runs, the best mean score and the newest run."""
    page, per_page = clamp_page(page, per_page)
    columns = {"task": runs_t.c.task, "runs": sa.func.count().label("runs"),
               "best": sa.func.max(run_mean()).label("best"),
               "latest": sa.func.max(runs_t.c.id).label("latest")}
    key = columns.get(sort, columns["latest"])
    key = sa.literal_column(sort) if sort in ("runs", "best", "latest") else key
    query = (sa.select(*columns.values()).group_by(runs_t.c.task)
             .order_by(key.desc() if descending else key.asc(), runs_t.c.task)
             .limit(per_page).offset((page - 1) * per_page))
    count = sa.select(sa.func.count(sa.distinct(runs_t.c.task)))
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
        total = conn.execute(count).scalar_one()
    return Page(rows, total, page, per_page)


def distinct_values(store: Store, column: str, limit: int = 200) -> list[str]:
    """The values a runs filter can take, for its drop-down."""
    col = runs_t.c[column]
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(col).distinct().order_by(col).limit(limit)).scalars())


def get_run(store: Store, run_id: int) -> dict[str, Any] | None:
    query = (sa.select(runs_t, prompts_t.c.name.label("prompt_name"),
                       prompts_t.c.version.label("prompt_version"),
                       prompts_t.c.body.label("prompt_body"))
             .outerjoin(prompts_t, prompts_t.c.id == runs_t.c.prompt_id)
             .where(runs_t.c.id == run_id))
    with store.engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return dict(row) if row else None


def score_summary(store: Store, run_id: int) -> dict[str, Any]:
    """Mean and a normal-approximation 95% CI from SQL sums: constant work per page view."""
    s = results_t.c.score
    query = sa.select(sa.func.count(), sa.func.count(s), sa.func.coalesce(sa.func.sum(s), 0.0),
                      sa.func.coalesce(sa.func.sum(s * s), 0.0)).where(results_t.c.run_id == run_id)
    with store.engine.connect() as conn:
        n_rows, n, total, squares = conn.execute(query).one()
    if not n_rows:
        return {"n": 0, "mean": None, "low": None, "high": None}
    mean = total / n_rows  # unscored (errored) examples count as 0, as in scores_by_example
    var = max(0.0, squares / n_rows - mean * mean)
    half = 1.96 * math.sqrt(var / n_rows) if n_rows > 1 else 0.0
    return {"n": n_rows, "mean": mean, "low": max(0.0, mean - half),
            "high": min(1.0, mean + half)}


# --- results ---------------------------------------------------------------------------------
def _results_where(run_id: int, search: str | None, failures_only: bool,
                   threshold: float = 1.0) -> list:
    where = [results_t.c.run_id == run_id]
    if failures_only:
        where.append(sa.or_(results_t.c.score < threshold, results_t.c.score.is_(None)))
    if search:
        where.append(sa.or_(*(results_t.c[name].contains(search, autoescape=True)
                              for name in ("example_id", "inputs", "target", "output"))))
    return where


def results_page(store: Store, run_id: int, *, search: str | None = None,
                 failures_only: bool = False, page: int = 1, per_page: int = 50) -> Page:
    page, per_page = clamp_page(page, per_page)
    where = _results_where(run_id, search, failures_only)
    query = (sa.select(results_t).where(*where).order_by(results_t.c.idx)
             .limit(per_page).offset((page - 1) * per_page))
    count = sa.select(sa.func.count()).select_from(results_t).where(*where)
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
        total = conn.execute(count).scalar_one()
    attach_ratings(store, run_id, rows)
    return Page(rows, total, page, per_page)


def result_rows(store: Store, run_id: int, example_ids: list[str]) -> dict[str, dict]:
    if not example_ids:
        return {}
    query = sa.select(results_t).where(results_t.c.run_id == run_id,
                                       results_t.c.example_id.in_(example_ids))
    with store.engine.connect() as conn:
        return {r["example_id"]: dict(r) for r in conn.execute(query).mappings()}


def count_results(store: Store, run_id: int) -> int:
    query = sa.select(sa.func.count()).select_from(results_t).where(results_t.c.run_id == run_id)
    with store.engine.connect() as conn:
        return conn.execute(query).scalar_one()


def get_result(store: Store, run_id: int, example_id: str) -> dict[str, Any] | None:
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


def confusion(store: Store, run_id: int, top: int = 12) -> dict[str, Any] | None:
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


def task_cost_accuracy(store: Store, task: str, limit: int = 500) -> list[dict[str, Any]]:
    """Finished eval runs of a task: mean score against tokens per example."""
    query = (sa.select(runs_t.c.id, runs_t.c.split, runs_t.c.model, run_mean().label("mean"),
                       runs_t.c.tokens_in, runs_t.c.tokens_out, runs_t.c.n_done,
                       runs_t.c.prompt_hash)
             .where(runs_t.c.task == task, runs_t.c.kind == "eval", runs_t.c.n_done > 0)
             .order_by(runs_t.c.id.desc()).limit(limit))
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    for row in rows:
        row["cost"] = (row["tokens_in"] + row["tokens_out"]) / row["n_done"]
    return rows


def pareto_front(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Points no other point beats on both lower cost and higher accuracy, by cost."""
    front: list[dict[str, Any]] = []
    for p in sorted(points, key=lambda p: (p["cost"], -(p["mean"] or 0.0))):
        if not front or (p["mean"] or 0.0) > (front[-1]["mean"] or 0.0):
            front.append(p)
    return front


# --- ratings ---------------------------------------------------------------------------------
def add_rating(store: Store, run_id: int, example_id: str, score: float,
               comment: str | None = None, author: str | None = None) -> int:
    with store.engine.begin() as conn:
        return int(conn.execute(ratings_t.insert().values(
            run_id=run_id, example_id=example_id, score=score, comment=comment or None,
            author=author or None, created_at=utcnow())).inserted_primary_key[0])


def ratings_for(store: Store, run_id: int, example_id: str) -> list[dict[str, Any]]:
    query = (sa.select(ratings_t).where(ratings_t.c.run_id == run_id,
                                        ratings_t.c.example_id == example_id)
             .order_by(ratings_t.c.id))
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def attach_ratings(store: Store, run_id: int, rows: list[dict[str, Any]]) -> None:
    """Each row gains ``rating`` (the mean human score) and ``n_ratings``."""
    ids = [r["example_id"] for r in rows]
    found: dict[str, tuple[float, int]] = {}
    if ids:
        query = (sa.select(ratings_t.c.example_id, sa.func.avg(ratings_t.c.score),
                           sa.func.count())
                 .where(ratings_t.c.run_id == run_id, ratings_t.c.example_id.in_(ids))
                 .group_by(ratings_t.c.example_id))
        with store.engine.connect() as conn:
            found = {ex: (mean, n) for ex, mean, n in conn.execute(query)}
    for row in rows:
        row["rating"], row["n_ratings"] = found.get(row["example_id"], (None, 0))


# --- jobs ------------------------------------------------------------------------------------
def create_job(store: Store, kind: str, config: dict[str, Any]) -> int:
    now = utcnow()
    with store.engine.begin() as conn:
        return int(conn.execute(jobs_t.insert().values(
            kind=kind, status="queued", config=json.dumps(config), progress=0.0,
            created_at=now, updated_at=now)).inserted_primary_key[0])


def update_job(store: Store, job_id: int, **fields: Any) -> None:
    with store.engine.begin() as conn:
        conn.execute(jobs_t.update().where(jobs_t.c.id == job_id)
                     .values(updated_at=utcnow(), **fields))


def get_job(store: Store, job_id: int) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(jobs_t).where(jobs_t.c.id == job_id)).mappings().first()
    return dict(row) if row else None


def list_jobs(store: Store, page: int = 1, per_page: int = 50) -> Page:
    page, per_page = clamp_page(page, per_page)
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(
            sa.select(jobs_t).order_by(jobs_t.c.id.desc()).limit(per_page)
            .offset((page - 1) * per_page)).mappings()]
        total = conn.execute(sa.select(sa.func.count()).select_from(jobs_t)).scalar_one()
    return Page(rows, total, page, per_page)


# --- prompts ---------------------------------------------------------------------------------
def prompt_names(store: Store) -> list[dict[str, Any]]:
    """One row per prompt name: its newest version and how many versions it has."""
    query = (sa.select(prompts_t.c.name, sa.func.max(prompts_t.c.version).label("latest"),
                       sa.func.count().label("versions"),
                       sa.func.max(prompts_t.c.created_at).label("updated"))
             .group_by(prompts_t.c.name).order_by(prompts_t.c.name))
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def prompt_versions(store: Store, name: str) -> list[dict[str, Any]]:
    """One prompt's versions with their tags, newest first."""
    return store.list_prompts(name)[::-1]
