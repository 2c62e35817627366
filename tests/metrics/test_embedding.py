"""The embedding metric: cosine similarity of sentence embeddings."""

from __future__ import annotations

import pytest
from metric_helpers import ex

from promptmill.errors import ConfigError
from promptmill.metrics import get_metric


@pytest.mark.slow
def test_embedding_ranks_a_paraphrase_above_an_unrelated_sentence():
    pytest.importorskip("sentence_transformers")
    metric = get_metric("embedding")
    example = ex("The cat is sleeping on the sofa.")
    paraphrase = metric.score("A cat naps on the couch.", example)
    unrelated = metric.score("Interest rates rose by half a percent.", example)
    assert 0.0 <= unrelated.value < paraphrase.value <= 1.0
    assert "cosine similarity" in unrelated.feedback
    strict = get_metric("embedding", {"threshold": 0.5})
    assert strict.score("A cat naps on the couch.", example).value == 1.0
    below = strict.score("Interest rates rose by half a percent.", example)
    assert below.value == 0.0 and "below the threshold 0.5" in below.feedback


def test_embedding_threshold_is_checked():
    pytest.importorskip("sentence_transformers")
    with pytest.raises(ConfigError, match="'threshold' must be a number from -1 to 1"):
        get_metric("embedding", {"threshold": 5})
