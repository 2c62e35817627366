"""Output shapes learned from the training answers.

:func:`infer_shapes` finds the constraints that every training target satisfies (one lowercase
letter, an integer, at most three words, letters separated by spaces, a fixed prefix, a word of
the input...), most specific first. A shape with a ``pattern`` can be enforced while decoding
(``OutputSpec(pattern=...)``, compiled to a grammar); a relational one (it depends on each
input) can only be said in the prompt, through its ``note``.

Nothing here knows a task: every family is a general statement about strings, and a shape is
kept only if every target fully matches its pattern (or passes its relational check), so a
shape is never a guess. Patterns are bounded (``[a-z]{1,40}``, not ``[a-z]+``) so a grammar
cannot run away, and a pattern the grammar converter refuses is left out, never raised.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .constrain import OutputSpec
from .errors import ConfigError
from .task import Example

MIN_TARGETS = 3  # fewer answers say too little about a shape to constrain anything
MAX_WORDS = 10  # "at most k words" beyond this is no tighter than "one line"
WORD = 40  # letters in one word
LINE_MIN, LINE_CAP = 40, 400  # a line's bound: twice the longest answer, within these
TEXT_CAP = 2000

# Kinds of shape. ``line`` shapes bound the length and case only: chatter fits in them.
CHARACTER, NUMBER, WORDS, SPACED, AFFIXED, LINE, RELATIONAL = (
    "character", "number", "words", "spaced", "affixed", "line", "relational")


@dataclass(frozen=True)
class Shape:
    """A constraint every training answer satisfies.

    ``pattern`` is a Python regex each answer fully matches, or None when the shape depends on
    the input (say, "a word of the input") and can only be described, in ``note``.
    """

    name: str
    note: str
    pattern: str | None
    kind: str

    @property
    def spec(self) -> OutputSpec | None:
        return None if self.pattern is None else OutputSpec(pattern=self.pattern)


@dataclass(frozen=True)
class _Candidate:
    rank: float  # lower is more specific
    shape: Shape
    holds: Callable[[str, str], bool]  # (target, input text) -> satisfied?


def infer_shapes(examples: Sequence[Example]) -> list[Shape]:
    """Every shape that all targets (stripped) satisfy, most specific first; [] if none."""
    pairs = [(ex.target.strip(), input_text(ex)) for ex in examples
             if ex.target is not None and ex.target.strip()]
    if len(pairs) < MIN_TARGETS:
        return []
    targets = [t for t, _ in pairs]
    found = [c for c in _candidates(targets) if all(c.holds(t, i) for t, i in pairs)]
    found.sort(key=lambda c: c.rank)
    return _unique(c.shape for c in found if _enforceable(c.shape))


def grammar_shape(shapes: Sequence[Shape]) -> Shape | None:
    """The most specific shape worth enforcing while decoding: it has a pattern and is tighter
    than a line of text (a length or case bound alone does not stop a model's chatter)."""
    return next((s for s in shapes if s.pattern is not None and s.kind != LINE), None)


def input_text(example: Example) -> str:
    """The example's inputs as one text: the ``input`` field, else every value in order."""
    if "input" in example.inputs:
        return str(example.inputs["input"])
    return "\n".join(str(v) for v in example.inputs.values())


# --- the families -----------------------------------------------------------------------------
def _pattern(rank: float, name: str, note: str, pattern: str, kind: str) -> _Candidate:
    return _Candidate(rank, Shape(name, note, pattern, kind), _fullmatches(pattern))


def _fullmatches(pattern: str) -> Callable[[str, str], bool]:
    compiled = re.compile(pattern)

    def holds(target: str, _input: str) -> bool:
        return compiled.fullmatch(target) is not None
    return holds


def _word(letters: str, first: str | None = None) -> str:
    """One word of ``letters`` (a class body), with up to three inner hyphens or apostrophes."""
    head = f"[{first}][{letters}]{{0,{WORD - 1}}}" if first else f"[{letters}]{{1,{WORD}}}"
    return f"{head}(?:[-'][{letters}]{{1,{WORD}}}){{0,3}}"


# ``[^\s]`` rather than ``\S``: the grammar converter takes the first, not the second.
_FIXED = (
    (10, "one-lowercase-letter", "Answer with one lowercase letter.", "[a-z]", CHARACTER),
    (11, "one-uppercase-letter", "Answer with one uppercase letter.", "[A-Z]", CHARACTER),
    (12, "one-letter", "Answer with one letter.", "[A-Za-z]", CHARACTER),
    (13, "one-digit", "Answer with one digit.", "[0-9]", CHARACTER),
    (14, "one-character", "Answer with a single character.", r"[^\s]", CHARACTER),
    (20, "digits", "Answer with digits only.", f"[0-9]{{1,{WORD}}}", NUMBER),
    (21, "integer", "Answer with an integer only.", f"-?[0-9]{{1,{WORD}}}", NUMBER),
    (22, "number", "Answer with a number only.",
     f"-?[0-9][0-9,]{{0,{WORD - 1}}}(?:\\.[0-9]{{1,20}})?", NUMBER),
    (30, "one-lowercase-word", "Answer with one lowercase word.", _word("a-z"), WORDS),
    (31, "one-capitalized-word", "Answer with one capitalized word.", _word("a-z", "A-Z"), WORDS),
    (32, "one-uppercase-word", "Answer with one uppercase word.", _word("A-Z"), WORDS),
    (33, "one-word", "Answer with one word.", _word("A-Za-z"), WORDS),
)

_LOWER_TOKEN, _TOKEN = f"[^\\sA-Z]{{1,{WORD}}}", f"[^\\s]{{1,{WORD}}}"


def _candidates(targets: Sequence[str], affixes: bool = True) -> list[_Candidate]:
    found = [_pattern(*row) for row in _FIXED]
    found += _word_counts(targets) + _spaced(targets) + _lines(targets)
    if affixes:
        found += _affixed(targets)
        found += _relational()
    return found


def _word_counts(targets: Sequence[str]) -> list[_Candidate]:
    """At most k space-separated tokens, k being the most any target has."""
    k = max(len(t.split(" ")) for t in targets)
    if k > MAX_WORDS:
        return []
    if k == 1:
        return [_pattern(34, "one-lowercase-token", "Answer with a single lowercase word, "
                         "without spaces.", _LOWER_TOKEN, WORDS),
                _pattern(37, "one-token", "Answer with a single word, without spaces.", _TOKEN,
                         WORDS)]
    more = f"{{0,{k - 1}}}"
    return [_pattern(40, f"at-most-{k}-lowercase-words", f"Answer with at most {k} lowercase "
                     "words.", f"{_LOWER_TOKEN}(?: {_LOWER_TOKEN}){more}", WORDS),
            _pattern(41, f"at-most-{k}-words", f"Answer with at most {k} words.",
                     f"{_TOKEN}(?: {_TOKEN}){more}", WORDS)]


def _spaced(targets: Sequence[str]) -> list[_Candidate]:
    """Single characters separated by single spaces ("a b c"), when some answer has several."""
    if not any(" " in t for t in targets):
        return []
    most = f"{{0,{LINE_CAP // 2}}}"
    return [_pattern(35, "spaced-lowercase-letters", "Answer with single lowercase letters "
                     "separated by single spaces.", f"[a-z](?: [a-z]){most}", SPACED),
            _pattern(36, "spaced-characters", "Answer with single characters separated by "
                     "single spaces.", f"[^\\s](?: [^\\s]){most}", SPACED)]


def _lines(targets: Sequence[str]) -> list[_Candidate]:
    longest = max(len(t) for t in targets)
    line = min(LINE_CAP, max(LINE_MIN, 2 * longest))
    text = min(TEXT_CAP, max(LINE_MIN, 2 * longest))
    return [_pattern(50, "lowercase-line", "Answer in lowercase, on one line.",
                     f"[^\\nA-Z]{{1,{line}}}", LINE),
            _pattern(51, "one-line", "Answer on one line.", f"[^\\n]{{1,{line}}}", LINE),
            _pattern(60, "lowercase", "Write the answer in lowercase.", f"[^A-Z]{{1,{text}}}",
                     LINE)]


# --- a fixed prefix or suffix -----------------------------------------------------------------
def common_affixes(targets: Sequence[str]) -> tuple[str, str]:
    """The prefix and suffix every target shares, cut at a non-alphanumeric character, so
    "Answer: 12" and "Answer: 15" share "Answer: " (not "Answer: 1"), and "cats" and "dogs"
    share nothing. Each target keeps at least one character between the two."""
    prefix = _cut_prefix(os.path.commonprefix(list(targets)))
    if any(len(t) <= len(prefix) for t in targets):
        prefix = ""
    rests = [t[len(prefix):] for t in targets]
    suffix = _cut_suffix(os.path.commonprefix([r[::-1] for r in rests])[::-1])
    if any(len(r) <= len(suffix) for r in rests):
        suffix = ""
    return prefix, suffix


def _cut_prefix(prefix: str) -> str:
    cut = max((i for i, ch in enumerate(prefix) if not ch.isalnum()), default=-1)
    return prefix[:cut + 1] if prefix[:cut + 1].strip() else ""


def _cut_suffix(suffix: str) -> str:
    cut = next((i for i, ch in enumerate(suffix) if not ch.isalnum()), len(suffix))
    return suffix[cut:] if suffix[cut:].strip() else ""


def _affixed(targets: Sequence[str]) -> list[_Candidate]:
    """The shapes of what lies between a shared prefix and suffix, with the affixes around."""
    prefix, suffix = common_affixes(targets)
    if not prefix and not suffix:
        return []
    middles = [t[len(prefix):len(t) - len(suffix)] for t in targets]
    core = [c for c in _candidates(middles, affixes=False)
            if all(c.holds(m, "") for m in middles)]
    said = " ".join(filter(None, [
        f'Begin the answer with "{prefix.strip()}".' if prefix else "",
        f'End the answer with "{suffix.strip()}".' if suffix else ""]))
    label = "+".join(filter(None, ["prefixed" if prefix else "", "suffixed" if suffix else ""]))
    out = []
    for c in core:
        pattern = re.escape(prefix) + f"(?:{c.shape.pattern})" + re.escape(suffix)
        shape = Shape(f"{label}-{c.shape.name}", f"{said} {c.shape.note}", pattern, AFFIXED)
        out.append(_Candidate(c.rank - 0.5, shape, _fullmatches(pattern)))
    return out


# --- relational shapes: described, never enforced ---------------------------------------------
_EDGE_PUNCTUATION = ".,;:!?\"'()[]{}"


def _words(text: str) -> list[str]:
    return [w for w in (w.strip(_EDGE_PUNCTUATION) for w in text.split()) if w]


def _word_of_input(target: str, text: str) -> bool:
    return len(target.split()) == 1 and target in _words(text)


def _starts_with_first_word(target: str, text: str) -> bool:
    ours, theirs = _words(target), _words(text)
    return bool(ours and theirs) and ours[0].lower() == theirs[0].lower()


def _relational() -> list[_Candidate]:
    return [
        _Candidate(27, Shape("word-of-input", "Answer with one word copied from the input.",
                             None, RELATIONAL), _word_of_input),
        _Candidate(38, Shape("substring-of-input", "Answer with a part of the input, copied "
                             "exactly.", None, RELATIONAL), lambda t, i: t in i),
        _Candidate(39, Shape("starts-with-input-first-word", "Start the answer with the first "
                             "word of the input.", None, RELATIONAL), _starts_with_first_word),
    ]


# --- checks -----------------------------------------------------------------------------------
def _enforceable(shape: Shape) -> bool:
    """A pattern the grammar converter accepts (relational shapes need none)."""
    if shape.pattern is None:
        return True
    try:
        OutputSpec(pattern=shape.pattern).to_gbnf()
    except (ConfigError, ValueError, RecursionError, OverflowError):
        return False
    return True


def _unique(shapes: Iterable[Shape]) -> list[Shape]:
    seen: set[str] = set()
    out = []
    for shape in shapes:
        if shape.name not in seen:
            seen.add(shape.name)
            out.append(shape)
    return out
