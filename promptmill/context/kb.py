"""A knowledge base: chunks of the user's documents, indexed, queried per example.

:meth:`KnowledgeBase.build` reads a folder of ``.txt``/``.md`` files or a JSONL file of
``{"id", "text", "title"?}`` records, cuts them into overlapping word windows and indexes the
chunks (BM25, embeddings, or both fused by reciprocal rank). :class:`KnowledgeContext` puts the
best chunks for each example into a prompt's context slot, each tagged with its source id.

Design choices:

* Chunk ids are stable and readable: ``guide/install.md#3`` is the third chunk of that file,
  a JSONL record keeps its own id (``id#2`` when a long record is split). Files are read in
  sorted order, so the same folder always gives the same ids and a citation can be checked.
* Markdown is split at ATX headings (``#`` lines, outside code fences) before it is split by
  words, so a chunk does not straddle two topics; the heading is repeated at the top of each
  of its chunks because it often carries the words a question uses.
* A built knowledge base is a directory of plain files: ``kb.json`` (the manifest, written
  last), ``chunks.jsonl`` and one folder per index.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from ..task import Example
from .base import Prepared

KINDS = ("bm25", "embedding", "hybrid")
TEXT_SUFFIXES = (".txt", ".md", ".markdown")
FORMAT = "promptmill-kb"
FORMAT_VERSION = 1
MANIFEST = "kb.json"
CHUNKS = "chunks.jsonl"
FUSION_DEPTH = 50  # hybrid fuses this many ranks from each index (or 5 * k if larger)

_HEADING = re.compile(r"^ {0,3}#{1,6}(?:\s+(.*?))?\s*#*\s*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_JSONL_FIX = 'write one JSON object per line, like {"id": "faq-1", "text": "..."}'


@dataclass(frozen=True)
class Chunk:
    """A piece of a source document, as indexed."""

    id: str
    text: str
    source: str
    title: str | None = None


@dataclass(frozen=True)
class Passage:
    """A chunk found for a query, with its score (BM25, cosine, or fused reciprocal rank)."""

    id: str
    text: str
    score: float


class KnowledgeBase:
    """Chunks plus their index(es). Build with :meth:`build`, reopen with :meth:`load`."""

    def __init__(self, chunks: Sequence[Chunk], kind: str, indexes: dict[str, Any],
                 info: dict[str, Any]):
        self.chunks = list(chunks)
        self.kind = kind
        self.indexes = indexes
        self.info = info
        self._by_id = {c.id: c for c in self.chunks}

    # --- building --------------------------------------------------------------------------
    @classmethod
    def build(cls, source: str | Path, chunk_words: int = 120, overlap: int = 20,
              kind: str = "bm25", *, model: str | None = None) -> KnowledgeBase:
        """Read ``source`` (folder, .jsonl, .txt or .md), chunk it and index the chunks.

        ``model`` is the embedding model directory for "embedding"/"hybrid" (None: MiniLM).
        """
        _check_build_settings(chunk_words, overlap, kind)
        started = time.perf_counter()
        source = Path(source)
        chunks, files = read_chunks(source, chunk_words, overlap)
        indexes = _build_indexes(chunks, kind, model)
        info = {"source": str(source), "files": files, "chunk_words": chunk_words,
                "overlap": overlap, "model": model,
                "seconds": round(time.perf_counter() - started, 3)}
        return cls(chunks, kind, indexes, info)

    # --- querying --------------------------------------------------------------------------
    def query(self, text: str, k: int = 3) -> list[Passage]:
        """The ``k`` best chunks for ``text``, best first (fewer if few chunks match)."""
        if k < 1:
            return []
        if self.kind == "hybrid":
            from ..retrieval import reciprocal_rank_fusion

            depth = max(FUSION_DEPTH, 5 * k)
            rankings = [[doc_id for doc_id, _ in index.search(text, depth)]
                        for index in self.indexes.values()]
            found = reciprocal_rank_fusion(rankings)[:k]
        else:
            found = self.indexes[self.kind].search(text, k)
        return [Passage(doc_id, self._by_id[doc_id].text, score) for doc_id, score in found]

    @property
    def fingerprint(self) -> str:
        """Changes when any chunk, the chunking or the index kind changes."""
        from ..hashing import canonical_json, sha256_hex

        body = {"kind": self.kind, "model": self.info.get("model"),
                "chunks": [[c.id, c.text] for c in self.chunks]}
        return sha256_hex(canonical_json(body))[:16]

    def __len__(self) -> int:
        return len(self.chunks)

    # --- files -----------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MANIFEST).unlink(missing_ok=True)  # incomplete until rewritten below
        with (directory / CHUNKS).open("w", encoding="utf-8") as fh:
            for chunk in self.chunks:
                fh.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
        shutil.rmtree(directory / "indexes", ignore_errors=True)
        for name, index in self.indexes.items():
            index.save(directory / "indexes" / name)
        manifest = {"format": FORMAT, "version": FORMAT_VERSION, "kind": self.kind,
                    "chunks": len(self.chunks), "fingerprint": self.fingerprint, **self.info}
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> KnowledgeBase:
        directory = Path(directory)
        manifest = _read_manifest(directory)
        chunks = _read_saved_chunks(directory)
        indexes = {name: _load_index(directory, name) for name in _index_names(manifest["kind"])}
        ids = {c.id for c in chunks}
        if any(set(index.ids) != ids for index in indexes.values()):
            raise _not_a_kb(directory, f"its indexes do not match {CHUNKS}")
        info = {key: manifest.get(key) for key in ("source", "files", "chunk_words", "overlap",
                                                    "model", "seconds")}
        return cls(chunks, manifest["kind"], indexes, info)


class KnowledgeContext:
    """A Contextualizer: the ``k`` best chunks for each example go into context slot ``slot``.

    The query is the example's input values (only ``query_fields`` if given), one per line.
    ``kb`` is a :class:`KnowledgeBase` or the directory of a saved one.
    """

    def __init__(self, kb: KnowledgeBase | str | Path, slot: str = "knowledge", k: int = 3,
                 query_fields: Sequence[str] | None = None):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be a whole number of at least 1, not {k!r}",
                              where="knowledge.k", fix="use e.g. k=3")
        self.kb = kb if isinstance(kb, KnowledgeBase) else KnowledgeBase.load(kb)
        self.slot = slot
        self.k = k
        self.query_fields = tuple(query_fields) if query_fields is not None else None

    def prepare(self, prepared: Prepared, example: Example) -> Prepared:
        self._check_slot(prepared)
        found = self.kb.query(self._query(example), self.k)
        prepared.passages[self.slot] = [(p.id, p.text) for p in found]
        ids = ", ".join(p.id for p in found)
        prepared.notes.append(f"knowledge: {self.slot} k={self.k} ids=[{ids}]" if found else
                              f"knowledge: no passage matched for slot '{self.slot}'")
        return prepared

    def describe(self) -> dict[str, Any]:
        return {"contextualizer": "knowledge", "slot": self.slot, "k": self.k,
                "query_fields": list(self.query_fields) if self.query_fields else None,
                "kind": self.kb.kind, "kb": self.kb.fingerprint, "chunks": len(self.kb)}

    def _check_slot(self, prepared: Prepared) -> None:
        prompt = prepared.prompt
        if self.slot not in prompt.context_slots:
            declared = ", ".join(prompt.context_slots) or "none"
            raise ConfigError(f"the prompt has no context slot '{self.slot}' for knowledge "
                              f"passages (declared: {declared})",
                              where=f"prompt {prompt.name or ''}".strip() + ".context_slots",
                              fix=f"add '{self.slot}' to the prompt's context_slots, or pass "
                                  f"slot= one of the declared slots")

    def _query(self, example: Example) -> str:
        if self.query_fields is None:
            values = list(example.inputs.values())
        else:
            missing = [f for f in self.query_fields if f not in example.inputs]
            if missing:
                have = ", ".join(example.inputs) or "none"
                raise ConfigError(f"query field '{missing[0]}' is not an input of example "
                                  f"'{example.id}' (inputs: {have})",
                                  where="knowledge.query_fields",
                                  fix="name input fields of the task, or drop query_fields")
            values = [example.inputs[f] for f in self.query_fields]
        return "\n".join(str(v) for v in values if v is not None)


# --- reading sources ----------------------------------------------------------------------

def read_chunks(source: Path, chunk_words: int = 120,
                overlap: int = 20) -> tuple[list[Chunk], int]:
    """All chunks of ``source`` and the number of files read."""
    if not source.exists():
        raise DataError("the knowledge source does not exist", where=str(source),
                        fix="give a folder of .txt/.md files or a .jsonl file")
    if source.is_file() and source.suffix.lower() == ".jsonl":
        return _jsonl_chunks(source, chunk_words, overlap), 1
    if source.is_file() and source.suffix.lower() in TEXT_SUFFIXES:
        return _file_chunks(source, source.name, chunk_words, overlap), 1
    if source.is_dir():
        return _folder_chunks(source, chunk_words, overlap)
    raise DataError("the knowledge source is not a folder, .jsonl, .txt or .md file",
                    where=str(source), fix="give a folder of .txt/.md files or a .jsonl file")


def _folder_chunks(folder: Path, chunk_words: int, overlap: int) -> tuple[list[Chunk], int]:
    files = sorted((p for p in folder.rglob("*") if _is_text_file(p, folder)),
                   key=lambda p: p.relative_to(folder).as_posix())
    if not files:
        raise DataError("the folder has no .txt or .md files", where=str(folder),
                        fix="add .txt or .md files (subfolders count), or give a .jsonl file")
    chunks = [c for p in files
              for c in _file_chunks(p, p.relative_to(folder).as_posix(), chunk_words, overlap)]
    if not chunks:
        raise DataError(f"the {len(files)} text files in the folder are all empty",
                        where=str(folder), fix="add text to the files")
    return chunks, len(files)


def _is_text_file(path: Path, root: Path) -> bool:
    hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
    return not hidden and path.is_file() and path.suffix.lower() in TEXT_SUFFIXES


def _file_chunks(path: Path, rel: str, chunk_words: int, overlap: int) -> list[Chunk]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError("the file is not UTF-8 text", where=str(path),
                        fix="save it as UTF-8, or remove it from the folder") from None
    markdown = path.suffix.lower() in (".md", ".markdown")
    sections = split_markdown(text) if markdown else [(None, text)]
    chunks: list[Chunk] = []
    for heading, body in sections:
        for words in word_windows(body.split(), chunk_words, overlap):
            piece = " ".join(words)
            chunks.append(Chunk(f"{rel}#{len(chunks) + 1}",
                                f"{heading}\n{piece}" if heading else piece, rel, heading))
    return chunks


def split_markdown(text: str) -> list[tuple[str | None, str]]:
    """(heading, body) sections at ATX headings; '#' lines inside code fences are code."""
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    fence: str | None = None
    for line in text.splitlines():
        marker = _FENCE.match(line)
        if marker and (fence is None or marker.group(1) == fence):
            fence = marker.group(1) if fence is None else None
        heading = None if fence else _HEADING.match(line)
        if heading:
            sections.append(((heading.group(1) or "").strip() or None, []))
        else:
            sections[-1][1].append(line)
    return [(h, "\n".join(lines)) for h, lines in sections if "\n".join(lines).strip()]


def word_windows(words: list[str], size: int, overlap: int) -> Iterator[list[str]]:
    """Windows of ``size`` words, each starting ``size - overlap`` after the previous one;
    the last window ends at the last word, so no window is only overlap."""
    start = 0
    while start < len(words):
        yield words[start:start + size]
        if start + size >= len(words):
            break
        start += size - overlap


def _jsonl_chunks(path: Path, chunk_words: int, overlap: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    seen: set[str] = set()
    for lineno, record in _jsonl_records(path):
        doc_id, text, title = _record_fields(record, f"{path}:{lineno}")
        if doc_id in seen:
            raise DataError(f"duplicate id '{doc_id}'", where=f"{path}:{lineno}",
                            fix="give every record a unique id")
        seen.add(doc_id)
        windows = list(word_windows(text.split(), chunk_words, overlap))
        for n, words in enumerate(windows, start=1):
            chunk_id = doc_id if len(windows) == 1 else f"{doc_id}#{n}"
            piece = " ".join(words)
            chunks.append(Chunk(chunk_id, f"{title}\n{piece}" if title else piece, doc_id,
                                title))
    if not chunks:
        raise DataError("the JSONL file has no records", where=str(path), fix=_JSONL_FIX)
    return chunks


def _jsonl_records(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataError("the file is not UTF-8 text", where=str(path),
                        fix="save it as UTF-8") from None
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"the line is not valid JSON ({exc.msg}, column {exc.colno})",
                            where=f"{path}:{lineno}", fix=_JSONL_FIX) from None


def _record_fields(record: Any, where: str) -> tuple[str, str, str | None]:
    if not isinstance(record, dict):
        raise DataError(f"expected a JSON object, got {type(record).__name__}", where=where,
                        fix=_JSONL_FIX)
    doc_id, text, title = record.get("id"), record.get("text"), record.get("title")
    if isinstance(doc_id, bool) or not isinstance(doc_id, str | int) or str(doc_id) == "":
        raise DataError("the record needs an 'id' (a non-empty string or number)",
                        where=where, fix=_JSONL_FIX)
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"record '{doc_id}' needs a non-empty string 'text'", where=where,
                        fix=_JSONL_FIX)
    if title is not None and not isinstance(title, str):
        raise DataError(f"record '{doc_id}' has a 'title' that is not a string", where=where,
                        fix="make 'title' a string or leave it out")
    return str(doc_id), text, (title.strip() or None) if title else None


# --- indexes and saved files --------------------------------------------------------------

def _index_names(kind: str) -> tuple[str, ...]:
    return ("bm25", "embedding") if kind == "hybrid" else (kind,)


def _build_indexes(chunks: Sequence[Chunk], kind: str, model: str | None) -> dict[str, Any]:
    from ..retrieval import make_index

    texts, ids = [c.text for c in chunks], [c.id for c in chunks]
    indexes = {}
    for name in _index_names(kind):
        params = {"model": model} if name == "embedding" else {}
        indexes[name] = make_index(name, **params).build(texts, ids)
    return indexes


def _check_build_settings(chunk_words: Any, overlap: Any, kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"unknown knowledge base kind '{kind}'", where="--kind",
                          fix=f"use one of: {', '.join(KINDS)}")
    if isinstance(chunk_words, bool) or not isinstance(chunk_words, int) or chunk_words < 1:
        raise ConfigError(f"chunk_words must be a positive whole number, not {chunk_words!r}",
                          where="--chunk-words", fix="use e.g. 120")
    if isinstance(overlap, bool) or not isinstance(overlap, int) \
            or not 0 <= overlap < chunk_words:
        raise ConfigError(f"overlap must be from 0 to chunk_words - 1 ({chunk_words - 1}), "
                          f"not {overlap!r}", where="--overlap",
                          fix="use an overlap smaller than the chunk size, e.g. 20")


def _not_a_kb(directory: Path, why: str) -> DataError:
    return DataError(f"not a promptmill knowledge base: {why}", where=str(directory),
                     fix=f"build one with: promptmill kb build SOURCE --out {directory}")


def _read_manifest(directory: Path) -> dict[str, Any]:
    from ..retrieval import read_format_manifest

    return read_format_manifest(directory, MANIFEST, FORMAT, FORMAT_VERSION, KINDS, _not_a_kb,
                                "a knowledge base manifest")


def _read_saved_chunks(directory: Path) -> list[Chunk]:
    try:
        with (directory / CHUNKS).open(encoding="utf-8") as fh:
            return [Chunk(**json.loads(line)) for line in fh if line.strip()]
    except (OSError, ValueError, TypeError) as exc:
        raise _not_a_kb(directory, f"{CHUNKS} cannot be read ({exc})") from None


def _load_index(directory: Path, name: str) -> Any:
    from ..retrieval import load_index

    try:
        return load_index(directory / "indexes" / name)
    except DataError as exc:
        raise _not_a_kb(directory, f"its {name} index is damaged ({exc.message})") from None
