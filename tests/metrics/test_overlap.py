"""Overlap metrics: BLEU, chrF, ROUGE."""

from __future__ import annotations

import pytest
from metric_helpers import ex, score

from promptmill.errors import ConfigError
from promptmill.metrics import get_metric


@pytest.mark.parametrize("name", ["bleu", "chrf", "rouge"])
def test_similarity_metrics_rank_closer_outputs_higher(name):
    example = ex("the cat sat on the mat", "a dog barked")
    same = score(name, "the cat sat on the mat", example)
    close = score(name, "the cat sat on a mat", example)
    far = score(name, "stock prices rose sharply today", example)
    assert same.value == pytest.approx(1.0) and same.feedback is None
    assert 0.0 <= far.value < close.value < 1.0
    assert "against the closest reference 'the cat sat on the mat'" in close.feedback


def test_rouge_variants():
    assert score("rouge", "cat mat", ex("the cat on the mat"), variant="rouge2").value == 0.0
    with pytest.raises(ConfigError, match="unknown ROUGE variant 'rougeX'"):
        get_metric("rouge", {"variant": "rougeX"})
