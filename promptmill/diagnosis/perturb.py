"""Perturbations of inputs and prompts that should not change a good answer.

Each returns new objects and never touches the originals. Randomness comes from a seeded
generator, so a robustness report is reproducible and its calls hit the cache on a rerun.
"""

from __future__ import annotations

import dataclasses
import random
import re
import string

from ..prompt import Prompt
from ..task import Example

_OPTION_LINE = re.compile(r"^\s*\(?([A-Ja-j])[\).:]\s+(.+?)\s*$")


def _map_text(example: Example, fn) -> Example:
    inputs = {k: fn(v) if isinstance(v, str) else v for k, v in example.inputs.items()}
    return dataclasses.replace(example, inputs=inputs)


def whitespace(example: Example, rng: random.Random) -> Example:
    def noisy(text: str) -> str:
        words = text.split(" ")
        out = [w + (" " if rng.random() < 0.3 else "") for w in words]
        return "  " * rng.randint(0, 1) + " ".join(out) + rng.choice(["", " ", "\n", "  "])

    return _map_text(example, noisy)


def casing(example: Example, rng: random.Random) -> Example:
    change = rng.choice([str.upper, str.lower, str.title, str.swapcase])
    return _map_text(example, change)


def typos(example: Example, rng: random.Random, rate: float = 0.15) -> Example:
    def typo(word: str) -> str:
        if len(word) < 4 or not word.isalpha() or rng.random() >= rate:
            return word
        i = rng.randrange(1, len(word) - 1)
        kind = rng.choice(["swap", "drop", "double", "replace"])
        if kind == "swap":
            return word[:i] + word[i + 1] + word[i] + word[i + 2:]
        if kind == "drop":
            return word[:i] + word[i + 1:]
        if kind == "double":
            return word[:i] + word[i] + word[i:]
        return word[:i] + rng.choice(string.ascii_lowercase) + word[i + 1:]

    return _map_text(example, lambda text: re.sub(r"\w+", lambda m: typo(m.group(0)), text))


def options_in(example: Example) -> tuple[str, list[tuple[int, str, str]]] | None:
    """The input field holding lettered options and its (line, letter, text), if any."""
    for name, value in example.inputs.items():
        if not isinstance(value, str):
            continue
        lines = value.split("\n")
        found = [(i, m.group(1), m.group(2)) for i, line in enumerate(lines)
                 if (m := _OPTION_LINE.match(line))]
        if len(found) >= 2:
            return name, found
    return None


def shuffle_options(example: Example, rng: random.Random) -> Example | None:
    """Reorder lettered options, relabelling them and a letter target; None if there are none.

    Letters stay in place (A first); the option texts move, and a target naming a letter
    follows its text to the new letter.
    """
    found = options_in(example)
    if found is None:
        return None
    name, options = found
    order = list(range(len(options)))
    while order == sorted(order):
        rng.shuffle(order)
    lines = example.inputs[name].split("\n")
    moved = {}
    for slot, source in enumerate(order):
        line_no, letter, _ = options[slot]
        match = _OPTION_LINE.match(lines[line_no])
        assert match is not None  # the options were found on these lines by this pattern
        lines[line_no] = lines[line_no][: match.start(2)] + options[source][2]
        moved[options[source][1].upper()] = letter
    return dataclasses.replace(
        example, inputs={**example.inputs, name: "\n".join(lines)},
        target=_relabel(example.target, moved),
        answers=tuple(a for a in (_relabel(x, moved) for x in example.answers) if a))


def _relabel(answer: str | None, moved: dict[str, str]) -> str | None:
    if answer is None:
        return None
    bare = answer.strip().strip("()").rstrip(".:)")
    if len(bare) == 1 and bare.upper() in moved:
        new = moved[bare.upper()]
        return answer.replace(bare, new.upper() if bare.isupper() else new.lower(), 1)
    return answer  # the option's text: unchanged by reordering


def shuffle_demos(prompt: Prompt, rng: random.Random) -> Prompt | None:
    if len(prompt.demos) < 2:
        return None
    demos = list(prompt.demos)
    while tuple(demos) == tuple(prompt.demos):
        rng.shuffle(demos)
    return prompt.model_copy(update={"demos": tuple(demos)})


INPUT_NOISE = {"whitespace": whitespace, "casing": casing, "typos": typos}
