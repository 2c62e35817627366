"""Why each failure failed: one category per failed example, with the evidence in words.

Categories are checked in a fixed order, from the most mechanical cause to the least, so each
failure lands where the fix is most direct: a call error before an empty answer, a truncated
reply before a wrong one, a right answer buried in chatter before a wrong label.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from . import language
from .data import Row, RunData

CATEGORIES: dict[str, str] = {
    "call_error": "the model call failed",
    "empty": "empty answer",
    "truncated": "output cut off at max tokens",
    "refusal": "the model refused or abstained",
    "format_violation": "answer does not have the required format",
    "wrong_language": "answer in the wrong language",
    "extra_text": "right answer with extra or hallucinated text around it",
    "wrong_label": "a different label than expected",
    "partial": "partially correct",
    "wrong_answer": "wrong answer",
}
MAX_LABELS = 20
_REFUSAL = re.compile(
    r"\b(i'?m sorry|i am sorry|i apologi[sz]e|i (?:cannot|can'?t|can not|won'?t|am unable to|"
    r"'m unable to|am not able to|'m not able to)\b|as an ai\b|as a language model|"
    r"\bi (?:do not|don'?t) know\b|"
    r"cannot (?:assist|help|provide|comply)|not (?:able|allowed) to (?:help|answer|provide))",
    re.IGNORECASE)
_WORDS = re.compile(r"\w+", re.UNICODE)


def normalize(text: str) -> str:
    return " ".join(_WORDS.findall(text.lower()))


@dataclass(frozen=True)
class LabelSet:
    labels: tuple[str, ...]

    def predict(self, output: str) -> str | None:
        """The label an output names: exact, else the only label mentioned as words."""
        norm = normalize(output)
        for label in self.labels:
            if normalize(label) == norm:
                return label
        mentioned = [x for x in self.labels if _contains(norm, normalize(x))]
        return mentioned[0] if len(mentioned) == 1 else None


def _contains(haystack: str, needle: str) -> bool:
    return bool(needle) and f" {needle} " in f" {haystack} "


def label_set(data: RunData) -> LabelSet | None:
    """The run's answers form a closed set: the prompt's label spec, or few repeated targets."""
    spec = data.prompt.output_spec if data.prompt is not None else None
    if spec is not None and spec.labels:
        return LabelSet(tuple(spec.labels))
    counts = Counter(r.target for r in data.rows if r.target)
    if 2 <= len(counts) <= MAX_LABELS and min(counts.values()) >= 2 and \
            all(len(t.split()) <= 3 for t in counts):
        return LabelSet(tuple(sorted(counts)))
    return None


def _token_f1(output: str, answer: str) -> float:
    out, ref = normalize(output).split(), normalize(answer).split()
    common = sum((Counter(out) & Counter(ref)).values())
    if not common:
        return 0.0
    precision, recall = common / len(out), common / len(ref)
    return 2 * precision * recall / (precision + recall)


class Classifier:
    """Assigns each failed row of one run its category and a one-line reason."""

    def __init__(self, data: RunData):
        self.data = data
        self.labels = label_set(data)
        self.spec = data.prompt.output_spec if data.prompt is not None else None
        self.wants_json = "json" in str(data.run.get("metric", "")).lower()
        self.max_tokens = data.max_tokens

    def classify(self, row: Row) -> tuple[str, str]:
        for check in (self._call_error, self._empty, self._truncated, self._refusal,
                      self._format, self._language, self._extra_text, self._wrong_label,
                      self._partial):
            found = check(row)
            if found:
                return found
        return "wrong_answer", _expected_vs_got(row)

    def _call_error(self, row: Row):
        if row.error:
            return "call_error", row.error.splitlines()[0][:200]
        return None

    def _empty(self, row: Row):
        if not row.raw_output.strip():
            return "empty", "the model returned nothing"
        if not row.output.strip():
            return "empty", "nothing left after answer extraction"
        return None

    def _mentions_answer(self, row: Row) -> str | None:
        norm = normalize(row.output)
        return next((a for a in row.expected if _contains(norm, normalize(a))), None)

    def _truncated(self, row: Row):
        hit_limit = row.finish_reason == "length" or (
            self.max_tokens and row.finish_reason is None and row.tokens_out >= self.max_tokens)
        if hit_limit and not self._mentions_answer(row):
            return "truncated", f"stopped at the {self.max_tokens}-token limit before an answer"
        return None

    def _refusal(self, row: Row):
        match = _REFUSAL.search(row.raw_output)
        if match and not self._mentions_answer(row):
            return "refusal", f"says '{match.group(0)}'"
        return None

    def _format(self, row: Row):
        if self.spec is not None and not self.spec.is_valid(self.spec.unwrap(row.raw_output)):
            return "format_violation", "does not match the prompt's output spec"
        if self.wants_json and not _parses_as_json(row.output):
            return "format_violation", "not valid JSON"
        if self.labels is not None and self.labels.predict(row.output) is None \
                and not self._mentions_answer(row):
            shown = ", ".join(self.labels.labels[:6])
            return "format_violation", f"names none of the labels ({shown})"
        return None

    def _language(self, row: Row):
        reference = row.target or ""
        if len(normalize(reference).split()) < 1:
            return None
        found = language.mismatch(row.output, reference)
        if found:
            return "wrong_language", f"expected {found[0]}, got {found[1]}"
        return None

    def _extra_text(self, row: Row):
        answer = self._mentions_answer(row)
        if answer is not None and normalize(row.output) != normalize(answer):
            extra = len(normalize(row.output).split()) - len(normalize(answer).split())
            return "extra_text", f"contains '{answer}' plus {extra} more word(s)"
        return None

    def _wrong_label(self, row: Row):
        if self.labels is None:
            return None
        predicted = self.labels.predict(row.output)
        if predicted is not None and predicted != row.target:
            return "wrong_label", f"said '{predicted}', expected '{row.target}'"
        return None

    def _partial(self, row: Row):
        if 0.0 < row.score < self.data.threshold:
            return "partial", f"metric gave partial credit {row.score:.2f}"
        best = max((_token_f1(row.output, a) for a in row.expected), default=0.0)
        if best >= 0.3:
            return "partial", f"shares {best:.0%} of the expected answer's words (token F1)"
        return None


def _parses_as_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _expected_vs_got(row: Row) -> str:
    expected = row.target if row.target is not None else "?"
    return f"expected '{_clip(expected)}', got '{_clip(row.output)}'"


def _clip(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def classify_failures(data: RunData) -> Counter[str]:
    """Label every failed row in place and count the categories."""
    classifier = Classifier(data)
    counts: Counter[str] = Counter()
    for row in data.failures:
        row.category, row.why = classifier.classify(row)
        counts[row.category] += 1
    return counts


def confusion(data: RunData) -> dict[str, Any] | None:
    """Target x predicted label counts over every example, for closed label sets."""
    labels = label_set(data)
    if labels is None:
        return None
    other = "(other)"
    columns = [*labels.labels, other]
    counts = {t: dict.fromkeys(columns, 0) for t in labels.labels}
    for row in data.rows:
        if row.target in counts and not row.error:
            counts[row.target][labels.predict(row.output) or other] += 1
    pairs = Counter({(t, p): n for t, by in counts.items() for p, n in by.items()
                     if p != t and n})
    return {"labels": list(labels.labels), "columns": columns,
            "matrix": [[counts[t][c] for c in columns] for t in labels.labels],
            "top_confusions": [{"target": t, "predicted": p, "count": n}
                               for (t, p), n in pairs.most_common(5)]}
