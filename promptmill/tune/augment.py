"""Training-set augmentation: rule-based edits, model paraphrases with a label check, dedup.

Every new example must keep its label. Two guards decide that without knowing the task:

* rule edits never touch a word's first or last character, so tasks that read word edges
  (first letter, rhymes) keep their answers;
* an augmented input must still contain every answer word the original input contained, so
  copy-style tasks (extract a word, rewrite a sentence) keep theirs.

Paraphrases from a small model are often wrong; the guard, a length window and dedup discard
most of the bad ones. The ``stats`` of an :class:`Augmented` say how many each rule made and
how many were dropped, so the effect on validation can be read next to them.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from ..metrics.base import normalize
from ..models.base import GenerationParams, Model
from ..task import Example

RULES = ("typo", "case", "spacing", "punct")
PARAPHRASE_INSTRUCTION = ("Rewrite the text below in different words. Keep its meaning and "
                          "every name and number. Reply with the rewritten text only.")
_WORD = re.compile(r"[A-Za-z]{4,}")


@dataclass
class Augmented:
    examples: list[Example]
    stats: Counter = field(default_factory=Counter)


def _typo(text: str, rng: random.Random) -> str:
    """Swap two neighbouring inner letters of one longer word."""
    words = list(_WORD.finditer(text))
    if not words:
        return text
    m = rng.choice(words)
    word = m.group()
    i = rng.randrange(1, len(word) - 2) if len(word) > 3 else 1
    swapped = word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return text[:m.start()] + swapped + text[m.end():]


def _case(text: str, rng: random.Random) -> str:
    return text.lower() if text != text.lower() else text.capitalize()


def _spacing(text: str, rng: random.Random) -> str:
    spaces = [i for i, c in enumerate(text) if c == " "]
    if not spaces:
        return f" {text} "
    i = rng.choice(spaces)
    return text[:i] + "  " + text[i + 1:]


def _punct(text: str, rng: random.Random) -> str:
    stripped = text.rstrip()
    return stripped[:-1] if stripped.endswith((".", "!", "?")) else stripped + "."


EDITS: dict[str, Callable[[str, random.Random], str]] = {
    "typo": _typo, "case": _case, "spacing": _spacing, "punct": _punct}


def label_kept(original: Example, inputs: dict) -> bool:
    """True when every answer word the original input showed is still in the new input."""
    if inputs == original.inputs:
        return False
    answer_words = set(normalize(original.target or "").split())
    for key, value in original.inputs.items():
        new = inputs.get(key)
        if not isinstance(value, str):
            if new != value:
                return False
            continue
        if not isinstance(new, str) or not new.strip():
            return False
        shown = answer_words & set(normalize(value).split())
        if not shown <= set(normalize(new).split()):
            return False
    return True


def _edited(example: Example, rule: str, rng: random.Random) -> dict:
    return {k: EDITS[rule](v, rng) if isinstance(v, str) else v
            for k, v in example.inputs.items()}


def rule_variants(examples: Sequence[Example], rules: Sequence[str] = RULES,
                  per_example: int = 1, seed: int = 0) -> Augmented:
    """Up to ``per_example`` edited copies of each example, each by a random rule."""
    rng = random.Random(seed)
    out: list[Example] = []
    stats: Counter[str] = Counter()
    for ex in examples:
        for k in range(per_example):
            rule = rng.choice(list(rules))
            inputs = _edited(ex, rule, rng)
            if label_kept(ex, inputs):
                out.append(replace(ex, id=f"{ex.id}~{rule}{k}", inputs=inputs))
                stats[f"rule:{rule}"] += 1
            else:
                stats[f"dropped:{rule}"] += 1
    return Augmented(out, stats)


def paraphrases(examples: Sequence[Example], model: Model, field_name: str | None = None,
                max_tokens: int = 64) -> Augmented:
    """One model paraphrase of one text input per example, kept only if the label survives."""
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0)
    out: list[Example] = []
    stats: Counter[str] = Counter()
    for ex in examples:
        key = field_name or next((k for k, v in ex.inputs.items() if isinstance(v, str)), None)
        if key is None:
            continue
        text = ex.inputs[key]
        messages = [{"role": "system", "content": PARAPHRASE_INSTRUCTION},
                    {"role": "user", "content": text}]
        new = model.generate(messages, params).text.strip()
        inputs = {**ex.inputs, key: new}
        in_window = 0.5 * len(text) <= len(new) <= 2.0 * len(text) + 8
        if in_window and label_kept(ex, inputs):
            out.append(replace(ex, id=f"{ex.id}~para", inputs=inputs))
            stats["paraphrase"] += 1
        else:
            stats["dropped:paraphrase"] += 1
    return Augmented(out, stats)


def dedupe(examples: Sequence[Example]) -> tuple[list[Example], int]:
    """Drop examples whose inputs were seen before, ignoring only leading and trailing space.

    Not normalized further: a case or punctuation edit is exactly the variation the
    augmentation wants the model to see. The first occurrence wins.
    """
    seen: set[tuple] = set()
    kept = []
    for ex in examples:
        key = tuple(sorted((k, v.strip() if isinstance(v, str) else repr(v))
                           for k, v in ex.inputs.items()))
        if key not in seen:
            seen.add(key)
            kept.append(ex)
    return kept, len(examples) - len(kept)


def augment(examples: Sequence[Example], *, rules: Sequence[str] = RULES, per_example: int = 1,
            paraphraser: Model | None = None, seed: int = 0) -> Augmented:
    """The originals plus rule edits (and paraphrases), deduplicated; originals come first."""
    unknown = [r for r in rules if r not in EDITS]
    if unknown:
        from ..errors import ConfigError

        raise ConfigError(f"unknown augmentation rule '{unknown[0]}'", where="--rules",
                          fix=f"use some of: {', '.join(RULES)}")
    made = rule_variants(examples, rules, per_example, seed) if rules else Augmented([])
    stats = Counter(made.stats)
    extra = list(made.examples)
    if paraphraser is not None:
        para = paraphrases(examples, paraphraser)
        stats.update(para.stats)
        extra.extend(para.examples)
    kept, dropped = dedupe([*examples, *extra])
    stats["duplicates_dropped"] = dropped
    stats["original"] = len(examples)
    stats["total"] = len(kept)
    return Augmented(kept, stats)
