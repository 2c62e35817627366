"""The FastAPI app factory: the store, the browser guard (Host, Origin and CSRF checks), the
token check, server timing and the error pages."""

from __future__ import annotations

import hmac
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import PromptmillError
from ..store.db import Store
from .common import render
from .security import BrowserGuard, GuardSettings, allowed_host_names

TOKEN_COOKIE = "promptmill_token"


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE)


def _add_token_check(app: FastAPI, token: str) -> None:
    @app.middleware("http")
    async def check_token(request: Request, call_next):
        presented = _presented_token(request)
        if presented is None or not hmac.compare_digest(presented.encode(), token.encode()):
            return HTMLResponse("<!doctype html><title>401</title><h1>Token required</h1>"
                                "<p>Open this page with ?token=... or send "
                                "'Authorization: Bearer ...'.</p>", status_code=401)
        response = await call_next(request)
        if request.query_params.get("token"):  # remembered, so links need not carry it
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response


def _add_timing(app: FastAPI) -> None:
    @app.middleware("http")
    async def server_timing(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1000:.1f}"
        return response


def _add_error_pages(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if request.url.path.endswith(".json") or request.url.path.startswith("/api/"):
            from fastapi.responses import JSONResponse

            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        title = "Not found" if exc.status_code == 404 else f"Error {exc.status_code}"
        return render(request, "error.html", status_code=exc.status_code, title=title,
                      message=str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_path(request: Request, exc: RequestValidationError):
        # a path such as /runs/abc names nothing that can exist
        return render(request, "error.html", status_code=404, title="Not found",
                      message=f"nothing at {request.url.path}")

    @app.exception_handler(PromptmillError)
    async def user_error(request: Request, exc: PromptmillError):
        return render(request, "error.html", status_code=400, title="Cannot do that",
                      message=exc.one_line())


def _refusal_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status_code=status, title="Refused", message=message)


def create_app(store_url: str | None = None, token: str | None = None, *,
               root: str | Path | None = None, host: str | None = None,
               port: int | None = None, allowed_hosts: tuple[str, ...] = ()) -> FastAPI:
    """The workbench over the store at ``store_url`` (default: the CLI's store).

    ``root``: the folder whose files the playground may read as task configs (default: the
    current folder). ``host`` and ``port``: the bound address, which the ``Host`` header must
    name (loopback names always do; the port is taken from the server when not given);
    ``allowed_hosts``: more names (``NAME`` or ``NAME:PORT``) for the ``Host`` header.
    """
    from . import compare, feedback, jobs, optimize, playground, prompts, runs, suites

    guard = GuardSettings(allowed_host_names(host, allowed_hosts), port=port)
    store = Store(store_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        _app.state.jobs.shutdown()  # running jobs are cancelled, their results kept
        store.close()

    app = FastAPI(title="promptmill workbench", docs_url=None, redoc_url=None,
                  openapi_url=None, lifespan=lifespan)
    app.state.store = store
    app.state.root = Path(root if root is not None else Path.cwd()).expanduser().resolve()
    app.state.jobs = jobs.JobManager(store)
    for module in (runs, compare, prompts, optimize, playground, feedback, jobs, suites):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    @app.get("/", include_in_schema=False)
    def index():
        return RedirectResponse("/runs", status_code=303)

    _add_error_pages(app)
    _add_timing(app)
    if token:
        _add_token_check(app, token)
    # added last, so it runs first: no page, not even the token prompt, for a foreign Host
    app.add_middleware(BrowserGuard, settings=guard, refuse_page=_refusal_page)
    return app
