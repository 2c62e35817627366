"""Files made by other people — knowledge bases, indexes, configs — are data, never code.

A knowledge base folder travels between teams like a prompt does. Its arrays are loaded without
pickle, its manifests are checked, and YAML is read with the safe loader, so a crafted file is a
one-line error (exit 2 on the CLI) and never runs anything.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from promptmill.errors import PromptmillError


class _Plant:
    """Unpickling this creates the marker file: proof that a pickle was executed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _pickled_array(path: Path, marker: Path) -> None:
    with path.open("wb") as fh:
        np.lib.format.write_array(fh, np.array([_Plant(marker)], dtype=object),
                                  allow_pickle=True)


def _cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "promptmill.cli.app", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def kb(tmp_path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("The reset button is on the back. Hold it for five seconds.")
    (docs / "b.md").write_text("The warranty lasts two years from the day of purchase.")
    proc = _cli("kb", "build", docs, "--out", tmp_path / "manual.kb", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return tmp_path / "manual.kb"


def _arrays(kb: Path) -> list[Path]:
    found = sorted(kb.rglob("*.npy"))
    assert found, "the knowledge base holds no arrays to tamper with"
    return found


TAMPERING = {
    "pickled-array": lambda kb, marker: _pickled_array(_arrays(kb)[0], marker),
    "every-array-pickled": lambda kb, marker: [_pickled_array(p, marker) for p in _arrays(kb)],
    "raw-pickle-as-array": lambda kb, marker: _arrays(kb)[0].write_bytes(
        pickle.dumps(_Plant(marker))),
    "unknown-index-kind": lambda kb, marker: _edit_json(
        next(kb.rglob("index.json")), kind="__import__('os')"),
    "params-for-another-kind": lambda kb, marker: _edit_json(
        next(kb.rglob("index.json")), params={"model": str(marker)}),
    "manifest-not-json": lambda kb, marker: next(kb.rglob("index.json")).write_text("{"),
    "docs-not-json": lambda kb, marker: next(kb.rglob("docs.jsonl")).write_text("[1, 2\n"),
}


def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_a_tampered_knowledge_base_is_refused_and_runs_nothing(kb, tmp_path, case):
    marker = tmp_path / "PWNED"
    TAMPERING[case](kb, marker)
    proc = _cli("kb", "query", kb, "how do I reset it?", cwd=tmp_path)
    assert not marker.exists()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_pickled_index_array_is_refused_in_process(tmp_path):
    from promptmill.retrieval import BM25Index, load_index

    folder = BM25Index().build(["the cat sat", "a dog ran"], ["a", "b"]).save(tmp_path / "idx")
    marker = tmp_path / "PWNED"
    for path in sorted(folder.rglob("*.npy")):
        _pickled_array(path, marker)
    with pytest.raises(PromptmillError):
        load_index(folder)
    assert not marker.exists()
