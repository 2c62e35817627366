"""KnowledgeBase: chunking and stable ids, JSONL records, save/load, errors, KnowledgeContext."""

from __future__ import annotations

import json

import pytest

from promptmill.context.base import Contextualizer, Prepared
from promptmill.context.kb import (
    KnowledgeBase,
    KnowledgeContext,
    Passage,
    split_markdown,
    word_windows,
)
from promptmill.errors import ConfigError, DataError
from promptmill.prompt import Prompt
from promptmill.task import Example

MANUAL = """Welcome to the Frobnicator manual.

# Installing

Run the installer and accept the licence. The frobnicator needs a grounded socket.

```text
# this line is code, not a heading
```

## Cleaning

Wipe the drum with a damp cloth once a week. Never use bleach on the drum.
"""


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    (folder / "policies").mkdir(parents=True)
    (folder / "manual.md").write_text(MANUAL)
    (folder / "policies" / "refunds.txt").write_text(
        "Refunds are paid within 30 days of a return. Opened items get store credit.")
    (folder / "notes.pdf").write_bytes(b"%PDF")  # not text: ignored
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "secret.md").write_text("do not index me")
    return folder


def test_markdown_splits_at_headings_outside_code_fences():
    sections = split_markdown(MANUAL)
    assert [heading for heading, _ in sections] == [None, "Installing", "Cleaning"]
    assert "# this line is code" in sections[1][1]


def test_word_windows_overlap_and_cover_every_word():
    words = [str(i) for i in range(10)]
    windows = list(word_windows(words, 4, 1))
    assert windows == [["0", "1", "2", "3"], ["3", "4", "5", "6"], ["6", "7", "8", "9"]]
    assert list(word_windows(words[:3], 4, 1)) == [["0", "1", "2"]]
    assert list(word_windows([], 4, 1)) == []


def test_folder_chunks_have_stable_readable_ids(docs):
    kb = KnowledgeBase.build(docs)
    ids = [c.id for c in kb.chunks]
    assert ids == ["manual.md#1", "manual.md#2", "manual.md#3", "policies/refunds.txt#1"]
    assert kb.info["files"] == 2
    assert kb.chunks[1].title == "Installing" and kb.chunks[1].text.startswith("Installing\n")
    assert [c.id for c in KnowledgeBase.build(docs).chunks] == ids  # same folder, same ids


def test_long_sections_are_cut_into_overlapping_chunks(tmp_path):
    (tmp_path / "long.txt").write_text(" ".join(f"w{i}" for i in range(25)))
    kb = KnowledgeBase.build(tmp_path, chunk_words=10, overlap=2)
    assert [c.id for c in kb.chunks] == ["long.txt#1", "long.txt#2", "long.txt#3"]
    assert kb.chunks[1].text.split()[:2] == ["w8", "w9"]  # the overlap
    assert kb.chunks[-1].text.split()[-1] == "w24"


def test_query_finds_the_relevant_chunk(docs):
    kb = KnowledgeBase.build(docs)
    found = kb.query("how do I get a refund for a return", 2)
    assert found[0].id == "policies/refunds.txt#1" and isinstance(found[0], Passage)
    assert found[0].score > 0
    assert kb.query("bleach drum", 1)[0].id == "manual.md#3"
    assert kb.query("", 3) == []


def test_save_and_load_round_trip(docs, tmp_path):
    kb = KnowledgeBase.build(docs)
    out = kb.save(tmp_path / "kb")
    manifest = json.loads((out / "kb.json").read_text())
    assert manifest["kind"] == "bm25" and manifest["chunks"] == 4
    again = KnowledgeBase.load(out)
    assert again.chunks == kb.chunks and again.fingerprint == kb.fingerprint
    assert again.query("grounded socket", 1) == kb.query("grounded socket", 1)


def test_jsonl_records_keep_their_ids(tmp_path):
    path = tmp_path / "faq.jsonl"
    rows = [{"id": "faq-1", "text": "Shipping takes five days.", "title": "Shipping"},
            {"id": 2, "text": " ".join(f"w{i}" for i in range(15))}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    kb = KnowledgeBase.build(path, chunk_words=10, overlap=0)
    assert [c.id for c in kb.chunks] == ["faq-1", "2#1", "2#2"]
    assert kb.chunks[0].text == "Shipping\nShipping takes five days."
    assert kb.query("how long is shipping", 1)[0].id == "faq-1"


@pytest.mark.parametrize("line, message", [
    ('{"id": "a", "text": ', "not valid JSON"),
    ('["a", "b"]', "expected a JSON object, got list"),
    ('{"text": "no id"}', "needs an 'id'"),
    ('{"id": "b", "text": ""}', "needs a non-empty string 'text'"),
    ('{"id": "a", "text": "again"}', "duplicate id 'a'"),
    ('{"id": "c", "text": "x", "title": 3}', "'title' that is not a string"),
])
def test_a_bad_jsonl_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "kb.jsonl"
    path.write_text('{"id": "a", "text": "fine"}\n\n' + line + "\n")
    with pytest.raises(DataError, match=message) as info:
        KnowledgeBase.build(path)
    assert f"{path}:3:" in str(info.value) and "Fix:" in str(info.value)


def test_empty_sources_name_the_path(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no .txt or .md files") as info:
        KnowledgeBase.build(empty)
    assert str(empty) in str(info.value)
    (empty / "blank.md").write_text("  \n")
    with pytest.raises(DataError, match="all empty"):
        KnowledgeBase.build(empty)
    (tmp_path / "none.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no records"):
        KnowledgeBase.build(tmp_path / "none.jsonl")
    with pytest.raises(DataError, match="does not exist"):
        KnowledgeBase.build(tmp_path / "missing")
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="not a folder, .jsonl, .txt or .md"):
        KnowledgeBase.build(tmp_path / "data.csv")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        KnowledgeBase.build(tmp_path / "latin1.txt")


def test_bad_build_settings_are_config_errors(docs):
    with pytest.raises(ConfigError, match="unknown knowledge base kind 'sparse'"):
        KnowledgeBase.build(docs, kind="sparse")
    with pytest.raises(ConfigError, match="overlap must be from 0"):
        KnowledgeBase.build(docs, chunk_words=10, overlap=10)
    with pytest.raises(ConfigError, match="chunk_words must be a positive"):
        KnowledgeBase.build(docs, chunk_words=0)


def test_loading_something_that_is_not_a_kb_says_how_to_build_one(docs, tmp_path):
    for target in (docs, tmp_path / "missing"):
        with pytest.raises(DataError, match="not a promptmill knowledge base") as info:
            KnowledgeBase.load(target)
        assert str(target) in str(info.value)
        assert "promptmill kb build" in str(info.value)
    out = KnowledgeBase.build(docs).save(tmp_path / "kb")
    for part in (out / "indexes" / "bm25" / "bm25").iterdir():
        part.unlink()
    with pytest.raises(DataError, match="bm25 index is damaged"):
        KnowledgeBase.load(out)


PROMPT = Prompt(instruction="Answer from the knowledge.", template="Q: {{ question }}",
                context_slots=("knowledge",), name="rag")


def test_knowledge_context_fills_the_slot_with_tagged_passages(docs):
    context = KnowledgeContext(KnowledgeBase.build(docs), k=2)
    assert isinstance(context, Contextualizer)
    example = Example(id="e1", inputs={"question": "can I use bleach on the drum?"})
    prepared = context.prepare(Prepared(PROMPT), example)
    found = prepared.passages["knowledge"]
    assert found[0][0] == "manual.md#3"
    assert prepared.notes[0].startswith("knowledge: knowledge k=2 ids=[manual.md#3")
    text = PROMPT.render_text(example.inputs, prepared.context_values())
    assert "[manual.md#3] Cleaning" in text and text.endswith("Q: can I use bleach on the "
                                                              "drum?\nAnswer:")
    info = context.describe()
    json.dumps(info)
    assert info["slot"] == "knowledge" and info["kb"] == context.kb.fingerprint


def test_knowledge_context_with_no_match_says_so(docs):
    context = KnowledgeContext(KnowledgeBase.build(docs))
    prepared = context.prepare(Prepared(PROMPT), Example(id="e", inputs={"question": "zebra"}))
    assert prepared.passages["knowledge"] == []
    assert prepared.context_values()["knowledge"] == "(no relevant passage found)"
    assert "no passage matched" in prepared.notes[0]


def test_knowledge_context_loads_a_saved_kb_and_uses_query_fields(docs, tmp_path):
    out = KnowledgeBase.build(docs).save(tmp_path / "kb")
    context = KnowledgeContext(out, k=1, query_fields=["topic"])
    example = Example(id="e", inputs={"question": "bleach?", "topic": "refunds return"})
    prepared = context.prepare(Prepared(PROMPT), example)
    assert prepared.passages["knowledge"][0][0] == "policies/refunds.txt#1"
    with pytest.raises(ConfigError, match="query field 'topic' is not an input"):
        context.prepare(Prepared(PROMPT), Example(id="f", inputs={"question": "x"}))


def test_the_prompt_must_declare_the_slot(docs):
    context = KnowledgeContext(KnowledgeBase.build(docs))
    plain = Prompt(template="Q: {{ question }}", name="plain")
    with pytest.raises(ConfigError, match="no context slot 'knowledge'") as info:
        context.prepare(Prepared(plain), Example(id="e", inputs={"question": "x"}))
    assert "prompt plain.context_slots" in str(info.value)
    assert "add 'knowledge' to the prompt's context_slots" in str(info.value)
    with pytest.raises(ConfigError, match="k must be"):
        KnowledgeContext(context.kb, k=0)


@pytest.mark.slow
def test_hybrid_fuses_bm25_and_embeddings(docs, tmp_path):
    pytest.importorskip("sentence_transformers")
    kb = KnowledgeBase.build(docs, kind="hybrid")
    assert set(kb.indexes) == {"bm25", "embedding"}
    # no shared words with the refunds text: only the embedding index can find it
    found = kb.query("money back for things I sent back", 2)
    assert "policies/refunds.txt#1" in [p.id for p in found]
    again = KnowledgeBase.load(kb.save(tmp_path / "kb"))
    assert again.query("bleach drum", 1) == kb.query("bleach drum", 1)
