"""A task config assembled once: its task, prompt, metric, generation params and model.

Every caller that turns a task config into evaluations (the CLI, the web worker and playground,
diagnose's rebuild, tuning, replay, induce, ``promptmill.evaluate``) goes through
``promptmill.api.setup``, which returns the ``Setup`` defined here. This module also holds the
building blocks it is made of (resolving a prompt, loading the model, the generation params,
the context chain); ``promptmill.api`` re-exports them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import TaskConfig
from .errors import ConfigError, TemplateError
from .models.base import GenerationParams, Model
from .prompt import Prompt, parse_prompt_ref
from .task import Example, Task

if TYPE_CHECKING:
    from .evaluation import Evaluator
    from .metrics import Metric
    from .rendering import Renderer
    from .store.db import Store


def check_prompt_fields(prompt: Prompt, cfg: TaskConfig, where: str) -> Prompt:
    """A template variable the data does not have is an error before any call is made."""
    unknown = sorted(template_variables(prompt, where) - set(cfg.data.input))
    if unknown:
        raise ConfigError(f"the prompt template uses '{unknown[0]}', which is not an input field "
                          f"(inputs: {', '.join(cfg.data.input)})", where=where,
                          fix=f"add '{unknown[0]}' to data.input in {cfg.source} or change the "
                              "template")
    return prompt


def template_variables(prompt: Prompt, where: str) -> set[str]:
    """The template's variables; a template that does not parse names the prompt and line."""
    import jinja2

    try:
        return prompt.variables()
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error at line {exc.lineno}: {exc.message}",
                            where=where, fix="check the {{ }} and {% %} pairs in the template"
                            ) from None
    except RecursionError:
        raise TemplateError("the template nests too deeply to parse", where=where,
                            fix="flatten the nested expressions") from None


def resolve_prompt(ref: str | Prompt | None, cfg: TaskConfig, store: Store | None,
                   label: str | None = None) -> Prompt:
    """A Prompt object, a YAML file path, or NAME[@VERSION|@TAG] from the store.

    Only a NAME needs the store; without one it is looked up in the default store. ``label``
    names a given Prompt object in errors (e.g. the ``NAME@VERSION`` it was read as).
    """
    if ref is None:
        prompt = cfg.prompt if cfg.prompt.name else cfg.prompt.model_copy(update={"name": cfg.name})
        where = (f"{cfg.prompt_source}: template" if cfg.prompt_source
                 else f"{cfg.source}: prompt.template")
        return check_prompt_fields(prompt, cfg, where)
    if isinstance(ref, Prompt):
        return check_prompt_fields(ref, cfg, label or f"prompt '{ref.name or ref.hash}'")
    path = Path(ref)
    if path.suffix in (".yaml", ".yml", ".json") or path.exists():
        prompt = Prompt.from_file(path)
        prompt = prompt if prompt.name else prompt.model_copy(update={"name": path.stem})
        return check_prompt_fields(prompt, cfg, f"{path}: template")
    name, version = parse_prompt_ref(ref)
    row = (store or _default_store()).get_prompt(name, version)
    prompt = Prompt.model_validate({**json.loads(row["body"]), "name": name})
    return check_prompt_fields(prompt, cfg, f"prompt {name}@{row['version']}")


def _default_store() -> Store:
    from .store.db import Store

    return Store()


def model_choice(cfg: TaskConfig, spec: str | None = None) -> tuple[str, dict[str, Any]]:
    """The model spec to load and its params: the config's params go only with its own model."""
    chosen = cfg.model.name if spec is None else spec
    return chosen, dict(cfg.model.params) if chosen == cfg.model.name else {}


def build_model(cfg: TaskConfig, spec: str | None = None) -> Model:
    from .models.registry import load_model

    chosen, params = model_choice(cfg, spec)
    return load_model(chosen, **params)


def generation_params(cfg: TaskConfig) -> GenerationParams:
    g = cfg.generation
    return GenerationParams(max_tokens=g.max_tokens, temperature=g.temperature, top_p=g.top_p,
                            seed=g.seed, stop=tuple(g.stop), logprobs=g.logprobs)


def build_context(cfg: TaskConfig, task: Task, model: Model):
    """The contextualizer chain of the config's ``context:`` section, or None."""
    from .context.factory import build_contextualizer

    return build_contextualizer(cfg.context, task, model, base_dir=cfg.base_dir,
                                reserve_output=cfg.generation.max_tokens, source=cfg.source)


def config_record(cfg: TaskConfig) -> dict[str, Any]:
    """What a run keeps of its config: enough to rebuild the task for a replay."""
    return {**cfg.model_dump(mode="json"), "base_dir": str(cfg.base_dir.resolve())}


_NOT_BUILT = object()  # the context chain may itself be None, so None cannot mean "not yet"


@dataclass(eq=False)
class Setup:
    """A task config ready to evaluate: built by ``promptmill.api.setup``.

    The model is loaded on first access to ``model`` (a dry run never touches it), unless a
    Model instance was given; ``close()`` closes only a model this Setup loaded.
    """

    cfg: TaskConfig
    task: Task
    prompt: Prompt
    store: Store | None
    metric: Metric
    params: GenerationParams
    model_spec: str | None = None  # None: the config's model
    given_model: Model | None = field(default=None, repr=False)
    _loaded: Model | None = field(default=None, init=False, repr=False)
    _context: Any = field(default=_NOT_BUILT, init=False, repr=False)

    @property
    def model_name(self) -> str:
        """What the model is called before it is loaded, for a "loading model…" line."""
        if self.given_model is not None:
            return self.given_model.identity
        return model_choice(self.cfg, self.model_spec)[0]

    @property
    def model(self) -> Model:
        if self.given_model is not None:
            return self.given_model
        if self._loaded is None:
            self._loaded = build_model(self.cfg, self.model_spec)
        return self._loaded

    def load_model(self) -> Model:
        """The model, loaded now rather than on first use (the CLI shows a status line)."""
        return self.model

    @property
    def contextualizer(self):
        """The config's context chain (or None), built once: retrieval may embed with the model."""
        if self._context is _NOT_BUILT:
            self._context = build_context(self.cfg, self.task, self.model)
        return self._context

    def evaluator(self, *, cache: bool = True, progress: bool = False, executor=None,
                  store: Store | None = None) -> Evaluator:
        """An Evaluator for this task; ``store`` overrides the setup's for its runs."""
        from .evaluation import Evaluator

        return Evaluator(self.model, self.metric, store or self.store, params=self.params,
                         cache=cache, mode=self.cfg.model.mode, progress=progress,
                         demo_pool=self.task.train, executor=executor)

    def renderer(self) -> Renderer:
        """How this task's prompts become requests, with no model loaded (a dry run's estimate)."""
        from .rendering import Renderer

        return Renderer(mode=self.cfg.model.mode, params=self.params, demo_pool=self.task.train)

    def record(self) -> dict[str, Any]:
        return config_record(self.cfg)

    def resolve(self, ref: str | Prompt | None) -> Prompt:
        """Another prompt for the same task, resolved and field-checked like ``prompt``."""
        return resolve_prompt(ref, self.cfg, self.store)

    def examples(self, split: str = "test", limit: int | None = None) -> list[Example]:
        return self.task.split(split)[: limit or None]

    def close(self) -> None:
        if self._loaded is not None:
            self._loaded.close()
            self._loaded = None
            self._context = _NOT_BUILT  # a chain built on the closed model goes with it

    def __enter__(self) -> Setup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def assemble(cfg: TaskConfig, task: Task, prompt: Prompt, metric: Metric, *,
             model: str | Model | None, store: Store | None, logprobs: bool) -> Setup:
    """The Setup of a loaded task and its resolved prompt; the model is not loaded yet."""
    params = generation_params(cfg)
    if logprobs:  # what diagnose's re-scoring asks for, whatever the config says
        params = dataclasses.replace(params, logprobs=True)
    if isinstance(model, Model):
        return Setup(cfg=cfg, task=task, prompt=prompt, store=store, metric=metric,
                     params=params, given_model=model)
    return Setup(cfg=cfg, task=task, prompt=prompt, store=store, metric=metric, params=params,
                 model_spec=model)
