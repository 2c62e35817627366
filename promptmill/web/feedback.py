"""Human feedback: one example's full record, and a form to rate its output."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from . import queries
from .common import need_run, not_found, render, store_of

router = APIRouter()

SCALES = {"5": (1.0, 5.0), "1": (0.0, 1.0)}
MAX_COMMENT = 4000


def normalized_rating(score: str, scale: str) -> tuple[float | None, str | None]:
    """A rating on its scale mapped to [0, 1], or the message saying what is wrong."""
    if scale not in SCALES:
        return None, "choose the 1-5 or the 0-1 scale"
    low, high = SCALES[scale]
    try:
        value = float(score)
    except ValueError:
        return None, f"the score must be a number from {low:g} to {high:g}"
    if not low <= value <= high:
        return None, f"the score must be from {low:g} to {high:g}, not {value:g}"
    return (value - low) / (high - low), None


def _example_page(request: Request, run_id: int, example_id: str, error: str | None = None,
                  form: dict | None = None, status_code: int = 200) -> HTMLResponse:
    run = need_run(request, run_id)
    store = store_of(request)
    row = queries.get_result(store, run_id, example_id)
    if row is None:
        raise not_found(f"run {run_id} has no example '{example_id}'")
    return render(request, "example.html", status_code=status_code, run=run, row=row,
                  ratings=queries.ratings_for(store, run_id, example_id), error=error,
                  form=form or {"score": "", "scale": "5", "comment": "", "author": ""})


@router.get("/runs/{run_id}/examples/{example_id:path}", response_class=HTMLResponse)
def example_page(request: Request, run_id: int, example_id: str):
    return _example_page(request, run_id, example_id)


@router.post("/runs/{run_id}/rate", response_class=HTMLResponse)
def rate(request: Request, run_id: int, example_id: str = Form(""), score: str = Form(""),
         scale: str = Form("5"), comment: str = Form(""), author: str = Form("")):
    form = {"score": score, "scale": scale, "comment": comment, "author": author}
    value, error = normalized_rating(score.strip(), scale)
    if error is None and len(comment) > MAX_COMMENT:
        error = f"the comment is {len(comment)} characters; keep it under {MAX_COMMENT}"
    if error or value is None:  # value is None only with an error
        return _example_page(request, run_id, example_id, error, form, status_code=422)
    _example_page(request, run_id, example_id)  # 404 for unknown runs and examples
    queries.add_rating(store_of(request), run_id, example_id, value, comment.strip(),
                       author.strip())
    from urllib.parse import quote

    return RedirectResponse(f"/runs/{run_id}/examples/{quote(example_id)}?rated=1",
                            status_code=303)
