"""Examples, dataset loading and deterministic splits.

A :class:`Task` is a named set of examples split into train, validation and test. Splits are a
pure function of the example ids and a seed, so the same data gives the same splits on every
machine and in every run.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DataError, PromptmillError

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Example:
    """One input with its expected answer(s)."""

    id: str
    inputs: dict[str, Any]
    target: str | None = None
    answers: tuple[str, ...] = ()

    @property
    def accepted(self) -> tuple[str, ...]:
        """Every answer that counts as correct: the target first, then the alternatives."""
        out = [self.target] if self.target is not None else []
        out.extend(a for a in self.answers if a not in out)
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "inputs": self.inputs, "target": self.target,
                "answers": list(self.answers)}


@dataclass(frozen=True)
class FieldMap:
    """Which columns of a dataset are inputs, the target, the alternatives and the id."""

    inputs: tuple[str, ...] = ("input",)
    target: str | None = "output"
    answers: str | None = None
    id: str | None = None


# ---------------------------------------------------------------------------------------------
# Reading user files: one-line errors for every way a path or its bytes can be wrong

MAX_CSV_CELL = 16 * 1024 * 1024  # characters; csv's default of 131,072 rejects long documents
MAX_DEPTH = 100  # nesting of lists and objects in one value; deeper data only breaks later steps

_UTF8_BOM = b"\xef\xbb\xbf"
_OTHER_BOMS = {b"\x00\x00\xfe\xff": "UTF-32", b"\xff\xfe\x00\x00": "UTF-32",
               b"\xfe\xff": "UTF-16", b"\xff\xfe": "UTF-16"}
SAVE_AS_UTF8 = "save the file as UTF-8 (in most editors: Save As, encoding UTF-8)"


def check_user_file(path: Path, *, what: str = "file", missing_fix: str = "check the path",
                    error: type[PromptmillError] = DataError) -> Path:
    """``path`` if it names a regular file, else ``error`` saying what it is instead."""
    where = str(path)
    if "\0" in where:  # the OS cannot open it, and pathlib would only say "not found"
        raise error("the path contains a NUL character", where=where,
                    fix=f"give the plain path of the {what}")
    try:
        exists, is_dir, is_file = path.exists(), path.is_dir(), path.is_file()
    except (OSError, ValueError) as exc:  # e.g. a name too long for the file system
        raise error(f"cannot use this path as a {what} ({exc})", where=_clip(where, 300),
                    fix="give a plain file path") from None
    if not exists:
        raise error(f"{what} not found", where=where, fix=missing_fix)
    if is_dir:
        raise error(f"this is a directory, not a {what}", where=where,
                    fix=f"give the path of the {what} itself, not of its folder")
    if not is_file:
        raise error(f"this is a device, pipe or socket, not a {what}", where=where,
                    fix=f"give the path of an ordinary {what}")
    return path


def read_user_file(path: Path, *, what: str = "file", missing_fix: str = "check the path",
                   error: type[PromptmillError] = DataError) -> bytes:
    """The bytes of a regular file the user named, or ``error`` saying what is wrong."""
    check_user_file(path, what=what, missing_fix=missing_fix, error=error)
    try:
        return path.read_bytes()
    except PermissionError:
        raise error(f"permission denied: cannot read this {what}", where=str(path),
                    fix="make it readable (chmod u+r) or give a copy you can read") from None
    except OSError as exc:
        raise error(f"cannot read this {what} ({exc.strerror or exc})", where=str(path),
                    fix="check the file and the disk it is on") from None


def decode_utf8(data: bytes, path: Path | str, *,
                error: type[PromptmillError] = DataError) -> str:
    """``data`` as text, without a leading UTF-8 byte-order mark; bad bytes name line and offset.

    Editors on Windows write a BOM; kept, it would rename the first CSV column or JSON key.
    """
    for bom, encoding in _OTHER_BOMS.items():
        if data.startswith(bom):
            raise error(f"this file is {encoding} (it starts with a {encoding} byte-order mark)",
                        where=str(path), fix=SAVE_AS_UTF8)
    skipped = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    try:
        return data[skipped:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = skipped + exc.start
        line = data.count(b"\n", 0, offset) + 1
        raise error(f"not valid UTF-8: byte 0x{data[offset]:02x} at line {line} "
                    f"(byte offset {offset})", where=f"{path}:{line}", fix=SAVE_AS_UTF8) from None


def read_user_text(path: Path, *, what: str = "file", missing_fix: str = "check the path",
                   error: type[PromptmillError] = DataError) -> str:
    """A user's UTF-8 text file, checked as :func:`read_user_file` and :func:`decode_utf8` do."""
    data = read_user_file(path, what=what, missing_fix=missing_fix, error=error)
    return decode_utf8(data, path, error=error)


def nesting_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply lists and dicts nest in ``value``, counted up to ``limit + 1`` (no recursion)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            deepest = max(deepest, depth + 1)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _parse_json(text: str, where: str, fix: str) -> Any:
    too_deep = DataError(f"the JSON nests lists or objects more than {MAX_DEPTH} deep",
                         where=where, fix="flatten the record")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"malformed JSON ({exc.msg} at column {exc.colno})", where=where,
                        fix=fix) from None
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise DataError(f"unreadable JSON value ({exc})", where=where,
                        fix="write very long numbers as strings") from None
    brackets = text.count("[") + text.count("{")  # cheap bound: most records skip the walk
    if brackets > MAX_DEPTH and nesting_depth(value) > MAX_DEPTH:
        raise too_deep
    return value


# ---------------------------------------------------------------------------------------------
# Rows to examples


def _row_to_example(row: Any, fields: FieldMap, where: str, index: int) -> Example:
    if not isinstance(row, dict):
        raise DataError(f"expected a JSON object with named fields, not {_kind(row)}",
                        where=where, fix='write each record as {"field": value, ...}')
    wanted = (*fields.inputs, fields.target, fields.id)
    missing = [f for f in wanted if f is not None and f not in row]
    if missing:
        have = _clip(", ".join(sorted(map(str, row))), 200) or "none"
        key = "data.id" if missing[0] == fields.id else "data.input or data.target"
        raise DataError(
            f"missing field '{missing[0]}' (fields here: {have})", where=where,
            fix=f"add '{missing[0]}' to this record or map another field to it with {key} "
                "in the config",
        )
    return Example(
        id=_example_id(row, fields, where, index),
        inputs={k: row[k] for k in fields.inputs},
        target=None if fields.target is None or row[fields.target] is None
        else str(row[fields.target]),
        answers=_answers(row, fields, where),
    )


_KINDS = {dict: "an object", list: "a list", str: "a string", type(None): "null",
          bool: "true/false", int: "a number", float: "a number"}


def _kind(value: Any) -> str:
    """How a JSON value reads in an error message."""
    return _KINDS.get(type(value), type(value).__name__)


def _example_id(row: dict[str, Any], fields: FieldMap, where: str, index: int) -> str:
    if fields.id is None:
        return str(index)
    value = row[fields.id]
    if value is None or value == "" or isinstance(value, dict | list):
        kind = "empty" if value == "" else _kind(value)
        raise DataError(f"the id field '{fields.id}' is {kind}",
                        where=where, fix=f"give every record a unique text or number in "
                                         f"'{fields.id}' (the field named by data.id)")
    return str(value)


def _answers(row: dict[str, Any], fields: FieldMap, where: str) -> tuple[str, ...]:
    if not fields.answers or row.get(fields.answers) is None:
        return ()
    raw = row[fields.answers]
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise DataError(f"field '{fields.answers}' must be a list of strings", where=where,
                        fix="write the accepted answers as a JSON list")
    return tuple(str(a) for a in raw)


class _UniqueIds:
    """Remembers where each id was first seen, so a duplicate names both places."""

    def __init__(self, fields: FieldMap):
        self.fields = fields
        self.first_seen: dict[str, str] = {}

    def check(self, ex: Example, where: str) -> None:
        first = self.first_seen.get(ex.id)
        if first is None:
            self.first_seen[ex.id] = where
            return
        raise DataError(
            f"duplicate example id '{_clip(ex.id)}' (first at {first})", where=where,
            fix=f"give every example a unique '{self.fields.id}' (the field named by data.id), "
                "or remove data.id from the config to number the examples in order")


def _clip(text: str, limit: int = 60) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# The three formats


def iter_examples(path: str | Path, fields: FieldMap | None = None) -> Iterator[Example]:
    """Read examples from a JSONL, JSON or CSV file, naming file and line on any error."""
    path = Path(path)
    fields = fields or FieldMap()
    readers = {".jsonl": _iter_jsonl, ".ndjson": _iter_jsonl, ".csv": _iter_csv,
               ".json": _iter_json}
    missing_fix = "check 'data.path' in the config (relative to the config file)"
    check_user_file(path, what="dataset file", missing_fix=missing_fix)
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"unsupported dataset format '{path.suffix}'", where=str(path),
                        fix="use a .jsonl, .json or .csv file")
    text = read_user_text(path, what="dataset file", missing_fix=missing_fix)
    count = 0
    for example in reader(text, path, fields):
        count += 1
        yield example
    if count == 0:
        raise DataError(f"{path.name} has no examples", where=str(path),
                        fix="add examples to it (a CSV needs rows below its header) or point "
                            "data.path at the right file")


def _iter_jsonl(text: str, path: Path, fields: FieldMap) -> Iterator[Example]:
    ids = _UniqueIds(fields)
    index = 0
    for lineno, line in enumerate(io.StringIO(text, newline=None), start=1):  # \n, \r\n, \r
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        row = _parse_json(line, where, fix="make this line one complete JSON object")
        ex = _row_to_example(row, fields, where, index)
        ids.check(ex, where)
        index += 1
        yield ex


def _iter_csv(text: str, path: Path, fields: FieldMap) -> Iterator[Example]:
    csv.field_size_limit(MAX_CSV_CELL)  # process-wide, and the same for every caller
    reader = csv.DictReader(io.StringIO(text, newline=""))
    _check_header(reader, path)
    ids = _UniqueIds(fields)
    index = -1
    for index, row in enumerate(_csv_rows(reader, path)):
        where = f"{path}:{reader.line_num}"  # the line the row ends on
        if None in row:
            raise DataError("this row has more cells than the header", where=where,
                            fix="quote cells that contain commas")
        short = [k for k, v in row.items() if v is None]
        if short:
            raise DataError(f"this row has no cell for '{short[0]}'", where=where,
                            fix="give every row as many cells as the header")
        if fields.answers and row.get(fields.answers):
            row[fields.answers] = _answers_cell(row[fields.answers], fields.answers, where)
        ex = _row_to_example(row, fields, where, index)
        ids.check(ex, where)
        yield ex
    if index < 0 and reader.fieldnames:
        raise DataError(f"{path.name} has no examples, only a header row", where=str(path),
                        fix="add rows below the header, or point data.path at the right file")


def _csv_rows(reader: csv.DictReader, path: Path) -> Iterator[dict[str, Any]]:
    """The rows of ``reader``; csv's own errors become one line naming the row."""
    for number in itertools.count(1):
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            where = f"{path}:{reader.reader.line_num}"  # DictReader's own count lags on errors
            if "field limit" in str(exc):
                raise DataError(f"row {number} has a cell longer than the limit of "
                                f"{MAX_CSV_CELL:,} characters", where=where,
                                fix="shorten that cell, or keep such long texts in a JSONL "
                                    "file") from None
            raise DataError(f"unreadable CSV ({exc})", where=where,
                            fix="check the quoting on this line") from None
        yield row


def _check_header(reader: csv.DictReader, path: Path) -> None:
    try:
        header = reader.fieldnames or []
    except csv.Error as exc:
        if "field limit" in str(exc):
            raise DataError(f"a header cell is longer than {MAX_CSV_CELL:,} characters",
                            where=f"{path}:1", fix="give the columns short names") from None
        raise DataError(f"unreadable CSV header ({exc})", where=f"{path}:1",
                        fix="check the quoting on the first line") from None
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(f"the header names the column '{_clip(name)}' twice",
                            where=f"{path}:1", fix="give every column a different name")
        seen.add(name)


def _answers_cell(cell: str, column: str, where: str) -> list[Any]:
    if not cell.startswith("["):
        return cell.split("|")
    try:
        value = json.loads(cell)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, list):
        raise DataError(f"the '{column}' cell starts with '[' but is not a JSON list",
                        where=where, fix='write it as ["a", "b"] or as a|b')
    return value


def _iter_json(text: str, path: Path, fields: FieldMap) -> Iterator[Example]:
    data = _parse_json(text, str(path), fix="fix the JSON syntax")
    ids = _UniqueIds(fields)
    for index, (where, row) in enumerate(_json_records(data, path, fields)):
        ex = _row_to_example(row, fields, where, index)
        ids.check(ex, where)
        yield ex


def _json_records(data: Any, path: Path, fields: FieldMap) -> Iterator[tuple[str, Any]]:
    examples = data.get("examples") if isinstance(data, dict) else None
    if isinstance(examples, dict):
        for key, value in examples.items():
            where = f"{path}: examples.{_clip(key)}"
            if not isinstance(value, dict):
                raise DataError(f"expected a JSON object with named fields, not {_kind(value)}",
                                where=where, fix='write each record as {"field": value, ...}')
            yield where, dict(value, **({} if fields.id else {"_key": key}))
    elif isinstance(examples, list) or isinstance(data, list):
        # a dict's "examples" list, or the top-level list itself
        rows = examples if isinstance(examples, list) else data
        for index, row in enumerate(rows):
            yield f"{path}: record {index + 1}", row
    else:
        raise DataError("expected a list of records or {'examples': ...}", where=str(path),
                        fix="store the records as a JSON list, or use JSONL")


def load_examples(path: str | Path, fields: FieldMap | None = None) -> list[Example]:
    return list(iter_examples(path, fields))


def _split_key(seed: int, example_id: str) -> str:
    return hashlib.sha256(f"{seed}:{example_id}".encode()).hexdigest()


def _resolve_sizes(n: int, sizes: dict[str, float | int]) -> dict[str, int]:
    """Turn fractions or counts into counts that add up to at most n."""
    counts: dict[str, int] = {}
    for name in SPLITS:
        value = sizes.get(name, 0) or 0
        is_fraction = isinstance(value, float) and value <= 1
        counts[name] = int(round(value * n)) if is_fraction else int(value)
    total = sum(counts.values())
    fractions = all(isinstance(sizes.get(s, 0), float) for s in SPLITS if sizes.get(s))
    if fractions and total != n and abs(sum(sizes.get(s, 0) or 0 for s in SPLITS) - 1) < 1e-9:
        counts["train"] += n - total  # rounding leftovers go to train
    wanted = sum(counts.values())
    if wanted > n:
        raise DataError(f"the splits ask for {wanted} examples but the data has {n}",
                        where="splits",
                        fix=f"lower the split sizes, or add {wanted - n} examples")
    return counts


@dataclass
class Task:
    """Examples split into train, validation and test."""

    name: str
    train: list[Example] = field(default_factory=list)
    validation: list[Example] = field(default_factory=list)
    test: list[Example] = field(default_factory=list)
    seed: int = 0

    @classmethod
    def from_examples(cls, name: str, examples: Sequence[Example],
                      sizes: dict[str, float | int] | None = None, seed: int = 0) -> Task:
        """Split examples deterministically: the order is a hash of seed and example id."""
        if not examples:
            raise DataError(f"task '{name}' has no examples", where="data",
                            fix="add examples to the dataset file")
        sizes = sizes or {"train": 0.5, "validation": 0.2, "test": 0.3}
        counts = _resolve_sizes(len(examples), sizes)
        ordered = sorted(examples, key=lambda e: _split_key(seed, e.id))
        a, b = counts["train"], counts["train"] + counts["validation"]
        return cls(name, ordered[:a], ordered[a:b], ordered[b:b + counts["test"]], seed)

    def limited(self, n: int) -> Task:
        """The same task with validation and test cut to their first ``n`` examples (train is
        kept: it is where demos and proposals come from)."""
        return Task(self.name, list(self.train), self.validation[:n], self.test[:n], self.seed)

    def split(self, name: str) -> list[Example]:
        if name not in SPLITS and name != "all":
            raise DataError(f"unknown split '{name}'", where="--split",
                            fix="use train, validation, test or all")
        if name == "all":
            return [*self.train, *self.validation, *self.test]
        return getattr(self, name)
