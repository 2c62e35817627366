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
from ..shapes import AFFIXED, RELATIONAL, SPACED, grammar_shape, infer_shapes
from ..task import Example

# Shapes whose note says what the answer-shape note cannot: worth a note-only variant.
NOTE_KINDS = (RELATIONAL, SPACED, AFFIXED)


def format_variants(prompt: Prompt, train: Sequence[Example]) -> list[tuple[str, Prompt]]:
    """The seed with strategies from the library: answer-only, then an explicit format (the
    answers' shape, or a closed label set enforced while decoding), then up to two variants
    from the shapes learned from the answers (see :func:`shape_variants`)."""
    variants = [("format:answer-only", strategies.answer_only(prompt, train))]
    explicit = strategies.output_format(prompt, train)
    if explicit != variants[0][1]:
        origin = "format:labels" if explicit.output_spec is not None else "format:shape"
        variants.append((origin, explicit))
    # no spec of the prompt's own and no closed label set (output_format would have made one)
    if prompt.output_spec is None and explicit.output_spec is None:
        taken = {p.hash for _, p in variants} | {prompt.hash}
        variants += [(o, p) for o, p in shape_variants(prompt, train, explicit)
                     if p.hash not in taken]
    return variants


def shape_variants(prompt: Prompt, train: Sequence[Example],
                   explicit: Prompt | None = None) -> list[tuple[str, Prompt]]:
    """At most two prompts from :func:`promptmill.shapes.infer_shapes`:

    - ``format:grammar:<shape>``: the most specific shape tighter than a line of text, enforced
      while decoding (``output_spec`` with its pattern) and said in the format note;
    - ``format:note:<shape>``: a note the answer-shape note cannot say (a relation to the input,
      spaced characters, a fixed prefix or suffix), added to the explicit format, no grammar;
      only for a shape at least as specific as the grammar's (else the grammar says more).

    Label tasks never get here: their closed set is already a grammar.
    """
    shapes = infer_shapes(train)
    out = []
    grammar = grammar_shape(shapes)
    if grammar is not None:
        constrained = strategies.add_note(prompt, grammar.note)
        out.append((f"format:grammar:{grammar.name}",
                    constrained.model_copy(update={"output_spec": grammar.spec})))
    # a note worth its calls says at least as much as the grammar: it comes no later in the list
    upto = shapes[: shapes.index(grammar) + 1] if grammar is not None else shapes
    noted = next((s for s in upto if s.kind in NOTE_KINDS), None)
    if noted is not None:
        base = explicit if explicit is not None else strategies.output_format(prompt, train)
        out.append((f"format:note:{noted.name}", strategies.add_note(base, noted.note)))
    return out


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
