"""Rule-based prompt edits that need no proposer model.

A 135M model writes poor instructions, but it follows explicit format notes and worked
examples well. These edits are derived from the training data alone (what the answers look
like), so they carry over to tasks never seen before.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from .. import strategies
from ..prompt import Demo, Prompt
from ..task import Example


def format_variants(prompt: Prompt, train: Sequence[Example]) -> list[tuple[str, Prompt]]:
    """The seed with strategies from the library: answer-only, then an explicit format (the
    answers' shape, or a closed label set enforced while decoding)."""
    variants = [("format:answer-only", strategies.answer_only(prompt, train))]
    explicit = strategies.output_format(prompt, train)
    if explicit != variants[0][1]:
        origin = "format:labels" if explicit.output_spec is not None else "format:shape"
        variants.append((origin, explicit))
    return variants


def demos_from(examples: Sequence[Example]) -> tuple[Demo, ...]:
    return tuple(Demo(inputs=dict(ex.inputs), output=ex.target or "") for ex in examples)


def with_demos(prompt: Prompt, examples: Sequence[Example]) -> Prompt:
    return prompt.model_copy(update={"demos": demos_from(examples), "demo_selection": None})


def sample_demos(train: Sequence[Example], k: int, rng: random.Random) -> list[Example]:
    """k training examples, spread over distinct answers where possible (label balance)."""
    pool = list(train)
    rng.shuffle(pool)
    chosen: list[Example] = []
    seen: set[str | None] = set()
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
