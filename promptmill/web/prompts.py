"""The prompt registry: every version, diffs between versions, and tags such as production."""

from __future__ import annotations

import difflib
import json
import re

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ..prompt import Prompt
from . import queries
from .common import not_found, render, store_of

router = APIRouter()

TAG_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")


def as_yaml(row: dict) -> str:
    return Prompt.model_validate({**json.loads(row["body"]), "name": row["name"]}).to_yaml()


def _versions(request: Request, name: str) -> list[dict]:
    versions = queries.prompt_versions(store_of(request), name)
    if not versions:
        raise not_found(f"no prompt named '{name}'")
    for row in versions:
        row["yaml"] = as_yaml(row)
    return versions


@router.get("/prompts", response_class=HTMLResponse)
def prompt_list(request: Request):
    return render(request, "prompts.html", names=queries.prompt_names(store_of(request)))


def _render_prompt(request: Request, name: str, error: str | None = None,
                   status_code: int = 200) -> HTMLResponse:
    versions = _versions(request, name)
    q = request.query_params
    diff = None
    if q.get("a") and q.get("b"):
        by_version = {str(v["version"]): v for v in versions}
        a, b = by_version.get(q["a"]), by_version.get(q["b"])
        if a is None or b is None:
            error = f"version {q['a'] if a is None else q['b']} of '{name}' does not exist"
            status_code = 422
        else:
            diff = list(difflib.unified_diff(a["yaml"].splitlines(), b["yaml"].splitlines(),
                                             f"{name}@{a['version']}", f"{name}@{b['version']}",
                                             lineterm=""))
    return render(request, "prompt.html", status_code=status_code, name=name,
                  versions=versions, diff=diff, error=error)


@router.get("/prompts/{name}", response_class=HTMLResponse)
def prompt_detail(request: Request, name: str):
    return _render_prompt(request, name)


@router.post("/prompts/{name}/tag", response_class=HTMLResponse)
def tag_version(request: Request, name: str, version: str = Form(""), tag: str = Form("")):
    versions = {str(v["version"]) for v in _versions(request, name)}
    tag = tag.strip()
    if version.strip() not in versions:
        return _render_prompt(request, name, f"version '{version}' of '{name}' does not exist",
                              422)
    if not TAG_RE.match(tag):
        return _render_prompt(request, name, "a tag starts with a letter and has only letters, "
                              "digits, '_', '-' or '.' (e.g. production)", 422)
    store_of(request).tag_prompt(name, int(version), tag)
    return RedirectResponse(f"/prompts/{name}", status_code=303)
