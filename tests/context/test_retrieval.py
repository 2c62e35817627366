"""Text indexes: BM25 ranking, MMR, rank fusion, the build-once cache and damaged directories."""

from __future__ import annotations

import json

import numpy as np
import pytest

from promptmill import retrieval
from promptmill.errors import ConfigError, DataError
from promptmill.retrieval import (
    BM25Index,
    EmbeddingIndex,
    get_or_build,
    load_index,
    mmr,
    reciprocal_rank_fusion,
)

DOCS = ["the cat sat on the mat", "dogs bark loudly at night",
        "stock markets fell sharply today", "a kitten sleeps on a warm mat"]
IDS = ["cat", "dog", "stocks", "kitten"]


def bm25() -> BM25Index:
    return BM25Index().build(DOCS, IDS)


def test_bm25_returns_the_nearest_document_first():
    found = bm25().search("where did the cat sit", 2)
    assert found[0][0] == "cat"
    assert all(score > 0 for _, score in found)


def test_bm25_keeps_stopwords_by_default():
    # "not" carries the meaning of a short input; an English stopword list would drop it
    index = BM25Index().build(["good film", "not good"], ["a", "b"])
    assert index.search("not", 1) == [("b", pytest.approx(index.scores("not")[1]))]


def test_empty_and_unrelated_queries_find_nothing():
    index = bm25()
    assert index.search("", 3) == []
    assert index.search("   ", 3) == []
    assert index.search("zebra quantum", 3) == []
    assert index.scores("").tolist() == [0.0] * 4


def test_a_corpus_of_one_document():
    index = BM25Index().build(["only one document here"], ["one"])
    assert index.search("document", 5) == [("one", pytest.approx(index.scores("document")[0]))]
    assert index.similarity([0]).tolist() == [[1.0]]


def test_build_rejects_mismatched_or_duplicate_ids():
    with pytest.raises(ConfigError, match="2 texts but 1 ids"):
        BM25Index().build(["a", "b"], ["x"])
    with pytest.raises(DataError, match="duplicate document id 'x'"):
        BM25Index().build(["a", "b"], ["x", "x"])


def test_bm25_similarity_is_token_jaccard():
    index = BM25Index().build(["red apple pie", "red apple tart", "blue sky"], ["a", "b", "c"])
    sim = index.similarity([0, 1, 2])
    assert sim[0, 1] == pytest.approx(2 / 4)  # {red, apple} of {red, apple, pie, tart}
    assert sim[0, 2] == 0.0
    assert np.allclose(sim, sim.T) and np.allclose(np.diag(sim), 1.0)


def test_mmr_prefers_a_diverse_document_over_a_near_duplicate():
    relevance = np.array([1.0, 0.95, 0.6])
    similarity = np.array([[1.0, 0.98, 0.1], [0.98, 1.0, 0.1], [0.1, 0.1, 1.0]])
    assert mmr(relevance, similarity, 2, lambda_=0.5) == [0, 2]
    assert mmr(relevance, similarity, 2, lambda_=1.0) == [0, 1]  # pure relevance


def test_mmr_label_quota_spreads_picks_over_labels():
    relevance = np.array([0.9, 0.8, 0.7, 0.1])
    labels = ["pos", "pos", "pos", "neg"]
    picks = mmr(relevance, np.eye(4), 2, 1.0, labels)
    assert sorted(labels[i] for i in picks) == ["neg", "pos"]
    # a label with too few members leaves its share to the others instead of stopping short
    assert len(mmr(relevance, np.eye(4), 4, 1.0, labels)) == 4


def test_reciprocal_rank_fusion_rewards_agreement():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "a", "d"]])
    assert [doc for doc, _ in fused][:2] in (["a", "b"], ["b", "a"])
    assert fused[-1][0] in ("c", "d")
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_save_and_load_round_trip(tmp_path):
    index = bm25()
    index.save(tmp_path / "idx")
    again = load_index(tmp_path / "idx")
    assert isinstance(again, BM25Index)
    assert again.ids == IDS and again.texts == DOCS
    assert again.search("cat mat", 4) == index.search("cat mat", 4)


def test_get_or_build_builds_once_then_loads(tmp_path, monkeypatch):
    builds = []
    original = BM25Index._build

    def counting(self):
        builds.append(1)
        original(self)

    monkeypatch.setattr(BM25Index, "_build", counting)
    first = get_or_build("bm25", DOCS, IDS, root=tmp_path)
    second = get_or_build("bm25", DOCS, IDS, root=tmp_path)
    assert len(builds) == 1
    assert second.search("cat", 1) == first.search("cat", 1)
    get_or_build("bm25", DOCS[:3], IDS[:3], root=tmp_path)  # other texts: another index
    assert len(builds) == 2
    assert len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == 2


def test_get_or_build_defaults_to_promptmill_home(isolated_home):
    get_or_build("bm25", DOCS, IDS)
    assert len(list((isolated_home / "indexes").glob("bm25-*/index.json"))) == 1


def test_get_or_build_rebuilds_a_damaged_cache_entry(tmp_path):
    get_or_build("bm25", DOCS, IDS, root=tmp_path)
    (entry,) = tmp_path.glob("bm25-*")
    (entry / "docs.jsonl").write_text("{broken\n")
    assert get_or_build("bm25", DOCS, IDS, root=tmp_path).search("cat", 1)[0][0] == "cat"


def test_loading_a_missing_or_damaged_directory_names_the_path_and_fix(tmp_path):
    with pytest.raises(DataError, match="does not exist") as info:
        load_index(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value) and "Fix:" in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="index.json is missing"):
        load_index(tmp_path / "empty")
    bm25().save(tmp_path / "idx")
    (tmp_path / "idx" / "index.json").write_text("not json")
    with pytest.raises(DataError, match="index.json cannot be read"):
        load_index(tmp_path / "idx")
    bm25().save(tmp_path / "idx2")
    for part in (tmp_path / "idx2" / "bm25").iterdir():
        part.unlink()
    with pytest.raises(DataError, match="its files cannot be read"):
        load_index(tmp_path / "idx2")


def test_loading_the_wrong_kind_is_an_error(tmp_path):
    bm25().save(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert manifest["kind"] == "bm25"
    with pytest.raises(DataError, match="holds a 'bm25' index, not 'embedding'"):
        EmbeddingIndex.load(tmp_path / "idx")


def test_unknown_kind_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown index kind 'tfidf'"):
        retrieval.make_index("tfidf")


@pytest.mark.slow
def test_embedding_index_ranks_by_meaning_and_persists(tmp_path):
    pytest.importorskip("sentence_transformers")
    texts = ["A cat naps on the couch.", "Interest rates rose by half a percent.",
             "The central bank raised borrowing costs."]
    index = get_or_build("embedding", texts, ["cat", "rates", "bank"], root=tmp_path)
    assert index.search("The kitten is sleeping on the sofa.", 1)[0][0] == "cat"
    assert index.vectors.shape[0] == 3
    assert np.allclose(np.linalg.norm(index.vectors, axis=1), 1.0, atol=1e-5)
    sim = index.similarity([0, 1, 2])
    assert sim[1, 2] > sim[0, 1]  # the two finance sentences are the redundant pair
    again = load_index(next(tmp_path.glob("embedding-*")))
    assert np.allclose(again.vectors, index.vectors)
    assert index.search("", 3) == []


def test_bm25_over_texts_without_words_finds_nothing_and_survives_a_save(tmp_path):
    from promptmill.retrieval import BM25Index, load_index

    index = BM25Index().build(["2+2", "3+3", "!"], ["a", "b", "c"])
    assert index.search("2+2", 2) == []
    index.save(tmp_path / "idx")
    assert load_index(tmp_path / "idx").search("anything", 3) == []
