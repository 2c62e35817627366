"""Suite runs: the list of recorded ``promptmill test`` invocations, and one run's matrix.

A suite run's result is the JSON of :meth:`SuiteResult.to_dict`, kept by the store in
``suite_runs``; these pages only read it (through :mod:`promptmill.store.suites`) and arrange
it: the prompts x models matrix, the gates, and per-case rows with every cell's output and
failed assertions. Each cell links to the ordinary runs that hold its evaluations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ..store.suites import SuiteRunRow, get_suite_run, list_suite_runs, suite_run_result
from ..store.workbench import Page, clamp_page
from .common import not_found, page_args, render, store_of

router = APIRouter()

MAX_LISTED = 200  # suite runs on the list page, newest first


@router.get("/suites", response_class=HTMLResponse)
def suites_list(request: Request):
    name = request.query_params.get("name") or None
    runs = list_suite_runs(store_of(request), name=name, limit=MAX_LISTED)
    return render(request, "suites.html", runs=runs, name=name or "", limit=MAX_LISTED)


@router.get("/suites/{suite_run_id}", response_class=HTMLResponse)
def suite_run_detail(request: Request, suite_run_id: int):
    row = get_suite_run(store_of(request), suite_run_id)
    if row is None:
        raise not_found(f"suite run {suite_run_id} does not exist")
    data = result_data(row)
    failures = request.query_params.get("failures") in ("1", "on", "true")
    page, per_page = clamp_page(*page_args(request))
    cases = case_rows(data, failures_only=failures)
    listing = Page(rows=cases[(page - 1) * per_page: page * per_page], total=len(cases),
                   page=page, per_page=per_page)
    return render(request, "suite_run.html", run=row, data=data, matrix=matrix_of(data),
                  baseline=baseline_matrix(data), cells=cell_views(data), cases=listing,
                  failures=failures)


# ---------------------------------------------------------------------------------------------
# From the stored JSON to what the templates show


def result_data(row: SuiteRunRow) -> dict[str, Any]:
    """The stored result, or an empty one while the run is still going (or if it broke)."""
    data = suite_run_result(row) or {}
    for key, empty in (("prompts", []), ("models", []), ("cells", []), ("gates", []),
                       ("repeat", 1)):
        if data.get(key) is None:
            data[key] = empty
    return data


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


@dataclass
class Matrix:
    """Prompts down, models across: ``cell(prompt, model)`` is a stored cell or None."""

    prompts: list[str]
    models: list[str]
    by_key: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, cells: list[dict[str, Any]], prompts: list[str] | None = None,
           models: list[str] | None = None) -> Matrix:
        """The matrix of ``cells``, in the given order (else the order the cells come in)."""
        return cls(prompts if prompts is not None else _unique(c["prompt"] for c in cells),
                   models if models is not None else _unique(c["model"] for c in cells),
                   {(c["prompt"], c["model"]): {**c, "rate": rate_text(c)} for c in cells})

    def cell(self, prompt: str, model: str) -> dict[str, Any] | None:
        return self.by_key.get((prompt, model))


def rate_text(cell: dict[str, Any]) -> str:
    """``80% [55%, 95%]``: the cell's pass rate and its 95% CI (``-`` when it has none)."""
    mean, low, high = (cell.get(k) for k in ("pass_rate", "ci_low", "ci_high"))
    if not _number(mean):
        return "-"
    if not (_number(low) and _number(high)):
        return f"{mean:.0%}"
    return f"{mean:.0%} [{low:.0%}, {high:.0%}]"


def pass_at(cell: dict[str, Any], k: int) -> float | None:
    """pass@k from the stored cell (JSON made its integer keys strings)."""
    table = cell.get("pass_at_k") or {}
    value = table.get(str(k), table.get(k))
    return value if _number(value) else None


def _unique(values: Any) -> list[str]:
    return list(dict.fromkeys(values))


def matrix_of(data: dict[str, Any]) -> Matrix:
    return Matrix.of(data["cells"], data["prompts"], data["models"])


def baseline_matrix(data: dict[str, Any]) -> Matrix | None:
    """The baseline's cells (``--baseline``), when the stored result carries them."""
    cells = data.get("baseline") or []
    return Matrix.of(cells, models=data["models"]) if cells else None


def cell_views(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The cells in the matrix's order, with passes, errors and pass@1 / pass@repeat."""
    matrix, repeat = matrix_of(data), int(data["repeat"])
    views = []
    for prompt in matrix.prompts:
        for model in matrix.models:
            cell = matrix.cell(prompt, model)
            if cell is not None:
                outcomes = cell.get("outcomes", [])
                views.append({**cell, "passed": sum(o["passed"] for o in outcomes),
                              "total": len(outcomes),
                              "errors": sum(o.get("error") is not None for o in outcomes),
                              "pass_at_1": pass_at(cell, 1),
                              "pass_at_repeat": pass_at(cell, repeat)})
    return views


def case_rows(data: dict[str, Any], *, failures_only: bool = False) -> list[dict[str, Any]]:
    """One row per case, in the suite's order: each cell's outcomes (every sample) for it."""
    cells = cell_views(data)
    by_case: dict[str, list[list[dict[str, Any]]]] = {}
    for i, cell in enumerate(cells):
        for outcome in cell.get("outcomes", []):
            slots = by_case.setdefault(outcome["case_id"], [[] for _ in cells])
            slots[i].append(outcome_view(outcome))
    rows = []
    for case_id, slots in by_case.items():
        failed = any(not o["passed"] for outcomes in slots for o in outcomes)
        if failed or not failures_only:
            rows.append({"case_id": case_id, "failed": failed, "cells": [
                {"prompt": c["prompt"], "model": c["model"], "outcomes": outcomes}
                for c, outcomes in zip(cells, slots, strict=True)]})
    return rows


def outcome_view(outcome: dict[str, Any]) -> dict[str, Any]:
    """One outcome with only its failed checks kept, as the page lists them."""
    failed = [c for c in outcome.get("checks", []) if not c.get("passed")]
    return {**outcome, "failed_checks": failed}
