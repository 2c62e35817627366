"""The contextualizer interface: one verb, ``prepare``, applied per example before rendering."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..prompt import Prompt
from ..task import Example


@dataclass
class Prepared:
    """The prompt and context for one example, with a note of what was added or dropped."""

    prompt: Prompt
    context: dict[str, Any] = field(default_factory=dict)
    # slot -> ranked (source id, text) passages; kept apart from ``context`` until rendering so
    # a budget step can drop the lowest-ranked ones first
    passages: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    segment: str | None = None  # the intent segment, for per-segment scores

    def context_values(self) -> dict[str, Any]:
        """Context-slot values with passages written as '[source id] text' lines."""
        values = dict(self.context)
        for slot, found in self.passages.items():
            values[slot] = "\n".join(f"[{source}] {text}" for source, text in found) or \
                "(no relevant passage found)"
        return values


@runtime_checkable
class Contextualizer(Protocol):
    """Shapes the prompt for one example; ``describe`` goes into run fingerprints and records."""

    def prepare(self, prepared: Prepared, example: Example) -> Prepared: ...

    def describe(self) -> dict[str, Any]: ...


class Chain:
    """Apply contextualizers in order: e.g. route by intent, pick demos, add passages, trim."""

    def __init__(self, *steps: Contextualizer):
        self.steps = [s for s in steps if s is not None]

    def prepare(self, prepared: Prepared, example: Example) -> Prepared:
        for step in self.steps:
            prepared = step.prepare(prepared, example)
        return prepared

    def describe(self) -> dict[str, Any]:
        # steps without an identity (a bare context function) describe as {} and are left out
        described = [d for d in (s.describe() for s in self.steps) if d]
        return {"chain": described} if described else {}

    def __call__(self, prompt: Prompt, example: Example) -> Prepared:
        return self.prepare(Prepared(prompt), example)
