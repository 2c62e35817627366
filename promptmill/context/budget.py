"""Context-window budgeting: make the prompt fit, dropping the least useful parts first.

Small local models have small windows (SmolLM2 runs with 2048 tokens here), and a prompt that
overflows is either truncated silently by the backend or rejected. :class:`ContextBudget` runs
LAST in a :class:`Chain`, after the steps that add demos and passages, renders the prompt as the
evaluator will, and while it is over ``max_tokens - reserve_output`` drops one item at a time in
``priority`` order:

* ``"passages"``: the lowest-ranked passage (the last of its slot's list; retrievers rank best
  first), taken from the slot with the most passages so slots shrink evenly;
* ``"demos"``: the FIRST demo of the tuple, the least relevant one, because demo selectors put
  the most relevant demo last, next to the input.

The instruction and the input are never cut: changing them silently would change the task. If
nothing droppable is left and the prompt still does not fit, :class:`ContextOverflowError` says
by how much. Every drop is noted in ``prepared.notes`` and logged on ``promptmill.context``.

Counting is an estimate unless a tokenizer is given: words x 1.3, plus 4 tokens per message
for the chat template's markers. It errs on the generous side for English prose; pass
``count_tokens`` (e.g. a wrapper around the model's tokenizer) for exact figures.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ConfigError, PromptmillError
from ..models.base import Model
from ..task import Example
from .base import Prepared

logger = logging.getLogger("promptmill.context")

DROPPABLE = ("passages", "demos")
MESSAGE_OVERHEAD = 4  # role markers and separators the chat template adds around each message


class ContextOverflowError(PromptmillError):
    """The prompt does not fit the context window even with every droppable item removed."""


def estimate_tokens(text: str) -> int:
    """~1.3 tokens per whitespace-separated word: typical of BPE tokenizers on English."""
    return math.ceil(len(text.split()) * 1.3)


class ContextBudget:
    """Trims passages, then demos (by default), until the rendered prompt fits."""

    def __init__(self, max_tokens: int, reserve_output: int = 64,
                 priority: Sequence[str] = ("passages", "demos"),
                 count_tokens: Callable[[str], int] | None = None):
        self.max_tokens = max_tokens
        self.reserve_output = reserve_output
        self.priority = tuple(priority)
        self.count_tokens = count_tokens or estimate_tokens
        self._validate()

    @classmethod
    def from_model(cls, model: Model, *, max_tokens: int | None = None, reserve_output: int = 64,
                   priority: Sequence[str] = ("passages", "demos"),
                   count_tokens: Callable[[str], int] | None = None) -> ContextBudget:
        """Budget for ``model.context_window``; ``max_tokens`` is the fallback when it is None."""
        window = model.context_window or max_tokens
        if window is None:
            raise ConfigError(f"model {model.identity} does not report its context window",
                              where="ContextBudget.from_model",
                              fix="pass max_tokens=N (the model's context length in tokens)")
        return cls(window, reserve_output=reserve_output, priority=priority,
                   count_tokens=count_tokens)

    def _validate(self) -> None:
        if self.reserve_output < 0:
            raise ConfigError(f"reserve_output is {self.reserve_output}",
                              where="ContextBudget.reserve_output", fix="use 0 or more tokens")
        if self.max_tokens <= self.reserve_output:
            raise ConfigError(f"max_tokens {self.max_tokens} leaves no room for the prompt after "
                              f"reserving {self.reserve_output} for the answer",
                              where="ContextBudget.max_tokens",
                              fix="raise max_tokens or lower reserve_output")
        unknown = [p for p in self.priority if p not in DROPPABLE]
        if unknown or len(set(self.priority)) != len(self.priority):
            raise ConfigError(f"bad priority {list(self.priority)}",
                              where="ContextBudget.priority",
                              fix="list each of 'passages' and 'demos' at most once, "
                                  "in the order to drop them")

    @property
    def limit(self) -> int:
        """Tokens the prompt may use: the window minus the room kept for the answer."""
        return self.max_tokens - self.reserve_output

    # --- measuring ---------------------------------------------------------------------------
    def measure(self, prepared: Prepared, example: Example) -> int:
        """Estimated prompt tokens, rendered exactly as the evaluator renders it."""
        messages = prepared.prompt.render_messages(example.inputs, prepared.context_values(),
                                                   where=f"example {example.id}")
        return sum(self.count_tokens(m["content"]) + MESSAGE_OVERHEAD for m in messages)

    # --- contextualizer ----------------------------------------------------------------------
    def prepare(self, prepared: Prepared, example: Example) -> Prepared:
        # copy the lists first: earlier steps may share them across examples
        prepared.passages = {slot: list(found) for slot, found in prepared.passages.items()}
        size = self.measure(prepared, example)
        while size > self.limit:
            dropped = self._drop_one(prepared)
            if dropped is None:
                raise self._overflow(prepared, example, size)
            note = f"budget: dropped {dropped} ({size} > {self.limit} tokens)"
            prepared.notes.append(note)
            logger.info("example %s: %s", example.id, note)
            size = self.measure(prepared, example)
        return prepared

    def _drop_one(self, prepared: Prepared) -> str | None:
        """Remove the next item in priority order; say what it was, or None if nothing is left."""
        for kind in self.priority:
            dropped = _drop_passage(prepared) if kind == "passages" else _drop_demo(prepared)
            if dropped is not None:
                return dropped
        return None

    def _overflow(self, prepared: Prepared, example: Example, size: int) -> ContextOverflowError:
        kept = _left_over(prepared, self.priority)
        fix = ("shorten the instruction or the input, or raise the context window "
               f"(max_tokens={self.max_tokens}, reserve_output={self.reserve_output})")
        if kept:
            fix += f", or add {' and '.join(kept)} to priority so they can be dropped"
        return ContextOverflowError(
            f"the prompt needs about {size} tokens but only {self.limit} fit "
            f"({size - self.limit} too many) with nothing left to drop",
            where=f"example {example.id}", fix=fix)

    def describe(self) -> dict[str, Any]:
        counter = getattr(self.count_tokens, "__qualname__", type(self.count_tokens).__name__)
        return {"contextualizer": "budget", "max_tokens": self.max_tokens,
                "reserve_output": self.reserve_output, "priority": list(self.priority),
                "counter": "words*1.3" if self.count_tokens is estimate_tokens else counter}


def _drop_passage(prepared: Prepared) -> str | None:
    slots = [slot for slot, found in prepared.passages.items() if found]
    if not slots:
        return None
    # the longest list loses its last passage, so one slot is not emptied while another is full
    slot = max(slots, key=lambda s: len(prepared.passages[s]))
    source, _ = prepared.passages[slot].pop()
    return f"passage {source}"


def _drop_demo(prepared: Prepared) -> str | None:
    demos = prepared.prompt.demos
    if not demos:
        return None
    prepared.prompt = prepared.prompt.model_copy(update={"demos": demos[1:]})
    return f"demo 1 of {len(demos)} {_snippet(demos[0].inputs)!r}"


def _snippet(inputs: dict[str, Any], width: int = 30) -> str:
    text = " ".join(" ".join(str(v) for v in inputs.values()).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _left_over(prepared: Prepared, priority: tuple[str, ...]) -> list[str]:
    """Droppable kinds that are still present because ``priority`` leaves them out."""
    kept = []
    if "passages" not in priority and any(prepared.passages.values()):
        kept.append("passages")
    if "demos" not in priority and prepared.prompt.demos:
        kept.append("demos")
    return kept
