"""Apply a stored prompt version to one chat request: the same path an evaluation takes.

A client sends ordinary chat messages. The served prompt's template fields are filled from the
last user message:
- a template with one field takes the whole message text;
- otherwise the message must be a JSON object whose keys are the template fields, e.g.
  ``{"question": "...", "topic": "..."}`` (a one-field template accepts this form too).
The client's own system messages and earlier turns are ignored: the prompt version decides the
instruction, demos, context and output spec. Rendering goes through the
:class:`~promptmill.rendering.Renderer` evaluations use, so retrieved demos, knowledge context
and intent routing behave exactly as in ``promptmill eval`` with the same task config.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, PromptmillError
from ..models.base import GenerationParams, Model, Request
from ..prompt import Prompt, parse_prompt_ref
from ..store.db import Store


class RequestError(PromptmillError):
    """A chat request the served prompt cannot be applied to (HTTP 400)."""


@dataclass
class Rendered:
    """What one request turns into before the backend is called."""

    inputs: dict[str, Any]
    request: Request
    params: GenerationParams
    prompt: Prompt  # the prepared prompt: an intent router may have picked a variant


@dataclass
class ServedPrompt:
    """A prompt version bound to a model, generation settings and its context chain."""

    name: str
    version: int
    prompt_id: int
    prompt: Prompt
    model: Model
    params: GenerationParams = field(default_factory=GenerationParams)
    mode: str = "chat"
    contextualizer: Any = None
    demo_pool: list | None = None

    def __post_init__(self) -> None:
        from ..rendering import Renderer

        self._renderer = Renderer(mode=self.mode, params=self.params, demo_pool=self.demo_pool)
        self._ids = itertools.count(1)
        self._fields = sorted(self.prompt.variables())  # parsing the template is not free

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def renders_quickly(self) -> bool:
        """No retrieval or context chain: rendering is a template fill, fine on the event loop."""
        return self.contextualizer is None and self.prompt.demo_selection is None

    @property
    def fields(self) -> list[str]:
        return self._fields

    # --- request -> inputs ---------------------------------------------------------------------
    def inputs_from_messages(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        text = _last_user_text(messages)
        fields = self.fields
        as_object = _json_object(text)
        if as_object is not None and set(fields) <= set(as_object):
            return {k: as_object[k] for k in fields}
        if len(fields) == 1:
            return {fields[0]: text}
        if not fields:
            return {}
        missing = [f for f in fields if as_object is None or f not in as_object]
        example = json.dumps({f: "..." for f in fields})
        raise RequestError(f"prompt {self.ref} needs the fields {', '.join(fields)}; "
                           f"missing: {', '.join(missing)}", where="messages[-1].content",
                           fix=f"send the last user message as a JSON object: {example}")

    # --- inputs -> backend request -------------------------------------------------------------
    def render(self, inputs: dict[str, Any], overrides: dict[str, Any] | None = None
               ) -> Rendered:
        from ..errors import TemplateError
        from ..task import Example

        example = Example(id=f"request-{next(self._ids)}", inputs=inputs)
        try:
            built = self._renderer.build(self.prompt, example, self.contextualizer,
                                         _with_overrides(self.params, overrides or {}))
        except TemplateError as exc:
            raise RequestError(exc.message, where="messages[-1].content", fix=exc.fix) from None
        params = built.params
        if overrides and overrides.get("max_tokens"):
            params = replace(params, max_tokens=min(params.max_tokens,
                                                    int(overrides["max_tokens"])))
        return Rendered(inputs, built.request, params, built.prompt)

    def extracts(self, rendered: Rendered) -> bool:
        """Whether :meth:`answer_text` changes the text: only then must the whole answer be
        generated before any of it is sent (``serve`` streams the others as decoded)."""
        return bool(rendered.prompt.extract)

    def answer_text(self, rendered: Rendered, text: str) -> str:
        """The answer the client gets: the prompt's extraction rule applied, as in evaluation."""
        from ..extract import extract_answer

        return extract_answer(rendered.prompt.extract, text)


def _with_overrides(params: GenerationParams, overrides: dict[str, Any]) -> GenerationParams:
    updates = {k: overrides[k] for k in ("temperature", "top_p", "seed")
               if overrides.get(k) is not None}
    if overrides.get("stop"):
        stop = overrides["stop"]
        updates["stop"] = (stop,) if isinstance(stop, str) else tuple(stop)
    return replace(params, **updates) if updates else params


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts: keep the text ones
        return "".join(p["text"] for p in content if isinstance(p, dict)
                       and p.get("type") == "text" and isinstance(p.get("text"), str))
    return "" if content is None else str(content)


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    if not users:
        raise RequestError("the request has no user message", where="messages",
                           fix='add {"role": "user", "content": ...} to messages')
    return _content_text(users[-1].get("content"))


def _json_object(text: str) -> dict[str, Any] | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# --- building a served prompt at startup ---------------------------------------------------------
def load_served_prompt(store: Store, ref: str, *, config: str | Path | None = None,
                       model: str | Model | None = None) -> ServedPrompt:
    """Resolve NAME[@VERSION|@TAG] and everything it needs; every problem is raised here,
    before the server listens, never on the first request."""
    name, version = parse_prompt_ref(ref)
    row = store.get_prompt(name, version)
    prompt = Prompt.model_validate({**json.loads(row["body"]), "name": name})
    if config is not None:
        return _with_config(row, prompt, Path(config), model)
    _check_needs_no_config(prompt, f"{name}@{row['version']}")
    backend = model if isinstance(model, Model) else _load(model or "embedded")
    return ServedPrompt(name, row["version"], row["id"], prompt, backend)


def _with_config(row: dict[str, Any], prompt: Prompt, config: Path,
                 model: str | Model | None) -> ServedPrompt:
    from ..api import setup
    from ..metrics import get_metric

    # serving scores nothing: the config's own metric (maybe a judge or user code) is not built
    s = setup(config, prompt=prompt, model=model, metric=get_metric("exact"),
              prompt_label=f"prompt {row['name']}@{row['version']}")
    return ServedPrompt(row["name"], row["version"], row["id"], s.prompt, s.model,
                        params=s.params, mode=s.cfg.model.mode, contextualizer=s.contextualizer,
                        demo_pool=list(s.task.train))


def _check_needs_no_config(prompt: Prompt, ref: str) -> None:
    if prompt.demo_selection is not None:
        raise ConfigError(f"prompt {ref} retrieves its demos from a task's training data",
                          where="--prompt", fix="pass --config TASK.yaml (its train split is "
                                                "the demo pool)")
    if prompt.context_slots:
        raise ConfigError(f"prompt {ref} has context slots ({', '.join(prompt.context_slots)})"
                          " that a task config's context section fills", where="--prompt",
                          fix="pass --config TASK.yaml with a context: section")


def _load(spec: str) -> Model:
    from ..models.registry import load_model

    return load_model(spec)
