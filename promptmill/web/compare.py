"""Compare: two or more runs side by side per example, with diffs, verdicts and prompt changes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from . import queries
from .common import page_args, render, store_of
from .comparison import diff_segments, paired_verdict, parse_run_ids, prompt_body, prompt_changes

router = APIRouter()


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request):
    store = store_of(request)
    raw = request.query_params.getlist("runs")
    if not raw:
        return render(request, "compare.html", error=None, raw="", runs=[], rows=None)
    ids, error = parse_run_ids(raw)
    looked_up = [queries.get_run(store, i) for i in ids]
    missing = [i for i, r in zip(ids, looked_up, strict=True) if r is None]
    if error is None and missing:
        error = f"run {missing[0]} does not exist"
    if error:
        return render(request, "compare.html", status_code=422, error=error, raw=" ".join(raw),
                      runs=[], rows=None)
    runs = [r for r in looked_up if r is not None]  # all of them: a missing one is an error above
    base = runs[0]
    page, per_page = page_args(request, 25)
    listing = queries.results_page(store, base["id"], page=page, per_page=per_page,
                                   failures_only=request.query_params.get("failures") == "1")
    ids_on_page = [r["example_id"] for r in listing.rows]
    others = [queries.result_rows(store, r["id"], ids_on_page) for r in runs[1:]]
    rows = []
    for row in listing.rows:
        cells = []
        for other in others:
            found = other.get(row["example_id"])
            cells.append({"row": found, "diff": diff_segments(row["output"], found["output"])
                          if found else []})
        rows.append({"base": row, "others": cells})
    base_prompt = prompt_body(base)
    versus = [{"run": r, "verdict": paired_verdict(store, base["id"], r["id"]),
               "changes": prompt_changes(base_prompt, prompt_body(r))} for r in runs[1:]]
    return render(request, "compare.html", error=None, raw=" ".join(map(str, ids)), runs=runs,
                  base=base, versus=versus, rows=rows, listing=listing)
