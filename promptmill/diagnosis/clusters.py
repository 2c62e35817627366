"""Groups of similar failed inputs, so one fix can target many failures at once.

TF-IDF over words (scikit-learn) by default, MiniLM sentence embeddings on request. The number
of clusters is picked by silhouette on a sample, which keeps a 10,000-failure run fast.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .data import Row

MAX_CLUSTERS = 8
SILHOUETTE_SAMPLE = 1000
FIT_SAMPLE = 2000  # k and centroids come from a sample; every failure is then assigned
MIN_ROWS = 6


@dataclass
class Cluster:
    size: int
    share: float
    terms: list[str]
    main_category: str
    categories: dict[str, int]
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _vectors(texts: list[str], method: str):
    if method == "embedding":
        from ..retrieval import EmbeddingIndex  # the packaged MiniLM, loaded on first use

        return EmbeddingIndex().encode(texts), None
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=1, max_features=5000,
                                 token_pattern=r"(?u)\b\w+\b")
    try:
        return vectorizer.fit_transform(texts), vectorizer
    except ValueError:  # no tokens at all
        return None, None


def _pick_k(matrix, n: int, seed: int) -> tuple[int, np.ndarray]:
    """Best k by silhouette, fitted on a sample so a 10,000-failure run stays fast."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(n, FIT_SAMPLE), replace=False))
    fit_on = matrix[sample]
    best = (-2.0, None)
    for k in range(2, min(MAX_CLUSTERS, len(sample) // 3) + 1):
        model = KMeans(n_clusters=k, random_state=seed, n_init=1, max_iter=100).fit(fit_on)
        if len(set(model.labels_)) < 2:
            continue
        score = silhouette_score(fit_on, model.labels_,
                                 sample_size=min(SILHOUETTE_SAMPLE, len(sample)),
                                 random_state=seed)
        if score > best[0]:
            best = (score, model)
    if best[1] is None:
        return 1, np.zeros(n, dtype=int)
    return best[1].n_clusters, best[1].predict(matrix)


def _terms(matrix, members: np.ndarray, vectorizer, top: int = 5) -> list[str]:
    if vectorizer is None:
        return []
    centroid = np.asarray(matrix[members].mean(axis=0)).ravel()
    names = vectorizer.get_feature_names_out()
    return [names[i] for i in centroid.argsort()[::-1][:top] if centroid[i] > 0]


def _representatives(matrix, members: np.ndarray, rows: list[Row], count: int = 3):
    block = matrix[members]
    centroid = np.asarray(block.mean(axis=0)).ravel()
    sims = np.asarray(block @ centroid).ravel()
    return [rows[members[i]] for i in sims.argsort()[::-1][:count]]


def cluster_failures(failures: list[Row], method: str = "tfidf", seed: int = 0
                     ) -> list[Cluster]:
    """Clusters of failed inputs, largest first; empty when there are too few to group."""
    if len(failures) < MIN_ROWS:
        return []
    matrix, vectorizer = _vectors([r.input_text for r in failures], method)
    if matrix is None:
        return []
    k, labels = _pick_k(matrix, len(failures), seed)
    if k < 2:
        return []
    clusters = []
    for label in range(k):
        members = np.flatnonzero(labels == label)
        if not len(members):
            continue
        cats = Counter(failures[i].category for i in members)
        reps = _representatives(matrix, members, failures)
        clusters.append(Cluster(
            size=len(members), share=len(members) / len(failures),
            terms=_terms(matrix, members, vectorizer), main_category=cats.most_common(1)[0][0],
            categories=dict(cats.most_common()),
            examples=[example_view(r) for r in reps]))
    return sorted(clusters, key=lambda c: -c.size)


def example_view(row: Row) -> dict[str, Any]:
    """What a report shows of one example."""
    return {"example_id": row.example_id, "input": row.input_text, "target": row.target,
            "output": row.output, "raw_output": row.raw_output if row.raw_output != row.output
            else None, "score": row.score, "category": row.category, "why": row.why}
