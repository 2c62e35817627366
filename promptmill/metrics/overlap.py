"""Graded n-gram overlap with the closest accepted answer: BLEU, chrF (sacrebleu), ROUGE.

sacrebleu and rouge_score are imported when a metric is built, not when this module is.
"""

from __future__ import annotations

import re
from abc import abstractmethod

from ..errors import ConfigError
from ..task import Example
from .base import NO_REFERENCE, Metric, Score, clamp, quote


class _ReferenceSimilarity(Metric):
    """A graded similarity to the closest accepted answer, with that answer in the feedback."""

    label = "similarity"

    @abstractmethod
    def similarity(self, prediction: str, reference: str) -> float:
        """Similarity in [0, 1] between a prediction and one reference."""

    def score(self, prediction: str, example: Example) -> Score:
        if not example.accepted:
            return NO_REFERENCE
        value, reference = max(((clamp(self.similarity(prediction, ref)), ref)
                                for ref in example.accepted), key=lambda item: item[0])
        if value >= 1.0:
            return Score(1.0)
        return Score(value, f"{self.label} {value:.2f} against the closest reference "
                            f"{quote(reference)}; got {quote(prediction)}")


class Bleu(_ReferenceSimilarity):
    """Sentence BLEU (sacrebleu, exponential smoothing), scaled to [0, 1]."""

    name = "bleu"
    label = "BLEU"

    def __init__(self, lowercase: bool = False, tokenize: str | None = None):
        from sacrebleu.metrics import BLEU

        try:
            # effective_order is what sentence_bleu uses: short sentences are not zeroed.
            self._bleu = BLEU(lowercase=lowercase, tokenize=tokenize, effective_order=True)
        except Exception as exc:  # sacrebleu raises several types for bad options
            raise ConfigError(f"bad BLEU options ({exc})", where="metric.params",
                              fix="use tokenize: 13a, intl, char, none, zh or ja-mecab") from None

    def similarity(self, prediction: str, reference: str) -> float:
        return self._bleu.sentence_score(prediction, [reference]).score / 100


class ChrF(_ReferenceSimilarity):
    """Sentence chrF (sacrebleu), scaled to [0, 1]; ``word_order: 2`` gives chrF++."""

    name = "chrf"
    label = "chrF"

    def __init__(self, word_order: int = 0):
        from sacrebleu.metrics import CHRF

        if word_order not in (0, 1, 2):
            raise ConfigError(f"'word_order' must be 0, 1 or 2, not {word_order!r}",
                              where="metric.params.word_order", fix="use 2 for chrF++")
        self._chrf = CHRF(word_order=word_order)

    def similarity(self, prediction: str, reference: str) -> float:
        return self._chrf.sentence_score(prediction, [reference]).score / 100


_ROUGE_VARIANT = re.compile(r"rouge([1-9]|L|Lsum)")


class Rouge(_ReferenceSimilarity):
    """ROUGE F-measure (rouge_score). Its tokenizer keeps only a-z and 0-9: English text only."""

    name = "rouge"

    def __init__(self, variant: str = "rougeL", use_stemmer: bool = True):
        from rouge_score import rouge_scorer

        if not isinstance(variant, str) or not _ROUGE_VARIANT.fullmatch(variant):
            raise ConfigError(f"unknown ROUGE variant {variant!r}",
                              where="metric.params.variant",
                              fix="use rouge1, rouge2, rougeL or rougeLsum")
        self.variant = variant
        self.label = variant
        self._scorer = rouge_scorer.RougeScorer([variant], use_stemmer=use_stemmer)

    def describe(self) -> str:
        return f"rouge({self.variant})"

    def similarity(self, prediction: str, reference: str) -> float:
        return self._scorer.score(reference, prediction)[self.variant].fmeasure
