"""Extraction chosen on data: which rule of :mod:`promptmill.extract` scores best on train.

A small model that knows the answer often wraps it ("The opposite of hot is cold."). Rather than
a fixed rule, :func:`choose_extractor` scores every candidate rule on raw outputs the model gave
for training examples, with the task's own metric, and returns the best one:

- ``first_line`` and ``last_line``;
- ``after:MARKER`` for each marker the outputs themselves use ("Answer:", "Output:");
- ``regex:`` rules from the shapes of the training answers (:mod:`promptmill.shapes`), taking
  the first or the last stretch of the output that has the answers' shape;
- ``label:A|B`` when the answers form a closed set.

Ties go to the simplest rule, and None means no rule beats the raw text. Pure: no model calls.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

from ..extract import extract_answer
from ..metrics.base import Metric, Score
from ..shapes import LINE, infer_shapes
from ..strategies import closed_label_set
from ..task import Example

MetricLike = Metric | Callable[[str, Example], "float | Score"]

MAX_MARKERS = 4  # the markers used by the most outputs
MARKER_SHARE = 0.2  # a marker must appear in this share of the outputs (and in two at least)
SHAPE_RULES = 2  # shapes whose regex rules are tried, most specific first
_MARKER = re.compile(r"(?<![\w:])([A-Za-z]+(?: [A-Za-z]+){0,2}:)(?=\s|$)")
_KIND_ORDER = ("first_line", "last_line", "label", "after", "regex")


def choose_extractor(outputs: Sequence[str | None], targets: Sequence[Example | str],
                     metric: MetricLike, rules: Sequence[str] | None = None) -> str | None:
    """The rule that scores best on these outputs; None if no rule beats the raw text.

    ``targets`` are the training examples the outputs answer (or their target strings);
    ``rules`` replaces the candidates :func:`candidate_rules` would derive.
    """
    examples = _as_examples(targets)
    if len(outputs) != len(examples):
        raise ValueError(f"{len(outputs)} outputs for {len(examples)} targets")
    if not examples:
        return None
    texts = [o or "" for o in outputs]
    scores = score_rules(texts, examples, metric,
                         candidate_rules(texts, examples) if rules is None else rules)
    raw = mean_score(texts, examples, metric, None)
    best = min(scores, key=lambda rule: (-scores[rule], complexity(rule)), default=None)
    return best if best is not None and scores[best] > raw else None


def candidate_rules(outputs: Sequence[str], examples: Sequence[Example]) -> list[str]:
    """The rules worth trying on these outputs, simplest first."""
    rules = ["first_line", "last_line"]
    labels = closed_label_set(examples)
    if labels and not any("|" in x for x in labels):
        rules.append("label:" + "|".join(labels))
    rules += [f"after:{m}" for m in markers(outputs)]
    rules += shape_rules(examples)
    return rules


def markers(outputs: Sequence[str]) -> list[str]:
    """Phrases ending in a colon ("Answer:", "Final answer:") that many outputs use."""
    counts = Counter(m for text in outputs for m in {x.group(1) for x in _MARKER.finditer(text)})
    floor = max(2, MARKER_SHARE * len(outputs))
    common = [(m, n) for m, n in counts.items() if n >= floor]
    return [m for m, _ in sorted(common, key=lambda mn: (-mn[1], mn[0]))[:MAX_MARKERS]]


def shape_rules(examples: Sequence[Example]) -> list[str]:
    """For the most specific shapes with a pattern: its first and its last whole-word match."""
    shapes = [s for s in infer_shapes(examples) if s.pattern is not None and s.kind != LINE]
    rules = []
    for shape in shapes[:SHAPE_RULES]:
        body = rf"(?<!\w)({shape.pattern})(?!\w)"
        rules += [f"regex:{body}", f"regex:.*{body}"]
    return rules


def score_rules(outputs: Sequence[str], examples: Sequence[Example], metric: MetricLike,
                rules: Sequence[str]) -> dict[str, float]:
    """Each rule's mean metric score over the outputs."""
    return {rule: mean_score(outputs, examples, metric, rule) for rule in dict.fromkeys(rules)}


def mean_score(outputs: Sequence[str], examples: Sequence[Example], metric: MetricLike,
               rule: str | None) -> float:
    total = sum(_score(metric, extract_answer(rule, text), ex)
                for text, ex in zip(outputs, examples, strict=True))
    return total / len(examples) if examples else 0.0


def complexity(rule: str) -> tuple[int, int, str]:
    """Simpler first: by kind (lines, labels, markers, regexes), then by length."""
    kind = rule.partition(":")[0]
    order = _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)
    return order, len(rule), rule


def _score(metric: MetricLike, prediction: str, example: Example) -> float:
    result = metric.score(prediction, example) if isinstance(metric, Metric) \
        else metric(prediction, example)
    return float(result.value if isinstance(result, Score) else result)


def _as_examples(targets: Sequence[Example | str]) -> list[Example]:
    return [t if isinstance(t, Example) else Example(f"t{i}", {}, t)
            for i, t in enumerate(targets)]
