"""Turning a prompt and an example into a model request: the one path every caller takes.

Evaluation, ``serve``, tuning's training data and the optimizer's dry-run estimate all render
through a :class:`Renderer`, so what a model sees is byte-identical wherever a prompt is used:
the prompt's own retrieved demos first, then the context chain (knowledge passages, intent
routing, situation), then the template with its output spec and answer cue.

A renderer needs no model, metric or store. It keeps one demo selector per demo-selection
setting, because building a retrieval index over the pool costs more than rendering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .context.base import Prepared
from .errors import PromptmillError
from .models.base import GenerationParams, Request

if TYPE_CHECKING:
    from .context.base import Contextualizer
    from .context.demos import DemoSelector
    from .prompt import DemoSelection, Prompt
    from .task import Example

@dataclass(frozen=True)
class BuiltRequest:
    """One example's model request, its generation parameters and how it was prepared."""

    request: Request
    params: GenerationParams
    prepared: Prepared

    @property
    def prompt(self) -> Prompt:
        """The prompt actually rendered: an intent router may have picked a variant."""
        return self.prepared.prompt


def params_for(prompt: Prompt, params: GenerationParams) -> GenerationParams:
    """The run's generation parameters with the prompt's own output spec and token limit."""
    updates: dict[str, Any] = {}
    if prompt.output_spec is not None:
        updates["constraint"] = prompt.output_spec.key()
    if prompt.max_tokens is not None:
        updates["max_tokens"] = prompt.max_tokens
    return replace(params, **updates) if updates else params


class Renderer:
    """Renders prompts for one request mode, generation setting and demo pool."""

    def __init__(self, *, mode: str = "chat", params: GenerationParams | None = None,
                 demo_pool: Sequence[Example] | None = None):
        self.mode = mode
        self.params = params or GenerationParams()
        # where prompts with a demo_selection retrieve their demos from: the training split
        self.demo_pool = list(demo_pool) if demo_pool is not None else None
        self._selectors: dict[DemoSelection, DemoSelector] = {}

    def prepare(self, prompt: Prompt, example: Example,
                contextualizer: Contextualizer | None = None) -> Prepared:
        """The prompt's own retrieved demos first, then the contextualizer chain."""
        prepared = Prepared(prompt)
        if prompt.demo_selection is not None:
            prepared = self.demo_selector(prompt).prepare(prepared, example)
        if contextualizer is None:
            return prepared
        return contextualizer.prepare(prepared, example)

    def request(self, prepared: Prepared, example: Example) -> Request:
        """The prepared prompt filled with the example: chat messages or completion text."""
        context = prepared.context_values() if (prepared.context or prepared.passages) \
            else None
        where = f"example '{example.id}'"
        if self.mode == "completion":
            return prepared.prompt.render_text(example.inputs, context, where)
        return prepared.prompt.render_messages(example.inputs, context, where)

    def build(self, prompt: Prompt, example: Example,
              contextualizer: Contextualizer | None = None,
              params: GenerationParams | None = None) -> BuiltRequest:
        """Everything a model call for this example needs; ``params`` overrides the default."""
        prepared = self.prepare(prompt, example, contextualizer)
        return BuiltRequest(self.request(prepared, example),
                            params_for(prepared.prompt, params or self.params), prepared)

    def render(self, prompt: Prompt, example: Example,
               contextualizer: Contextualizer | None = None) -> Request:
        return self.request(self.prepare(prompt, example, contextualizer), example)

    def demo_selector(self, prompt: Prompt) -> DemoSelector:
        selection = prompt.demo_selection
        assert selection is not None
        if self.demo_pool is None:
            raise PromptmillError("this prompt retrieves its demos from a training pool, and "
                                  "none was given", where=f"prompt '{prompt.name or prompt.hash}'"
                                  " demo_selection", fix="evaluate it through a task config "
                                  "(its train split is the pool), or pass demo_pool=task.train")
        if selection not in self._selectors:  # frozen, so hashable: no per-example JSON key
            from .context.demos import DemoSelector

            self._selectors[selection] = DemoSelector.from_selection(self.demo_pool, selection)
        return self._selectors[selection]


def build_request(prompt: Prompt, example: Example, *, mode: str = "chat",
                  params: GenerationParams | None = None,
                  contextualizer: Contextualizer | None = None,
                  demo_pool: Sequence[Example] | None = None) -> BuiltRequest:
    """One example's request as an evaluation would send it.

    For many examples, make one :class:`Renderer` and call ``build`` on it: a prompt that
    retrieves its demos then indexes the pool once, not once per example.
    """
    return Renderer(mode=mode, params=params, demo_pool=demo_pool).build(
        prompt, example, contextualizer)


__all__ = ["BuiltRequest", "Renderer", "build_request", "params_for"]
