"""Playground: edit a prompt, run it on chosen examples, save it as a version, start jobs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ..errors import PromptmillError
from ..prompt import Prompt
from . import queries
from .common import render, store_of

router = APIRouter()

MAX_PLAYGROUND_EXAMPLES = 50
METHODS = ("auto", "ape", "opro", "protegi", "evolve", "mipro", "fewshot")
SPLITS = ("train", "validation", "test", "all")


@dataclass
class PlaygroundForm:
    config_path: str = ""
    prompt_yaml: str = ""
    split: str = "test"
    examples: str = ""
    model: str = ""
    name: str = ""
    note: str = ""
    method: str = "auto"
    budget_calls: str = "60"
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    async def read(cls, request: Request) -> PlaygroundForm:
        data = await request.form()
        form = cls()
        for name in cls.__dataclass_fields__.keys() - {"errors"}:
            value = str(data.get(name, getattr(cls, name)))
            setattr(form, name, value if name == "prompt_yaml" else value.strip())
        return form


def parse_prompt(form: PlaygroundForm) -> Prompt | None:
    """The prompt in the text area (YAML or JSON), or None with ``errors['prompt_yaml']`` set."""
    import yaml
    from pydantic import ValidationError

    try:
        data = yaml.safe_load(form.prompt_yaml) if form.prompt_yaml.strip() else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        form.errors["prompt_yaml"] = f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"
        return None
    if not isinstance(data, dict):
        form.errors["prompt_yaml"] = "write the prompt as YAML fields: instruction, template, demos"
        return None
    try:
        return Prompt.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "prompt"
        form.errors["prompt_yaml"] = f"{loc}: {first['msg']}"
        return None


def config_file(path_text: str, root: Path) -> Path | None:
    """``path_text`` resolved (``~``, ``..`` and symlinks) against ``root``, or None when the
    result lies outside ``root`` or cannot be a path at all. Only the path is compared:
    nothing outside is opened, and the answer is the same whether a file is there or not."""
    try:
        resolved = (root / Path(path_text).expanduser()).resolve()
    except (OSError, ValueError, RuntimeError):  # NUL bytes, symlink loops, names too long
        return None
    return resolved if resolved.is_relative_to(root) else None


def load_config(form: PlaygroundForm, root: Path):
    """The task config and its task, with the resolved config path; Nones after an error."""
    from ..api import load_task

    if not form.config_path:
        form.errors["config_path"] = "give the path of a task config (YAML)"
        return None, None, None
    path = config_file(form.config_path, root)
    if path is None:
        form.errors["config_path"] = f"config must be a file under {root}"
        return None, None, None
    try:
        is_file = path.is_file()
    except (OSError, ValueError):
        is_file = False
    if not is_file:
        form.errors["config_path"] = f"no file at {form.config_path}"
        return None, None, None
    try:
        return (*load_task(path), path)
    except PromptmillError as exc:
        form.errors["config_path"] = exc.one_line()
        return None, None, None


def choose_examples(form: PlaygroundForm, task) -> list:
    """Examples by position ("0-4, 9") or by id ("c1 c7"); the first five when left empty."""
    if form.split not in SPLITS:
        form.errors["split"] = f"choose one of: {', '.join(SPLITS)}"
        return []
    pool = task.split(form.split)
    text = form.examples.strip()
    if not text:
        chosen = pool[:5]
    elif re.fullmatch(r"[\d\s,-]+", text):
        chosen = []
        for part in filter(None, re.split(r"[,\s]+", text)):
            lo, _, hi = part.partition("-")
            if not lo.isdigit() or (hi and not hi.isdigit()):
                form.errors["examples"] = f"'{part}' is not a position or a range such as 0-4"
                return []
            for i in range(int(lo), int(hi or lo) + 1):
                if i >= len(pool):
                    form.errors["examples"] = (f"position {i} is past the end of the "
                                               f"{form.split} split ({len(pool)} examples)")
                    return []
                chosen.append(pool[i])
    else:
        by_id = {ex.id: ex for ex in pool}
        wanted = [w for w in re.split(r"[,\s]+", text) if w]
        unknown = [w for w in wanted if w not in by_id]
        if unknown:
            form.errors["examples"] = f"no example '{unknown[0]}' in the {form.split} split"
            return []
        chosen = [by_id[w] for w in wanted]
    if not chosen:
        form.errors["examples"] = f"the {form.split} split has no examples"
    if len(chosen) > MAX_PLAYGROUND_EXAMPLES:
        form.errors["examples"] = (f"{len(chosen)} examples is too many for the playground; "
                                   f"pick at most {MAX_PLAYGROUND_EXAMPLES} or start a job")
    return chosen


def run_examples(store, cfg, prompt: Prompt, examples: list, split: str,
                 model_spec: str | None):
    """Evaluate the playground's prompt on the chosen examples, as a recorded run."""
    from ..api import check_prompt_fields, setup

    check_prompt_fields(prompt, cfg, "prompt")  # named as the page's text area, before setup
    with setup(cfg, prompt=prompt, model=model_spec, store=store) as s:
        return s.evaluator(progress=False).evaluate(
            examples, s.prompt, task=cfg.name, split=split,
            prompt_name=prompt.name or cfg.name, config=s.record(),
            contextualizer=s.contextualizer)


def _page(request: Request, form: PlaygroundForm, status_code: int = 200,
          **extra: Any) -> HTMLResponse:
    context = {"result": None, "results": None, "saved": None, "message": None, **extra}
    return render(request, "playground.html", status_code=status_code, form=form,
                  methods=METHODS, splits=SPLITS, root=request.app.state.root, **context)


@router.get("/playground", response_class=HTMLResponse)
def playground(request: Request):
    form = PlaygroundForm(config_path=request.query_params.get("config", ""))
    ref = request.query_params.get("prompt")
    if ref:
        from ..prompt import parse_prompt_ref

        name, version = parse_prompt_ref(ref)
        row = store_of(request).get_prompt(name, version)
        prompt = Prompt.model_validate_json(row["body"])
        form.prompt_yaml, form.name = prompt.to_yaml(), name
    else:
        form.prompt_yaml = "instruction: Answer briefly.\ntemplate: '{{ input }}'\n"
    return _page(request, form)


@router.post("/playground", response_class=HTMLResponse)
async def playground_action(request: Request):
    form = await PlaygroundForm.read(request)
    action = (await request.form()).get("action", "run")
    prompt = parse_prompt(form)
    if action == "save":
        return _save(request, form, prompt)
    cfg, task, path = load_config(form, request.app.state.root)
    if form.errors or prompt is None or cfg is None:
        return _page(request, form, 422)
    if action in ("eval_job", "optimize_job"):
        return _start_job(request, form, prompt, action, path)
    examples = choose_examples(form, task)
    if form.errors:
        return _page(request, form, 422)
    try:
        result = run_examples(store_of(request), cfg, prompt, examples, form.split,
                              form.model or None)
    except PromptmillError as exc:
        form.errors["run"] = exc.one_line()
        return _page(request, form, 422)
    rows = queries.results_page(store_of(request), result.run_id, per_page=len(examples))
    return _page(request, form, result=result, results=rows)


def _save(request: Request, form: PlaygroundForm, prompt: Prompt | None) -> HTMLResponse:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,200}", form.name):
        form.errors["name"] = "name the prompt with letters, digits, '_', '-' or '.'"
    if form.errors or prompt is None:
        return _page(request, form, 422)
    store = store_of(request)
    parent = None
    try:
        parent = store.get_prompt(form.name)["id"]
    except PromptmillError:
        pass  # the first version of a new name
    saved = store.save_prompt(form.name, prompt.content(), prompt.hash, parent_id=parent,
                              note=form.note or "saved from the playground")
    return _page(request, form, saved=saved)


def _start_job(request: Request, form: PlaygroundForm, prompt: Prompt, action: str,
               config_path: Path):
    kind = "optimize" if action == "optimize_job" else "eval"
    config: dict[str, Any] = {"config_path": str(config_path),
                              "prompt": prompt.content() | ({"name": form.name} if form.name
                                                             else {}),
                              "model": form.model or None,
                              "split": form.split if form.split in SPLITS else "test"}
    if kind == "eval":
        limit = form.examples.strip()
        if limit and not limit.isdigit():
            form.errors["examples"] = "for a job, give how many examples to evaluate (a number)"
            return _page(request, form, 422)
        config["limit"] = int(limit) if limit else None
    else:
        if form.method not in METHODS:
            form.errors["method"] = f"choose one of: {', '.join(METHODS)}"
        if not form.budget_calls.isdigit() or int(form.budget_calls) < 1:
            form.errors["budget_calls"] = "the budget is a whole number of calls, at least 1"
        if form.errors:
            return _page(request, form, 422)
        config.update(method=form.method, budget_calls=int(form.budget_calls))
    job_id = request.app.state.jobs.start(kind, config)
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)
