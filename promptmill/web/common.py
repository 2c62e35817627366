"""What every page shares: the template environment, the store, 404s and form helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import jinja2.sandbox
from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse

from ..store.db import Store
from .security import CSRF_FIELD, csrf_token

if TYPE_CHECKING:
    from ..store.workbench import RunRow

TEMPLATES = Path(__file__).parent / "templates"


def _fmt_score(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def _pretty_json(text: str | None) -> str:
    """Stored JSON, indented for reading; text that is not JSON comes back as it was."""
    if text is None:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        return text


def make_env() -> jinja2.sandbox.ImmutableSandboxedEnvironment:
    # autoescape everywhere: model output is untrusted text, never markup. Sandboxed as well,
    # like every environment in promptmill: a page must not reach Python internals even if a
    # template or a value rendered into one is hostile.
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["score"] = _fmt_score
    env.filters["pretty"] = _pretty_json
    env.filters["clip"] = lambda text, n=80: ("" if text is None else
                                              (text if len(str(text)) <= n
                                               else str(text)[: n - 1] + "…"))
    return env


ENV = make_env()


def render(request: Request, template: str, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    html = ENV.get_template(template).render(request=request, query=request.query_params,
                                             csrf_token=csrf_token(request),
                                             csrf_field=CSRF_FIELD, **context)
    return HTMLResponse(html, status_code=status_code)


def store_of(request: Request) -> Store:
    return request.app.state.store


def not_found(what: str) -> HTTPException:
    return HTTPException(status_code=404, detail=what)


def need_run(request: Request, run_id: int) -> RunRow:
    from .queries import get_run

    run = get_run(store_of(request), run_id)
    if run is None:
        raise not_found(f"run {run_id} does not exist")
    return run


def page_args(request: Request, default_per_page: int = 50) -> tuple[int, int]:
    """``page`` and ``per_page`` from the query string; nonsense falls back to the defaults."""
    def number(name: str, default: int) -> int:
        try:
            return int(request.query_params.get(name, default))
        except ValueError:
            return default

    return number("page", 1), number("per_page", default_per_page)


def with_query(request: Request, **changes: Any) -> str:
    """This page's URL with some query parameters changed (None drops one)."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    from urllib.parse import urlencode

    return f"{request.url.path}?{urlencode(params)}" if params else request.url.path


ENV.globals["with_query"] = with_query
