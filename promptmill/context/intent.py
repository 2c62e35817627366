"""Intent routing: send each input to the prompt variant written for what the user wants.

Routing is tried cheapest first. :class:`IntentRule`\\ s (a regex, or a list of keywords) are
tried in order and the first match wins; they cost nothing and are easy to audit. Only when no
rule matches is the optional classifier model asked, with a constrained choice: if the backend
can score fixed options (``model.score_options``) the most likely label wins, else the model
generates and the first label mentioned in its answer is taken. Anything else falls back to
``default``. Each decision is written to ``prepared.notes`` ("intent: refund (rule 2)") and
``prepared.segment``, so scores can be reported per segment with :func:`scores_by_segment`: a
router that helps one segment and hurts another shows up there, not in the overall mean.

The router *replaces* the prompt with the routed variant. Put it first in a :class:`Chain`, so
demo selection, knowledge passages and the budget then work on the variant; anything an earlier
step put into the prompt (demos) would be lost, while ``context`` and ``passages`` are kept.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..models.base import GenerationParams, Messages, Model
from ..prompt import Prompt
from ..stats import Estimate, mean_ci
from ..task import Example
from .base import Prepared

NO_SEGMENT = "(none)"
_CLASSIFY_PARAMS = GenerationParams(max_tokens=8, temperature=0.0, seed=0)
CLASSIFIER_INSTRUCTION = ("Classify the user's message into exactly one of these intents: "
                          "{labels}.\nAnswer with the intent name only.")


@dataclass(frozen=True)
class IntentRule:
    """Route to ``intent`` when ``pattern`` matches.

    ``pattern`` is a regex string (searched, not anchored) or a list of keywords (whole words,
    any of them). ``field`` names the input to look at; without it every input is searched.
    Matching ignores case unless ``ignore_case=False``.
    """

    intent: str
    pattern: str | Sequence[str]
    field: str | None = None
    ignore_case: bool = True
    regex: re.Pattern[str] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, str):  # a tuple keeps the frozen rule hashable
            object.__setattr__(self, "pattern", tuple(self.pattern))
        object.__setattr__(self, "regex", _compile_rule(self))

    def matches(self, example: Example, where: str = "intent rule") -> bool:
        return self.regex.search(_rule_text(self, example, where)) is not None

    def describe(self) -> dict[str, Any]:
        pattern = self.pattern if isinstance(self.pattern, str) else list(self.pattern)
        return {"intent": self.intent, "pattern": pattern, "field": self.field,
                "ignore_case": self.ignore_case}


def _compile_rule(rule: IntentRule) -> re.Pattern[str]:
    flags = re.IGNORECASE if rule.ignore_case else 0
    if isinstance(rule.pattern, str):
        try:
            return re.compile(rule.pattern, flags)
        except re.error as exc:
            raise ConfigError(f"bad regex {rule.pattern!r}: {exc}",
                              where=f"intent rule for '{rule.intent}'",
                              fix="correct the pattern, or give a list of keywords") from None
    words = [w.strip() for w in rule.pattern if w and w.strip()]
    if not words:
        raise ConfigError("a keyword rule needs at least one keyword",
                          where=f"intent rule for '{rule.intent}'", fix="add keywords")
    # lookarounds instead of \b so keywords that start or end in punctuation ('c++') still match
    alternatives = "|".join(re.escape(w) for w in words)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", flags)


def _rule_text(rule: IntentRule, example: Example, where: str) -> str:
    if rule.field is None:
        return input_text(example)
    if rule.field not in example.inputs:
        have = ", ".join(sorted(example.inputs)) or "none"
        raise ConfigError(f"rule field '{rule.field}' is not an input of example "
                          f"{example.id} (fields: {have})", where=where,
                          fix="name an input field in the rule, or drop field=")
    return str(example.inputs[rule.field])


def input_text(example: Example) -> str:
    """All inputs as one text, in key order, for rules and the classifier."""
    return "\n".join(str(v) for v in example.inputs.values())


class IntentRouter:
    """Picks a prompt variant per example by rules, then an optional classifier, then default."""

    def __init__(self, variants: Mapping[str, Prompt], rules: Sequence[IntentRule] | None = None,
                 classifier: Model | None = None,
                 labels: Sequence[str] | Mapping[str, str] | None = None,
                 default: str | None = None, instruction: str = CLASSIFIER_INSTRUCTION):
        self.variants = dict(variants)
        self.rules = list(rules or [])
        self.classifier = classifier
        # label -> description ('' when none); descriptions help a small model choose
        self.labels = _label_map(labels, self.variants) if classifier is not None else {}
        self.default = default if default is not None else next(iter(self.variants), "")
        self.instruction = instruction
        self._cache: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._validate(labels)

    # --- validation --------------------------------------------------------------------------
    def _validate(self, labels: Any) -> None:
        if not self.variants:
            raise ConfigError("IntentRouter needs at least one prompt variant",
                              where="IntentRouter.variants",
                              fix="pass variants={'intent name': Prompt(...), ...}")
        known = ", ".join(self.variants)
        for name, prompt in self.variants.items():
            if not isinstance(prompt, Prompt):
                raise ConfigError(f"variant '{name}' is a {type(prompt).__name__}, not a Prompt",
                                  where="IntentRouter.variants", fix="pass Prompt objects")
        if self.default not in self.variants:
            raise ConfigError(f"default intent '{self.default}' has no variant",
                              where="IntentRouter.default", fix=f"use one of: {known}")
        for i, rule in enumerate(self.rules, 1):
            if rule.intent not in self.variants:
                raise ConfigError(f"rule {i} routes to unknown intent '{rule.intent}'",
                                  where=f"IntentRouter.rules[{i}]", fix=f"use one of: {known}")
        if labels is not None and self.classifier is None:
            raise ConfigError("labels are given but there is no classifier to choose among them",
                              where="IntentRouter.labels",
                              fix="pass classifier=MODEL, or drop labels")
        for label in self.labels:
            if label not in self.variants:
                raise ConfigError(f"classifier label '{label}' has no variant",
                                  where="IntentRouter.labels", fix=f"use one of: {known}")

    # --- routing -----------------------------------------------------------------------------
    def route(self, example: Example) -> tuple[str, str]:
        """(intent, how): how is 'rule N', 'classifier' or 'default'."""
        for i, rule in enumerate(self.rules, 1):
            if rule.matches(example, where=f"IntentRouter.rules[{i}]"):
                return rule.intent, f"rule {i}"
        if self.classifier is None:
            return self.default, "default"
        return self.classify(input_text(example))

    def classify(self, text: str) -> tuple[str, str]:
        """Ask the classifier once per distinct text; later calls come from memory."""
        with self._lock:
            cached = self._cache.get(text)
        if cached is not None:
            return cached
        decided = self._classify(text)
        with self._lock:
            self._cache[text] = decided
        return decided

    def _classify(self, text: str) -> tuple[str, str]:
        assert self.classifier is not None
        labels = list(self.labels)
        request = self.classifier_request(text)
        if self.classifier.can_score_options:
            scores = self.classifier.score_options(request, labels)
            return labels[max(range(len(labels)), key=scores.__getitem__)], "classifier"
        answer = self.classifier.generate(request, _CLASSIFY_PARAMS).text
        label = first_label(answer, labels)
        if label is None:
            return self.default, f"default; classifier said {answer.strip()[:40]!r}"
        return label, "classifier"

    def classifier_request(self, text: str) -> Messages:
        names = ", ".join(self.labels)
        # replace, not str.format: a format string could read attributes of its arguments
        system = self.instruction.replace("{labels}", names)
        described = [f"- {name}: {about}" for name, about in self.labels.items() if about]
        if described:
            system = system + "\n" + "\n".join(described)
        return [{"role": "system", "content": system}, {"role": "user", "content": text}]

    # --- contextualizer ----------------------------------------------------------------------
    def prepare(self, prepared: Prepared, example: Example) -> Prepared:
        intent, how = self.route(example)
        prepared.prompt = self.variants[intent]
        prepared.segment = intent
        prepared.notes.append(f"intent: {intent} ({how})")
        return prepared

    def describe(self) -> dict[str, Any]:
        return {"contextualizer": "intent",
                "variants": {name: p.hash for name, p in self.variants.items()},
                "rules": [r.describe() for r in self.rules],
                "classifier": self.classifier.identity if self.classifier else None,
                "labels": dict(self.labels), "default": self.default,
                "instruction": self.instruction if self.classifier else None}

    @staticmethod
    def scores_by_segment(segments: Mapping[str, str | None],
                          scores: Mapping[str, float]) -> dict[str, Estimate]:
        return scores_by_segment(segments, scores)


def _label_map(labels: Sequence[str] | Mapping[str, str] | None,
               variants: Mapping[str, Prompt]) -> dict[str, str]:
    if labels is None:
        return {name: "" for name in variants}
    if isinstance(labels, Mapping):
        return {str(k): str(v) for k, v in labels.items()}
    if isinstance(labels, str):
        raise ConfigError("labels must be a list of intent names, not one string",
                          where="IntentRouter.labels", fix=f"write labels=[{labels!r}, ...]")
    if not labels:
        raise ConfigError("the classifier needs at least one label", where="IntentRouter.labels",
                          fix="list the intents it may choose, or drop labels to use all")
    return {str(label): "" for label in labels}


def first_label(answer: str, labels: Sequence[str]) -> str | None:
    """The label mentioned earliest in ``answer`` (case-insensitive, whole words); longest wins
    a tie, so 'refund_request' is not read as 'refund'."""
    best: tuple[int, int, str] | None = None
    for label in labels:
        found = re.search(rf"(?<!\w){re.escape(label)}(?!\w)", answer, re.IGNORECASE)
        if found is not None:
            key = (found.start(), -len(label), label)
            best = key if best is None or key < best else best
    return best[2] if best else None


def scores_by_segment(segments: Mapping[str, str | None],
                      scores: Mapping[str, float]) -> dict[str, Estimate]:
    """Mean score with a bootstrap 95% CI per segment, segments sorted by name.

    Examples without a segment are grouped under ``'(none)'``; segments of examples that have
    no score (a failed call) are skipped, so the counts are of scored examples.
    """
    grouped: dict[str, list[float]] = {}
    for example_id, score in scores.items():
        segment = segments.get(example_id) or NO_SEGMENT
        grouped.setdefault(segment, []).append(float(score))
    return {name: mean_ci(values) for name, values in sorted(grouped.items())}
