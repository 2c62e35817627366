"""Tasks and runs: the runs list, a run's results and ledger, plots and the diagnose report."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from . import plots, queries
from .common import need_run, page_args, render, store_of

router = APIRouter()

SORTS = ("id", "task", "status", "mean", "n", "calls", "tokens", "time")


@router.get("/runs", response_class=HTMLResponse)
def runs_list(request: Request):
    store = store_of(request)
    q = request.query_params
    page, per_page = page_args(request)
    sort = q.get("sort", "id") if q.get("sort") in SORTS else "id"
    filters = {name: q.get(name, "") for name in queries.RUN_FILTERS}
    listing = queries.list_runs(store, filters=filters, model=q.get("model") or None, sort=sort,
                                descending=q.get("order", "desc") != "asc", page=page,
                                per_page=per_page)
    choices = {name: queries.distinct_values(store, name) for name in ("task", "kind", "status")}
    return render(request, "runs.html", listing=listing, filters=filters, sort=sort,
                  order=q.get("order", "desc"), sorts=SORTS, choices=choices,
                  model=q.get("model", ""))


@router.get("/tasks", response_class=HTMLResponse)
def tasks_list(request: Request):
    q = request.query_params
    page, per_page = page_args(request)
    sort = q.get("sort", "latest")
    if sort not in queries.TASK_SORTS:
        sort = "latest"
    listing = queries.list_tasks(store_of(request), sort=sort,
                                 descending=q.get("order", "desc") != "asc", page=page,
                                 per_page=per_page)
    return render(request, "tasks.html", listing=listing, sort=sort,
                  order=q.get("order", "desc"))


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_detail(request: Request, run_id: int):
    store = store_of(request)
    run = need_run(request, run_id)
    page, per_page = page_args(request)
    search = request.query_params.get("q", "").strip()
    failures = request.query_params.get("failures") in ("1", "on", "true")
    results = queries.results_page(store, run_id, search=search or None, failures_only=failures,
                                   page=page, per_page=per_page)
    return render(request, "run.html", run=run, results=results, search=search,
                  failures=failures, summary=queries.score_summary(store, run_id))


@router.get("/runs/{run_id}/plots", response_class=HTMLResponse)
def run_plots(request: Request, run_id: int):
    store = store_of(request)
    run = need_run(request, run_id)
    hist = plots.histogram(queries.score_histogram(store, run_id))
    points = queries.task_cost_accuracy(store, run["task"])
    front = queries.pareto_front(points)
    return render(request, "plots.html", run=run, histogram=hist,
                  confusion=queries.confusion(store, run_id),
                  scatter=plots.scatter_pareto(points, front), front=front)


@router.get("/runs/{run_id}/diagnose", response_class=HTMLResponse)
def run_diagnose(request: Request, run_id: int):
    run = need_run(request, run_id)
    try:
        from ..diagnosis import diagnose
        from ..diagnosis.report import render_html
    except ImportError as exc:
        return render(request, "diagnose_missing.html", run=run, reason=str(exc),
                      status_code=503)
    report = diagnose(run_id, store=store_of(request))
    return HTMLResponse(render_html(report))
