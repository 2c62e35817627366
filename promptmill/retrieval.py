"""Text indexes for demo selection and knowledge bases: BM25 (bm25s) and sentence embeddings.

Each index has one job: rank a fixed list of texts against a query. Both kinds share
``build``, ``scores`` (one score per document), ``search``, ``similarity`` (document to
document, for MMR), ``save`` and ``load``, so callers choose a kind by name and never branch.

Design choices:

* BM25 uses bm25s's tokenizer with no stemmer and **no stopword list** by default: demo inputs
  and questions are short, and dropping "not" or "no" from "not good" flips what a query means.
* MMR needs a redundancy term between documents. For embeddings it is the cosine of the
  vectors. For BM25 it is the **Jaccard overlap of token sets**, not doc-to-doc BM25: BM25
  scores are unbounded and asymmetric (a long document scores high against many short ones),
  while Jaccard is symmetric, lies in [0, 1] like the normalised relevance it is traded
  against, and needs nothing beyond the tokens already computed.
* Indexes are plain files (numpy arrays, JSON), never pickles. :func:`get_or_build` keys a
  directory under ``$PROMPTMILL_HOME/indexes`` by the sha256 of (kind, texts, ids, params), so
  an index is built once and every later run loads it.
* Only numpy is imported at module level; bm25s and sentence-transformers load on first use.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .errors import ConfigError, DataError

FORMAT = "promptmill-index"
FORMAT_VERSION = 1
MANIFEST = "index.json"
DOCS = "docs.jsonl"
PACKAGED_MODEL = "all-MiniLM-L6-v2"
RRF_K = 60  # the constant from Cormack et al. (2009); damps the weight of the very top ranks

_ENCODE_LOCK = threading.Lock()  # one torch model shared by evaluation threads


class TextIndex:
    """A ranked view over a fixed list of texts. Subclasses fill in the scoring."""

    kind: ClassVar[str] = ""

    def __init__(self, **params: Any):
        self.params: dict[str, Any] = params
        self.ids: list[str] = []
        self.texts: list[str] = []

    # --- the common surface ----------------------------------------------------------------
    def build(self, texts: Sequence[str], ids: Sequence[str]) -> TextIndex:
        self.ids, self.texts = _checked_docs(texts, ids)
        self._build()
        return self

    def scores(self, query: str) -> np.ndarray:
        """One relevance score per document, aligned with ``ids``."""
        raise NotImplementedError

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """The ``k`` best documents as (id, score), best first; documents scoring 0 are left
        out, so an empty or unrelated query finds nothing rather than arbitrary text."""
        scores = self.scores(query)
        order = np.argsort(-scores, kind="stable")[: max(k, 0)]
        return [(self.ids[i], float(scores[i])) for i in order if scores[i] > 0]

    def similarity(self, rows: Sequence[int]) -> np.ndarray:
        """Document-to-document similarity among ``rows`` (positions in ``ids``), in [0, 1]."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.ids)

    # --- files -----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / DOCS).open("w", encoding="utf-8") as fh:
            for doc_id, text in zip(self.ids, self.texts, strict=True):
                fh.write(json.dumps({"id": doc_id, "text": text}, ensure_ascii=False) + "\n")
        self._save(directory)
        # the manifest goes last: its presence means the directory is complete
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, "kind": self.kind,
                    "params": self.params, "count": len(self.ids)}
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> TextIndex:
        directory = Path(directory)
        manifest = read_manifest(directory)
        if cls.kind and manifest["kind"] != cls.kind:
            raise _bad_index(directory, f"it holds a '{manifest['kind']}' index, "
                                        f"not '{cls.kind}'")
        try:
            index = INDEX_KINDS[manifest["kind"]](**manifest["params"])
        except TypeError as exc:
            raise _bad_index(directory, f"its params do not fit a {manifest['kind']} index "
                                        f"({exc})") from None
        index.ids, index.texts = _read_docs(directory)
        try:
            index._load(directory)
        except (OSError, ValueError, KeyError) as exc:
            raise _bad_index(directory, f"its files cannot be read ({exc})") from None
        if len(index.ids) != manifest["count"]:
            raise _bad_index(directory, "the document count does not match the manifest")
        return index

    # --- for subclasses --------------------------------------------------------------------
    def _build(self) -> None:
        raise NotImplementedError

    def _save(self, directory: Path) -> None:
        raise NotImplementedError

    def _load(self, directory: Path) -> None:
        raise NotImplementedError


class BM25Index(TextIndex):
    """Lexical ranking with bm25s (Lucene BM25), on bm25s's regex tokenizer."""

    kind = "bm25"

    def __init__(self, k1: float = 1.5, b: float = 0.75, stopwords: str | None = None):
        super().__init__(k1=k1, b=b, stopwords=stopwords)
        self._bm25: Any = None
        self._token_sets: list[frozenset[str]] | None = None

    def _build(self) -> None:
        import bm25s

        tokens = self.tokenize(self.texts)
        if not any(tokens):  # no word in any text ('2+2', '!'): bm25s cannot index that
            self._bm25 = None
            return
        self._bm25 = bm25s.BM25(k1=self.params["k1"], b=self.params["b"])
        self._bm25.index(tokens, show_progress=False)

    def tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        # a fresh tokenizer per call: its vocabulary is per-call state we do not want to share
        # between threads; BM25.get_scores maps tokens to ids and skips unknown ones itself
        from bm25s.tokenization import Tokenizer

        tokenizer = Tokenizer(lower=True, stopwords=self.params["stopwords"], stemmer=None)
        tokens = tokenizer.tokenize(list(texts), update_vocab=True, return_as="string",
                                    show_progress=False)
        return [[t for t in doc if t] for doc in tokens]  # bm25s marks empty docs with ""

    def scores(self, query: str) -> np.ndarray:
        tokens = self.tokenize([query])[0] if query and query.strip() else []
        if not tokens or not self.ids or self._bm25 is None:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def similarity(self, rows: Sequence[int]) -> np.ndarray:
        sets = self._sets()
        chosen = [sets[i] for i in rows]
        out = np.eye(len(chosen), dtype=np.float32)
        for a in range(len(chosen)):
            for b in range(a + 1, len(chosen)):
                out[a, b] = out[b, a] = _jaccard(chosen[a], chosen[b])
        return out

    def _sets(self) -> list[frozenset[str]]:
        if self._token_sets is None:  # benign race: two threads compute the same value
            self._token_sets = [frozenset(t) for t in self.tokenize(self.texts)]
        return self._token_sets

    def _save(self, directory: Path) -> None:
        if self._bm25 is None:
            (directory / "bm25-empty").touch()  # every score is 0: nothing else to keep
            return
        self._bm25.save(str(directory / "bm25"), show_progress=False)

    def _load(self, directory: Path) -> None:
        import bm25s

        if (directory / "bm25-empty").is_file():
            self._bm25 = None
            return
        if not (directory / "bm25").is_dir():
            raise OSError("the bm25 folder is missing")
        self._bm25 = bm25s.BM25.load(str(directory / "bm25"), show_progress=False)


class EmbeddingIndex(TextIndex):
    """Meaning ranking: normalised sentence-transformers vectors and a numpy dot product.

    ``model`` is a local sentence-transformers directory; None is the packaged MiniLM.
    """

    kind = "embedding"

    def __init__(self, model: str | None = None):
        super().__init__(model=model)
        self.vectors: np.ndarray = np.zeros((0, 0), dtype=np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        from .metrics.embedding import _encoder

        encoder = _encoder(self.params["model"])
        with _ENCODE_LOCK:
            vectors = encoder.encode(list(texts), normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def _build(self) -> None:
        self.vectors = self.encode(self.texts)

    def scores(self, query: str) -> np.ndarray:
        if not self.ids or not query or not query.strip():
            return np.zeros(len(self.ids), dtype=np.float32)
        return self.vectors @ self.encode([query])[0]

    def similarity(self, rows: Sequence[int]) -> np.ndarray:
        chosen = self.vectors[list(rows)]
        return np.clip(chosen @ chosen.T, 0.0, 1.0)  # opposite meanings are not redundant

    def _save(self, directory: Path) -> None:
        np.save(directory / "vectors.npy", self.vectors, allow_pickle=False)

    def _load(self, directory: Path) -> None:
        self.vectors = np.load(directory / "vectors.npy", allow_pickle=False)
        if self.vectors.shape[0] != len(self.ids):
            raise ValueError("vectors.npy does not have one row per document")


INDEX_KINDS: dict[str, type[TextIndex]] = {"bm25": BM25Index, "embedding": EmbeddingIndex}


def make_index(kind: str, **params: Any) -> TextIndex:
    if kind not in INDEX_KINDS:
        raise ConfigError(f"unknown index kind '{kind}'", where="kind",
                          fix=f"use one of: {', '.join(INDEX_KINDS)}")
    return INDEX_KINDS[kind](**params)


def load_index(directory: str | Path) -> TextIndex:
    """Load an index of any kind from a directory written by ``save``."""
    return TextIndex.load(directory)


# --- the build-once cache ------------------------------------------------------------------

def index_root() -> Path:
    from .paths import home_dir

    return home_dir() / "indexes"


def index_key(kind: str, texts: Sequence[str], ids: Sequence[str],
              params: dict[str, Any]) -> str:
    from .hashing import canonical_json, sha256_hex

    return sha256_hex(canonical_json({"format": FORMAT_VERSION, "kind": kind, "params": params,
                                      "ids": list(ids), "texts": list(texts)}))


def get_or_build(kind: str, texts: Sequence[str], ids: Sequence[str], *,
                 root: str | Path | None = None, **params: Any) -> TextIndex:
    """The index for exactly these texts, ids and params: loaded if built before, else built
    and saved. A damaged cache entry is rebuilt, since the cache is ours, not the user's."""
    index = make_index(kind, **params)
    root = Path(root) if root is not None else index_root()
    target = root / f"{kind}-{index_key(kind, texts, ids, index.params)[:24]}"
    if (target / MANIFEST).is_file():
        try:
            return load_index(target)
        except DataError:
            shutil.rmtree(target, ignore_errors=True)
    index.build(texts, ids)
    _save_atomically(index, root, target)
    return index


def _save_atomically(index: TextIndex, root: Path, target: Path) -> None:
    # write beside the target and rename, so a killed run or a parallel one never leaves a
    # half-written directory under the final name
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    try:
        index.save(staging)
        os.replace(staging, target)
    except OSError:
        if not (target / MANIFEST).is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --- ranking helpers -----------------------------------------------------------------------

def mmr(relevance: np.ndarray, similarity: np.ndarray, k: int, lambda_: float,
        labels: Sequence[Any] | None = None) -> list[int]:
    """Maximal marginal relevance: pick ``k`` positions, each maximising
    ``lambda_ * relevance - (1 - lambda_) * max similarity to those already picked``.

    ``lambda_=1`` is pure relevance. With ``labels``, no label takes more than its share
    (ceil(k / distinct labels)) while another label still has candidates.
    """
    relevance = np.asarray(relevance, dtype=np.float64)
    k = min(k, len(relevance))
    quota = _label_quota(labels, k)
    chosen: list[int] = []
    redundancy = np.zeros(len(relevance))
    counts: dict[Any, int] = {}
    while len(chosen) < k:
        gain = lambda_ * relevance - (1 - lambda_) * redundancy
        gain[chosen] = -np.inf
        best = _best_allowed(gain, labels, counts, quota)
        chosen.append(best)
        if labels is not None:
            counts[labels[best]] = counts.get(labels[best], 0) + 1
        redundancy = np.maximum(redundancy, similarity[best])
    return chosen


def _label_quota(labels: Sequence[Any] | None, k: int) -> int | None:
    if labels is None or k == 0:
        return None
    distinct = len(set(labels))
    return -(-k // distinct)


def _best_allowed(gain: np.ndarray, labels: Sequence[Any] | None, counts: dict[Any, int],
                  quota: int | None) -> int:
    if quota is not None and labels is not None:
        allowed = np.array([counts.get(label, 0) < quota for label in labels])
        masked = np.where(allowed, gain, -np.inf)
        if np.isfinite(masked).any():
            return int(np.argmax(masked))
    return int(np.argmax(gain))  # every label is full or exhausted: fill by gain alone


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> list[
        tuple[str, float]]:
    """Fuse ranked id lists: score(id) = sum over lists of 1 / (k + rank), best first.

    Ranks, not scores, are fused, so BM25's unbounded scores and cosines need no calibration.
    """
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, start=1):
            fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


# --- small helpers -------------------------------------------------------------------------

def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 1.0  # two empty texts are the same text


def _checked_docs(texts: Sequence[str], ids: Sequence[str]) -> tuple[list[str], list[str]]:
    texts, ids = [str(t) for t in texts], [str(i) for i in ids]
    if len(texts) != len(ids):
        raise ConfigError(f"{len(texts)} texts but {len(ids)} ids", where="index build",
                          fix="pass one id per text")
    seen: set[str] = set()
    for doc_id in ids:
        if doc_id in seen:
            raise DataError(f"duplicate document id '{doc_id}'", where="index build",
                            fix="give every document a unique id")
        seen.add(doc_id)
    return ids, texts


def _bad_index(directory: Path, why: str) -> DataError:
    return DataError(f"not a usable promptmill index: {why}", where=str(directory),
                     fix="delete the directory and build the index again "
                         "(retrieval.get_or_build or index.save)")


def read_manifest(directory: Path) -> dict[str, Any]:
    return read_format_manifest(directory, MANIFEST, FORMAT, FORMAT_VERSION, INDEX_KINDS,
                                _bad_index, "a promptmill index manifest")


def read_format_manifest(directory: Path, filename: str, fmt: str, version: int,
                         kinds: Any, bad: Callable[[Path, str], Exception],
                         what: str) -> dict[str, Any]:
    """A saved artefact's JSON manifest, checked for format, kind and version; ``bad`` builds
    the error, so each artefact can say how to rebuild itself."""
    if not directory.is_dir():
        raise bad(directory, "the directory does not exist")
    try:
        manifest = json.loads((directory / filename).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise bad(directory, f"{filename} is missing") from None
    except (OSError, ValueError) as exc:
        raise bad(directory, f"{filename} cannot be read ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != fmt \
            or manifest.get("kind") not in kinds:
        raise bad(directory, f"{filename} is not {what}")
    if manifest.get("version") != version:
        raise bad(directory, f"it has format version {manifest.get('version')}, this "
                             f"promptmill reads version {version}")
    return manifest


def _read_docs(directory: Path) -> tuple[list[str], list[str]]:
    ids, texts = [], []
    try:
        with (directory / DOCS).open(encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                ids.append(str(row["id"]))
                texts.append(str(row["text"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _bad_index(directory, f"{DOCS} cannot be read ({exc})") from None
    return ids, texts
