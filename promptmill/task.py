"""Examples, dataset loading and deterministic splits.

A :class:`Task` is a named set of examples split into train, validation and test. Splits are a
pure function of the example ids and a seed, so the same data gives the same splits on every
machine and in every run.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DataError

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


def _row_to_example(row: Any, fields: FieldMap, where: str, index: int) -> Example:
    if not isinstance(row, dict):
        raise DataError("expected a JSON object with named fields", where=where,
                        fix='write each line as {"field": value, ...}')
    missing = [f for f in (*fields.inputs, fields.target) if f and f not in row]
    if missing:
        have = ", ".join(sorted(row)) or "none"
        raise DataError(
            f"missing field '{missing[0]}' (fields here: {have})", where=where,
            fix=f"add '{missing[0]}' to this record or map another field to it in the config",
        )
    answers: tuple[str, ...] = ()
    if fields.answers and row.get(fields.answers) is not None:
        raw = row[fields.answers]
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list):
            raise DataError(f"field '{fields.answers}' must be a list of strings", where=where,
                            fix="write the accepted answers as a JSON list")
        answers = tuple(str(a) for a in raw)
    ex_id = str(row[fields.id]) if fields.id and fields.id in row else str(index)
    target = row.get(fields.target) if fields.target else None
    return Example(
        id=ex_id,
        inputs={k: row[k] for k in fields.inputs},
        target=None if target is None else str(target),
        answers=answers,
    )


def iter_examples(path: str | Path, fields: FieldMap | None = None) -> Iterator[Example]:
    """Read examples from a JSONL, JSON or CSV file, naming file and line on any error."""
    path = Path(path)
    fields = fields or FieldMap()
    if not path.exists():
        raise DataError("dataset file not found", where=str(path),
                        fix="check the 'data.path' in the config (relative to the config file)")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        yield from _iter_jsonl(path, fields)
    elif suffix == ".csv":
        yield from _iter_csv(path, fields)
    elif suffix == ".json":
        yield from _iter_json(path, fields)
    else:
        raise DataError(f"unsupported dataset format '{suffix}'", where=str(path),
                        fix="use a .jsonl, .json or .csv file")


def _iter_jsonl(path: Path, fields: FieldMap) -> Iterator[Example]:
    seen: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        index = 0
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"malformed JSON ({exc.msg} at column {exc.colno})", where=where,
                                fix="make this line one complete JSON object") from None
            ex = _row_to_example(row, fields, where, index)
            _check_unique(ex, seen, where)
            index += 1
            yield ex


def _iter_csv(path: Path, fields: FieldMap) -> Iterator[Example]:
    seen: set[str] = set()
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        for index, row in enumerate(reader):
            where = f"{path}:{reader.line_num}"
            if None in row:
                raise DataError("this row has more cells than the header", where=where,
                                fix="quote cells that contain commas")
            short = [k for k, v in row.items() if v is None]
            if short:
                raise DataError(f"this row has no cell for '{short[0]}'", where=where,
                                fix="give every row as many cells as the header")
            if fields.answers and row.get(fields.answers):
                cell = row[fields.answers]
                row[fields.answers] = json.loads(cell) if cell.startswith("[") else cell.split("|")
            ex = _row_to_example(row, fields, where, index)
            _check_unique(ex, seen, where)
            yield ex


def _iter_json(path: Path, fields: FieldMap) -> Iterator[Example]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"malformed JSON ({exc.msg})", where=f"{path}:{exc.lineno}",
                        fix="fix the JSON syntax at that line") from None
    if isinstance(data, dict) and isinstance(data.get("examples"), dict):
        rows = [dict(v, **({} if fields.id else {"_key": k})) for k, v in data["examples"].items()]
    elif isinstance(data, dict) and isinstance(data.get("examples"), list):
        rows = data["examples"]
    elif isinstance(data, list):
        rows = data
    else:
        raise DataError("expected a list of records or {'examples': ...}", where=str(path),
                        fix="store the records as a JSON list, or use JSONL")
    seen: set[str] = set()
    for index, row in enumerate(rows):
        ex = _row_to_example(row, fields, f"{path}: record {index + 1}", index)
        _check_unique(ex, seen, f"{path}: record {index + 1}")
        yield ex


def _check_unique(ex: Example, seen: set[str], where: str) -> None:
    if ex.id in seen:
        raise DataError(f"duplicate example id '{ex.id}'", where=where,
                        fix="give every example a unique id, or drop 'fields.id' to number them")
    seen.add(ex.id)


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
        sizes = sizes or {"train": 0.5, "validation": 0.2, "test": 0.3}
        counts = _resolve_sizes(len(examples), sizes)
        ordered = sorted(examples, key=lambda e: _split_key(seed, e.id))
        a, b = counts["train"], counts["train"] + counts["validation"]
        return cls(name, ordered[:a], ordered[a:b], ordered[b:b + counts["test"]], seed)

    def split(self, name: str) -> list[Example]:
        if name not in SPLITS and name != "all":
            raise DataError(f"unknown split '{name}'", where="--split",
                            fix="use train, validation, test or all")
        if name == "all":
            return [*self.train, *self.validation, *self.test]
        return getattr(self, name)
