"""Metrics that compare text with the accepted answers: exact, contains, regex, numeric,
choice and token F1."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from typing import Any

from ..errors import ConfigError
from ..task import Example
from .base import NO_REFERENCE, Metric, Score, clamp, normalize, quote

_PUNCT_TO_SPACE = str.maketrans(string.punctuation, " " * len(string.punctuation))


def _fold(text: str) -> str:
    """Lowercase, punctuation to spaces, fold whitespace; keeps articles, so 'A' stays 'a'."""
    return " ".join(text.lower().translate(_PUNCT_TO_SPACE).split())


def _answer_form(text: str) -> str:
    # An answer such as "A" or "The" normalizes to nothing; compare those by their folded form.
    return normalize(text) or _fold(text)


def _expected(example: Example) -> str:
    """'expected X' or 'expected one of X, Y', for feedback."""
    accepted = example.accepted
    if len(accepted) == 1:
        return f"expected {quote(accepted[0])}"
    shown = ", ".join(quote(a, 40) for a in accepted[:3])
    more = f" (+{len(accepted) - 3} more)" if len(accepted) > 3 else ""
    return f"expected one of {shown}{more}"


# --- exact, contains, regex -------------------------------------------------------------------


class ExactMatch(Metric):
    name = "exact"

    def score(self, prediction: str, example: Example) -> Score:
        if not example.accepted:
            return NO_REFERENCE
        pred = _answer_form(prediction)
        if any(pred == _answer_form(a) for a in example.accepted):
            return Score(1.0)
        return Score(0.0, f"{_expected(example)}, got {quote(prediction)}")


def _contains_words(text: str, phrase: str) -> bool:
    # Both sides are single-space separated, so padding gives a whole-word match.
    return bool(phrase) and f" {phrase} " in f" {text} "


class Contains(Metric):
    """The normalized answer appears as whole words inside the normalized prediction."""

    name = "contains"

    def score(self, prediction: str, example: Example) -> Score:
        if not example.accepted:
            return NO_REFERENCE
        pred_norm, pred_fold = normalize(prediction), _fold(prediction)
        for answer in example.accepted:
            if _contains_words(pred_norm, normalize(answer)) or (
                    not normalize(answer) and _contains_words(pred_fold, _fold(answer))):
                return Score(1.0)
        return Score(0.0, f"{_expected(example)} somewhere in the output, "
                          f"got {quote(prediction)}")


_REGEX_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE,
                "a": re.ASCII}


def _regex_flags(flags: str) -> int:
    if not isinstance(flags, str):
        raise ConfigError(f"regex flags must be a string such as 'i', not {flags!r}",
                          where="metric.params.flags", fix="use letters from 'imsxa'")
    value = 0
    for letter in flags.lower():
        if letter not in _REGEX_FLAGS:
            raise ConfigError(f"unknown regex flag '{letter}' in {flags!r}",
                              where="metric.params.flags",
                              fix="use i (ignore case), m (multiline), s (dot matches newline), "
                                  "x (verbose) or a (ASCII)")
        value |= _REGEX_FLAGS[letter]
    return value


class RegexMatch(Metric):
    """1 if ``pattern`` is found anywhere in the prediction (``re.search``)."""

    name = "regex"

    def __init__(self, pattern: str, flags: str = ""):
        if not isinstance(pattern, str) or not pattern:
            raise ConfigError("the regex metric needs a non-empty 'pattern' string",
                              where="metric.params.pattern",
                              fix="set metric.params.pattern, e.g. '^(yes|no)$'")
        try:
            self.regex = re.compile(pattern, _regex_flags(flags))
        except re.error as exc:
            raise ConfigError(f"invalid regular expression {pattern!r} ({exc})",
                              where="metric.params.pattern",
                              fix="fix the pattern; in YAML quote it with single quotes so "
                                  "backslashes stay as written") from None
        self.flags = flags

    def describe(self) -> str:
        flags = f", flags={self.flags!r}" if self.flags else ""
        return f"regex({self.regex.pattern!r}{flags})"

    def score(self, prediction: str, example: Example) -> Score:
        if self.regex.search(prediction):
            return Score(1.0)
        return Score(0.0, f"output does not match the pattern {self.regex.pattern!r}: "
                          f"got {quote(prediction)}")


# --- numeric ----------------------------------------------------------------------------------

# A number: optional sign (not a hyphen inside a word such as "3-5"), thousands groups of
# exactly three digits (1,234) or plain digits, an optional decimal part and exponent.
_NUMBER = re.compile(r"""
    (?:(?<!\w)[-\u2212])?
    (?:
        (?<![\d.])(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?
      | (?<![\d.])\.\d+
    )
    (?:[eE][-+]?\d+)?
""", re.VERBOSE)


def last_number(text: str) -> tuple[float, str] | None:
    """The last number in ``text`` with its text as written, or None."""
    matches = _NUMBER.findall(text)
    if not matches:
        return None
    written = matches[-1]
    return float(written.replace(",", "").replace("\u2212", "-")), written


def _non_negative(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"'{name}' must be a number >= 0, not {value!r}",
                          where=f"metric.params.{name}", fix=f"set {name} to e.g. 0.01")
    return float(value)


class NumericMatch(Metric):
    """The last number in the prediction equals the reference number within a tolerance."""

    name = "numeric"

    def __init__(self, abs_tol: float = 1e-6, rel_tol: float = 0.0):
        self.abs_tol = _non_negative(abs_tol, "abs_tol")
        self.rel_tol = _non_negative(rel_tol, "rel_tol")

    def describe(self) -> str:
        return f"numeric(abs_tol={self.abs_tol:g}, rel_tol={self.rel_tol:g})"

    def score(self, prediction: str, example: Example) -> Score:
        if not example.accepted:
            return NO_REFERENCE
        targets = [n for n in map(last_number, example.accepted) if n is not None]
        if not targets:
            return Score(0.0, f"the reference {quote(example.accepted[0])} has no number")
        found = last_number(prediction)
        if found is None:
            return Score(0.0, f"no number in the output; expected {targets[0][1]}, "
                              f"got {quote(prediction)}")
        value, written = found
        if any(math.isclose(value, t, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
               for t, _ in targets):
            return Score(1.0)
        return Score(0.0, f"expected {targets[0][1]}, got {written} "
                          f"(the last number in the output)")


# --- choice -----------------------------------------------------------------------------------


class Choice(Metric):
    """Map the prediction to one of ``labels`` and compare it with the reference label.

    An output equal to a label wins; otherwise the label found earliest in the output, as whole
    words (the longer label when two start at the same place).
    """

    name = "choice"

    def __init__(self, labels: list[str]):
        if (not isinstance(labels, list | tuple) or not labels
                or not all(isinstance(x, str | int | float) for x in labels)):
            raise ConfigError(f"'labels' must be a non-empty list of strings, not {labels!r}",
                              where="metric.params.labels",
                              fix="set labels: [positive, negative, neutral]")
        self.labels = [str(x) for x in labels]
        self._folded = [(label, _fold(label)) for label in self.labels]
        empty = [label for label, folded in self._folded if not folded]
        if empty:
            raise ConfigError(f"label {empty[0]!r} has no letters or digits",
                              where="metric.params.labels", fix="use labels with words in them")

    def describe(self) -> str:
        return f"choice({', '.join(self.labels)})"

    def find_label(self, prediction: str) -> str | None:
        text = _fold(prediction)
        for label, folded in self._folded:
            if text == folded:
                return label
        hits = []
        for label, folded in self._folded:
            match = re.search(rf"(?<!\S){re.escape(folded)}(?!\S)", text)
            if match:
                hits.append((match.start(), -len(folded), label))
        return min(hits)[2] if hits else None

    def score(self, prediction: str, example: Example) -> Score:
        if not example.accepted:
            return NO_REFERENCE
        expected = {_fold(a) for a in example.accepted}
        if not expected & {folded for _, folded in self._folded}:
            return Score(0.0, f"the reference {quote(example.accepted[0])} is not one of the "
                              f"labels ({', '.join(self.labels)})")
        label = self.find_label(prediction)
        if label is None:
            return Score(0.0, f"output is not one of the labels ({', '.join(self.labels)}); "
                              f"{_expected(example)}, got {quote(prediction)}")
        if _fold(label) in expected:
            return Score(1.0)
        return Score(0.0, f"wrong label {label!r}, {_expected(example)}")


# --- token F1 ---------------------------------------------------------------------------------


def _token_f1(prediction: str, reference: str) -> tuple[float, Counter, Counter]:
    """SQuAD F1 over normalized tokens, with the missing and the extra tokens."""
    pred, ref = Counter(normalize(prediction).split()), Counter(normalize(reference).split())
    missing, extra = ref - pred, pred - ref
    if not pred or not ref:
        return float(pred == ref), missing, extra
    common = sum((pred & ref).values())
    if common == 0:
        return 0.0, missing, extra
    precision, recall = common / sum(pred.values()), common / sum(ref.values())
    return 2 * precision * recall / (precision + recall), missing, extra


def _tokens_text(tokens: Counter, limit: int = 8) -> str:
    words = list(tokens.elements())
    more = f" (+{len(words) - limit} more)" if len(words) > limit else ""
    return " ".join(words[:limit]) + more


class TokenF1(Metric):
    """SQuAD-style token F1, the best over the accepted answers."""

    name = "f1"

    def score(self, prediction: str, example: Example) -> Score:
        if not example.accepted:
            return NO_REFERENCE
        best = max(((_token_f1(prediction, a), a) for a in example.accepted),
                   key=lambda item: item[0][0])
        (f1, missing, extra), answer = best
        if f1 >= 1.0:
            return Score(1.0)
        parts = [f"token F1 {f1:.2f} against {quote(answer)}"]
        if missing:
            parts.append(f"missing: {_tokens_text(missing)}")
        if extra:
            parts.append(f"extra: {_tokens_text(extra)}")
        return Score(clamp(f1), "; ".join(parts))


# --- word set ---------------------------------------------------------------------------------


class WordSet(Metric):
    """The same words as an accepted answer, in any order and any number of times (APE's
    "exact set" score, for answers that are lists of words)."""

    name = "word_set"

    def score(self, prediction: str, example: Example) -> Score:
        if not example.accepted:
            return NO_REFERENCE
        got = set(normalize(prediction).split())
        wanted = [set(normalize(a).split()) for a in example.accepted]
        if got in wanted:
            return Score(1.0)
        closest = min(wanted, key=lambda w: len(w ^ got))
        parts = [f"{_expected(example)}, got {quote(prediction)}"]
        if closest - got:
            parts.append("missing: " + " ".join(sorted(closest - got)[:8]))
        if got - closest:
            parts.append("extra: " + " ".join(sorted(got - closest)[:8]))
        return Score(0.0, "; ".join(parts))

