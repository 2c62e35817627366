"""The strategy library: composable prompt transforms, by hand or as optimizer mutations.

A strategy ``apply``s to a prompt and returns a new one; it may look at training examples to
fit itself to the task (answer length, case, a closed label set). Strategies compose left to
right (``compose("role", "answer_only")``) and plugins add more through the
``promptmill.strategies`` entry point group, by the one rule of ``promptmill.plugins``.

Every transform is plain prompt data (instruction, output-format note, output spec, extraction
rule, token limit), so a transformed prompt is versioned, hashed and cached like any other.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from .constrain import OutputSpec
from .errors import ConfigError
from .plugins import Registry
from .prompt import Prompt
from .task import Example

Strategy = Callable[..., Prompt]

ANSWER_ONLY = "Reply with the answer only, without any explanation."
STEP_BY_STEP = ("Think step by step in a few short sentences. Then write the final answer on its "
                "own last line, as 'Answer: <answer>'.")
SELF_CHECK = ("Before you reply, check that your answer follows the instruction and the "
              "required format, and correct it if it does not.")
DEFAULT_ROLE = "a careful expert who answers precisely"
REASONING_TOKENS = 256
MAX_LABELS = 20


def _targets(examples: Sequence[Example] | None) -> list[str]:
    return [ex.target for ex in examples or () if ex.target]


def add_note(prompt: Prompt, note: str) -> Prompt:
    """The prompt with ``note`` added to its output-format note (once)."""
    current = (prompt.output_format or "").strip()
    if note in current:
        return prompt
    return prompt.model_copy(update={"output_format": f"{current} {note}".strip()})


def answer_shape(examples: Sequence[Example] | None) -> list[str]:
    """Format notes that describe the training answers: length, case, numbers."""
    targets = _targets(examples)
    if not targets:
        return []
    notes = []
    words = [len(t.split()) for t in targets]
    if all(len(t.strip()) == 1 for t in targets):
        notes.append("Answer with a single character.")
    elif max(words) == 1:
        notes.append("Answer with a single word.")
    elif max(words) <= 4:
        notes.append(f"Answer with at most {max(words)} words.")
    if all(re.fullmatch(r"-?[\d,]+(\.\d+)?", t.strip()) for t in targets):
        notes.append("Answer with a number only.")
    elif all(t == t.lower() for t in targets):
        notes.append("Write the answer in lowercase.")
    return notes


def closed_label_set(examples: Sequence[Example] | None) -> tuple[str, ...] | None:
    """The answers, when training shows a small closed set (every label seen twice or more)."""
    counts = Counter(_targets(examples))
    if len(counts) < 2 or len(counts) > MAX_LABELS or min(counts.values()) < 2:
        return None
    return tuple(sorted(counts))


def _single_line(examples: Sequence[Example] | None) -> bool:
    return all("\n" not in t.strip() for t in _targets(examples))


# --- the built-in strategies -------------------------------------------------------------------
def answer_only(prompt: Prompt, examples: Sequence[Example] | None = None) -> Prompt:
    """Ask for the bare answer; keep only the first line when training answers are one line."""
    out = add_note(prompt, ANSWER_ONLY)
    if prompt.extract is None and examples and _single_line(examples):
        out = out.model_copy(update={"extract": "first_line"})
    return out


def output_format(prompt: Prompt, examples: Sequence[Example] | None = None,
                  spec: OutputSpec | dict | None = None) -> Prompt:
    """An explicit format: the given spec, else a closed label set or the answers' shape.

    With a label set or spec the answer is also enforced while decoding (constrained output).
    """
    if spec is None and examples:
        labels = closed_label_set(examples)
        spec = OutputSpec(labels=labels) if labels else None
    if spec is not None:
        spec = spec if isinstance(spec, OutputSpec) else OutputSpec.model_validate(spec)
        return prompt.model_copy(update={"output_spec": spec, "output_format": None})
    shape = " ".join(answer_shape(examples))
    if not shape:
        return answer_only(prompt, examples)
    return answer_only(add_note(prompt, shape), examples)


def step_by_step(prompt: Prompt, examples: Sequence[Example] | None = None,
                 max_tokens: int = REASONING_TOKENS) -> Prompt:
    """Reason first, then an 'Answer:' line that extraction takes out for scoring."""
    # a format note asking for the bare answer would contradict the reasoning request
    base = prompt.model_copy(update={"output_format": None, "output_spec": None})
    return add_note(base, STEP_BY_STEP).model_copy(
        update={"extract": "after:Answer:", "max_tokens": max(max_tokens,
                                                             prompt.max_tokens or 0)})


def role(prompt: Prompt, examples: Sequence[Example] | None = None,
         persona: str = DEFAULT_ROLE) -> Prompt:
    """Open the instruction with a role or persona."""
    opener = f"You are {persona.strip().rstrip('.')}."
    if prompt.instruction.startswith(opener):
        return prompt
    return prompt.model_copy(update={"instruction": f"{opener} {prompt.instruction}".strip()})


def self_check(prompt: Prompt, examples: Sequence[Example] | None = None) -> Prompt:
    """Ask the model to check its answer against the instruction and format before replying."""
    return add_note(prompt, SELF_CHECK)


BUILTIN: dict[str, Strategy] = {
    "answer_only": answer_only, "output_format": output_format, "step_by_step": step_by_step,
    "role": role, "self_check": self_check,
}


# the same table every registry has (``promptmill.plugins``): also promptmill's entry points
REGISTRY = Registry("promptmill.strategies", "strategy",
                    {name: f"{__name__}:{fn.__name__}" for name, fn in BUILTIN.items()})


def available() -> dict[str, Strategy]:
    """Built-in strategies and those plugins register under ``promptmill.strategies``.

    Imports every plugin (once per process); one that fails to import is left out here and
    fails with a one-line error only when it is asked for by name.
    """
    found: dict[str, Strategy] = {}
    for name in REGISTRY.names():
        try:
            found[name] = REGISTRY.load(name)
        except ConfigError:
            continue
    return found


def get_strategy(name: str) -> Strategy:
    strategy = REGISTRY.load(name)
    if strategy is None:
        raise ConfigError(f"unknown strategy '{name}'", where="strategies",
                          fix="use one of " + ", ".join(REGISTRY.names()))
    return strategy


def apply(prompt: Prompt, names: Sequence[str], examples: Sequence[Example] | None = None,
          **params: Any) -> Prompt:
    """Apply strategies in order. ``params`` go to the strategies that accept them."""
    import inspect

    for name in names:
        strategy = get_strategy(name)
        accepted = inspect.signature(strategy).parameters
        prompt = strategy(prompt, examples, **{k: v for k, v in params.items() if k in accepted})
    return prompt


def compose(*names: str) -> Strategy:
    """One strategy made of several, applied left to right."""
    for name in names:
        get_strategy(name)  # fail now, not on first use

    def composed(prompt: Prompt, examples: Sequence[Example] | None = None) -> Prompt:
        return apply(prompt, names, examples)
    composed.__name__ = "+".join(names)
    return composed
