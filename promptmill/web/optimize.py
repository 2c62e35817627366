"""Optimization: the validation-score trajectory, live over server-sent events, then the tree
of candidates (who was derived from whom, and how)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from ..store.db import Store
from . import plots
from .common import need_run, render, store_of

router = APIRouter()

POLL_SECONDS = 0.5
LIVE_STATUSES = ("running", "queued")


def family_tree(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Candidates as a forest: roots have no parents; a child sits under its first parent."""
    nodes = {}
    for cand in candidates:
        parents = json.loads(cand["parents"] or "[]")
        nodes[cand["idx"]] = {**cand, "parent_list": parents, "children": []}
    roots: list[dict[str, Any]] = []
    for node in nodes.values():
        first = next((p for p in node["parent_list"] if p in nodes and p != node["idx"]), None)
        (nodes[first]["children"] if first is not None else roots).append(node)
    return roots


def trajectory_points(steps: list[dict[str, Any]]) -> list[tuple[float, float]]:
    return [(s["step"], s["incumbent_score"]) for s in steps if s["incumbent_score"] is not None]


@router.get("/runs/{run_id}/optimize", response_class=HTMLResponse)
def optimize_page(request: Request, run_id: int):
    store = store_of(request)
    run = need_run(request, run_id)
    steps = store.steps(run_id)
    chart = plots.line_chart(trajectory_points(steps), "best validation score by step", "step",
                             "best score")
    return render(request, "optimize.html", run=run, steps=steps[-50:], n_steps=len(steps),
                  chart=chart, tree=family_tree(store.candidates(run_id)),
                  children=store.child_runs(run_id), live=run["status"] in LIVE_STATUSES,
                  last_step=steps[-1]["step"] if steps else -1)


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, default=str)}\n\n"


def step_events(store: Store, run_id: int, after: int, poll: float = POLL_SECONDS,
                max_seconds: float = 3600.0) -> Iterator[str]:
    """New trajectory steps as they land, then one ``done`` event when the run stops."""
    started = time.monotonic()
    while True:
        for step in store.steps(run_id, after=after):
            after = step["step"]
            yield _event("step", {k: step[k] for k in ("step", "event", "candidate_idx",
                                                       "incumbent_score", "calls", "tokens",
                                                       "seconds")})
        status = store.get_run(run_id)["status"]
        if status not in LIVE_STATUSES or time.monotonic() - started > max_seconds:
            yield _event("done", {"status": status})
            return
        yield ": waiting\n\n"  # a comment line: notices a closed connection early
        time.sleep(poll)


@router.get("/runs/{run_id}/events")
def optimize_events(request: Request, run_id: int, after: int = -1):
    need_run(request, run_id)
    return StreamingResponse(step_events(store_of(request), run_id, after),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})
