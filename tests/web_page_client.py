"""Clients that behave like the workbench's own pages, a real workbench server, a small store.

The workbench refuses state-changing requests that lack its Origin and its session's CSRF token,
as a browser would send them from a page the workbench served. ``PageClient`` does what such a
page does: it loads a page first (keeping the session cookie and reading the token from the
``csrf-token`` meta tag), then posts forms with the ``csrf_token`` field and its own ``Origin``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from helpers import free_port, uvicorn_in_thread, write_jsonl

LOOPBACK_BASE = "http://127.0.0.1"
SAFE = ("GET", "HEAD")
_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')


def page_token(html: str) -> str:
    """The CSRF token a workbench page embeds (its ``csrf-token`` meta tag)."""
    match = _META.search(html)
    assert match and match[1], "the page carries no CSRF token"
    return match[1]


def session_cookie(cookies) -> str | None:
    return next((value for name, value in cookies.items()
                 if name.startswith("promptmill_session")), None)


class PageClientMixin:
    """For an httpx client: every state-changing request is sent as the workbench page would."""

    origin: str
    token_page: str = "/runs"
    _token: tuple[str | None, str] | None = None  # (session cookie it belongs to, token)

    def csrf_token(self) -> str:
        session = session_cookie(self.cookies)
        if self._token is None or session is None or self._token[0] != session:
            page = super().request("GET", self.token_page)
            assert page.status_code == 200, f"{self.token_page}: {page.status_code}"
            self._token = (session_cookie(self.cookies), page_token(page.text))
        return self._token[1]

    def request(self, method: str, url, **kwargs: Any):
        if method.upper() not in SAFE:
            kwargs = self.as_page(kwargs)
        return super().request(method, url, **kwargs)

    def as_page(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        token = self.csrf_token()
        headers = {"Origin": self.origin, **dict(kwargs.get("headers") or {})}
        data = kwargs.get("data")
        if isinstance(data, Mapping) or (data is None and kwargs.get("json") is None
                                          and kwargs.get("content") is None):
            kwargs["data"] = {"csrf_token": token, **dict(data or {})}  # the hidden field
        else:
            headers["X-CSRF-Token"] = token  # what static/csrf.js sends from scripts
        return {**kwargs, "headers": headers}


def page_test_client(app, base_url: str = LOOPBACK_BASE, **kwargs: Any):
    """A TestClient over ``app`` that posts like the workbench's page, at a loopback Host."""
    from fastapi.testclient import TestClient

    class PageTestClient(PageClientMixin, TestClient):
        pass

    client = PageTestClient(app, base_url=base_url, **kwargs)
    client.origin = base_url
    return client


def page_http_client(base_url: str, **kwargs: Any):
    """An httpx client of a real server that posts like the workbench's page."""
    import httpx

    class PageHttpClient(PageClientMixin, httpx.Client):
        pass

    client = PageHttpClient(base_url=base_url, timeout=10, **kwargs)
    client.origin = base_url
    return client


@contextmanager
def running_workbench(app, port: int) -> Iterator[str]:
    """``app`` under a real uvicorn server on 127.0.0.1:``port``, in a thread; its base URL."""
    with uvicorn_in_thread(app, port, "the workbench server"):
        yield f"http://127.0.0.1:{port}"


@dataclass
class SmallWorkbench:
    """A store with one finished evaluation, a saved prompt and a finished job."""

    url: str
    root: Path
    config: Path
    run_id: int
    example_id: str
    prompt_name: str
    job_id: int


def small_workbench(folder: Path) -> SmallWorkbench:
    from promptmill.api import evaluate
    from promptmill.models.fake import FakeModel
    from promptmill.prompt import Prompt
    from promptmill.store.db import Store
    from promptmill.web import queries

    root = folder / "root"
    root.mkdir()
    write_jsonl(root / "data.jsonl", [{"id": f"e{i}", "text": f"text {i}", "label": "yes"}
                                      for i in range(4)])
    config = {"name": "small", "data": {"path": "data.jsonl", "input": ["text"],
                                        "target": "label", "id": "id"},
              "splits": {"train": 0, "validation": 0, "test": 4, "seed": 0}, "metric": "exact",
              "model": {"name": "fake", "params": {"default": "yes"}},
              "prompt": {"name": "small", "instruction": "Say yes.", "template": "{{ text }}"}}
    (root / "task.yaml").write_text(yaml.safe_dump(config))
    url = f"sqlite:///{folder / 'small.db'}"
    store = Store(url)
    prompt = Prompt(name="small", instruction="Say yes.", template="{{ text }}")
    run = evaluate(root / "task.yaml", prompt, model=FakeModel(default="yes"), store=store)
    store.save_prompt("small", prompt.content(), prompt.hash, note="seed")
    job_id = queries.create_job(store, "eval", {"config_path": str(root / "task.yaml")})
    queries.update_job(store, job_id, status="done")
    store.close()
    return SmallWorkbench(url, root, root / "task.yaml", run.run_id, "e0", "small", job_id)


def store_fingerprint(url: str) -> str:
    """Every row of the SQLite store, hashed: equal fingerprints mean nothing was written."""
    import hashlib
    import sqlite3

    path = url.removeprefix("sqlite:///")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        dump = "\n".join(conn.iterdump())
    finally:
        conn.close()
    return hashlib.sha256(dump.encode()).hexdigest()


@dataclass
class LiveWorkbench:
    """A real workbench server over a SmallWorkbench store, with or without a token."""

    base: str
    port: int
    token: str | None
    data: SmallWorkbench
    app: Any

    def authenticate(self, client):
        """Log ``client`` in as the user's browser would: ?token=... once, then the cookie."""
        if self.token:
            assert client.get(f"/runs?token={self.token}").status_code == 200
        return client

    def page_client(self, **kwargs: Any):
        """The workbench's own page, logged in: posts carry its token and Origin."""
        return self.authenticate(page_http_client(self.base, **kwargs))

    def browser(self, **kwargs: Any):
        """The user's browser, logged in, driven by whatever page sends the request: it holds
        the cookies, the headers are the sender's choice."""
        import httpx

        return self.authenticate(httpx.Client(base_url=self.base, timeout=10, **kwargs))

    def fingerprint(self) -> str:
        return store_fingerprint(self.data.url)


@contextmanager
def live_workbench(folder: Path, token: str | None = None,
                   allowed_hosts: tuple[str, ...] = ()) -> Iterator[LiveWorkbench]:
    from promptmill.web import create_app

    data = small_workbench(folder)
    port = free_port()
    app = create_app(data.url, token=token, root=data.root, host="127.0.0.1", port=port,
                     allowed_hosts=allowed_hosts)
    with running_workbench(app, port) as base:
        yield LiveWorkbench(base, port, token, data, app)


def _flat_routes(routes, prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of routes, looking inside included routers (FastAPI keeps them nested
    from 0.13x on; older versions copied their routes into the app)."""
    from starlette.routing import Route

    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from _flat_routes(nested.routes, prefix + route.include_context.prefix)
        elif isinstance(route, Route):
            yield from ((method, prefix + route.path) for method in route.methods or ())


def workbench_routes(methods: set[str] | None = None) -> list[tuple[str, str]]:
    """(method, path template) of every route of the app, from its router, so a route added
    tomorrow is covered by the tests that use this list without anyone editing them."""
    import tempfile

    from promptmill.web import create_app

    with tempfile.TemporaryDirectory() as folder:
        app = create_app(f"sqlite:///{folder}/routes.db", root=folder)
        try:
            found = set(_flat_routes(app.routes))
        finally:
            app.state.store.close()
    assert any(path != "/" for _, path in found), "no routes found inside the routers"
    return sorted((m, p) for m, p in found if methods is None or m in methods)


def fill_path(template: str, data: SmallWorkbench) -> str:
    """A route's path with its parameters set to records that exist in ``data``."""
    values = {"run_id": data.run_id, "job_id": data.job_id, "name": data.prompt_name,
              "example_id": data.example_id}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: str(values.get(m[1], 1)), template)
