"""Rule-based prompt edits that need no proposer model.

A 135M model writes poor instructions, but it follows explicit format notes and worked
examples well. These edits are derived from the training data alone (what the answers look
like), so they carry over to tasks never seen before.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from ..prompt import Demo, Prompt
from ..task import Example

ANSWER_ONLY = "Reply with the answer only, without any explanation."


def answer_shape(train: Sequence[Example]) -> list[str]:
    """Format notes that describe the training answers: length, case, numbers."""
    targets = [ex.target for ex in train if ex.target]
    if not targets:
        return []
    notes = []
    words = [len(t.split()) for t in targets]
    if max(words) == 1:
        notes.append("Answer with a single word.")
    elif max(words) <= 4:
        notes.append(f"Answer with at most {max(words)} words.")
    if all(re.fullmatch(r"-?[\d,]+(\.\d+)?", t.strip()) for t in targets):
        notes.append("Answer with a number only.")
    elif all(t == t.lower() for t in targets):
        notes.append("Write the answer in lowercase.")
    return notes


def format_variants(prompt: Prompt, train: Sequence[Example]) -> list[tuple[str, Prompt]]:
    """The seed with an output-format note: answer-only, and the inferred answer shape."""
    shape = " ".join(answer_shape(train))
    notes = [("format:answer-only", ANSWER_ONLY)]
    if shape:
        notes.append(("format:shape", f"{shape} {ANSWER_ONLY}"))
    return [(origin, prompt.model_copy(update={"output_format": note})) for origin, note in notes]


def demos_from(examples: Sequence[Example]) -> tuple[Demo, ...]:
    return tuple(Demo(inputs=dict(ex.inputs), output=ex.target or "") for ex in examples)


def with_demos(prompt: Prompt, examples: Sequence[Example]) -> Prompt:
    return prompt.model_copy(update={"demos": demos_from(examples)})


def sample_demos(train: Sequence[Example], k: int, rng: random.Random) -> list[Example]:
    """k training examples, spread over distinct answers where possible (label balance)."""
    pool = list(train)
    rng.shuffle(pool)
    chosen, seen = [], set()
    for ex in pool:  # first pass: one per distinct answer
        if len(chosen) < k and ex.target not in seen:
            chosen.append(ex)
            seen.add(ex.target)
    for ex in pool:
        if len(chosen) >= k:
            break
        if ex not in chosen:
            chosen.append(ex)
    return chosen[:k]
