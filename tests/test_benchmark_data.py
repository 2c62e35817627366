"""benchmarks/common.py turns instruction-induction rows into examples as APE does; checked on
a tiny data set written here (the real one stays outside the project)."""

import importlib
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def common(tmp_path, monkeypatch):
    rows = {
        "cause_and_effect": [{"cause": "It rained.", "effect": "The street got wet."}] * 3,
        "common_concept": [{"items": ["guitars", "pendulums"], "concept": "oscillate",
                            "all_common_concepts": ["oscillate", "vibrate"]}],
        "rhymes": [{"input": "cat", "output": "hat", "other_rhymes": ["hat", "mat"]}],
        "antonyms": [{"input": "hot", "output": "cold"}],
    }
    for part in ("induce", "execute"):
        folder = tmp_path / "instruction_induction" / "raw" / part
        folder.mkdir(parents=True)
        for task, examples in rows.items():
            data = {"examples": {str(i + 1): row for i, row in enumerate(examples)}}
            (folder / f"{task}.json").write_text(json.dumps(data))
    monkeypatch.setenv("PROMPTMILL_BENCH_DATA", str(tmp_path))
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    sys.modules.pop("common", None)
    module = importlib.import_module("common")
    yield module
    sys.modules.pop("common", None)


def test_every_task_is_listed_and_scored_as_ape_scores_it(common):
    assert common.ii_tasks() == ["antonyms", "cause_and_effect", "common_concept", "rhymes"]
    assert common.metric_for("common_concept") == "f1"
    assert common.metric_for("taxonomy_animal") == "word_set"
    assert common.metric_for("rhymes") == "contains"
    assert common.metric_for("antonyms") == "exact"


def test_rows_without_one_input_field_are_built_as_ape_builds_them(common):
    (cause,) = common.load_ii("cause_and_effect", "execute")[:1]
    assert cause.target == "It rained."
    assert cause.inputs["input"] in ("Sentence 1: It rained. Sentence 2: The street got wet.",
                                     "Sentence 1: The street got wet. Sentence 2: It rained.")
    # the order is seeded per example: the same on every load
    again = common.load_ii("cause_and_effect", "execute")
    assert [e.inputs for e in again] == [e.inputs for e in common.load_ii("cause_and_effect",
                                                                          "execute")]
    (concept,) = common.load_ii("common_concept", "induce")
    assert concept.inputs == {"input": "guitars, pendulums"}
    assert set(concept.accepted) == {"oscillate", "vibrate"}
    (rhyme,) = common.load_ii("rhymes", "execute")
    assert set(rhyme.accepted) == {"hat", "mat"}
