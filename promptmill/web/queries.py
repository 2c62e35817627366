"""The workbench's reads and writes, as the pages call them.

Every query lives in the store (:mod:`promptmill.store.workbench` and
:mod:`promptmill.store.ratings`); this module names them for the routers and adds what the
pages compute from their rows.
"""

from __future__ import annotations

from ..store.ratings import attach_ratings
from ..store.workbench import (
    MAX_PER_PAGE,
    RUN_FILTERS,
    RUN_SORTS,
    TASK_SORTS,
    CostPoint,
    Page,
    add_rating,
    clamp_page,
    confusion,
    count_results,
    create_job,
    distinct_values,
    get_job,
    get_result,
    get_run,
    list_jobs,
    list_runs,
    list_tasks,
    prompt_names,
    prompt_versions,
    ratings_for,
    result_rows,
    results_page,
    run_mean,
    score_histogram,
    score_summary,
    task_cost_accuracy,
    update_job,
)


def pareto_front(points: list[CostPoint]) -> list[CostPoint]:
    """Points no other point beats on both lower cost and higher accuracy, by cost."""
    front: list[CostPoint] = []
    for p in sorted(points, key=lambda p: (p["cost"], -(p["mean"] or 0.0))):
        if not front or (p["mean"] or 0.0) > (front[-1]["mean"] or 0.0):
            front.append(p)
    return front


__all__ = [
    "MAX_PER_PAGE", "RUN_FILTERS", "RUN_SORTS", "TASK_SORTS", "Page", "add_rating",
    "attach_ratings", "clamp_page", "confusion", "count_results", "create_job",
    "distinct_values", "get_job", "get_result", "get_run", "list_jobs", "list_runs",
    "list_tasks", "pareto_front", "prompt_names", "prompt_versions", "ratings_for",
    "result_rows", "results_page", "run_mean", "score_histogram", "score_summary",
    "task_cost_accuracy", "update_job",
]
