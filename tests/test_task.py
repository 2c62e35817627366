import json

import pytest
from helpers import write_jsonl

from promptmill.errors import DataError
from promptmill.task import Example, FieldMap, Task, load_examples


def test_jsonl_loads_inputs_target_and_answers(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [
        {"q": "2+2", "a": "4", "alts": ["four"]},
        {"q": "3+3", "a": "6"},
    ])
    examples = load_examples(path, FieldMap(inputs=("q",), target="a", answers="alts"))
    assert examples[0] == Example("0", {"q": "2+2"}, "4", ("four",))
    assert examples[0].accepted == ("4", "four")
    assert examples[1].answers == ()


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"input": "a", "output": "b"}\n\n{"input": "c", "output": \n')
    with pytest.raises(DataError) as err:
        load_examples(path)
    assert f"{path}:3" in str(err.value)
    assert "Fix:" in str(err.value)


def test_missing_field_names_field_line_and_fix(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"input": "a", "output": "b"}, {"input": "c"}])
    with pytest.raises(DataError) as err:
        load_examples(path)
    message = str(err.value)
    assert f"{path}:2" in message and "'output'" in message and "Fix:" in message


def test_csv_with_answers_and_line_numbers(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('input,output,alts\nhello,hi,"hey|yo"\nbye,ciao,\n')
    examples = load_examples(path, FieldMap(answers="alts"))
    assert examples[0].accepted == ("hi", "hey", "yo")
    path.write_text("input,output\nhello\n")
    with pytest.raises(DataError, match=r"d.csv:2"):
        load_examples(path)


def test_json_with_examples_mapping(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"examples": {"1": {"input": "a", "output": "b"},
                                             "2": {"input": "c", "output": "d"}}}))
    assert [e.target for e in load_examples(path)] == ["b", "d"]


def test_duplicate_ids_are_rejected(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"id": 1, "input": "a", "output": "b"},
                                             {"id": 1, "input": "c", "output": "d"}])
    with pytest.raises(DataError, match="duplicate example id"):
        load_examples(path, FieldMap(id="id"))


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_examples(tmp_path / "nope.jsonl")
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(DataError, match="unsupported"):
        load_examples(tmp_path / "d.txt")


def _examples(n):
    return [Example(str(i), {"input": str(i)}, str(i)) for i in range(n)]


def test_splits_are_deterministic_disjoint_and_sized():
    a = Task.from_examples("t", _examples(100), {"train": 0.5, "validation": 0.2, "test": 0.3})
    b = Task.from_examples("t", list(reversed(_examples(100))),
                           {"train": 0.5, "validation": 0.2, "test": 0.3})
    assert [e.id for e in a.test] == [e.id for e in b.test]  # input order does not matter
    assert (len(a.train), len(a.validation), len(a.test)) == (50, 20, 30)
    ids = [e.id for s in (a.train, a.validation, a.test) for e in s]
    assert len(set(ids)) == 100


def test_split_seed_changes_membership_and_counts_work():
    a = Task.from_examples("t", _examples(50), {"train": 10, "validation": 5, "test": 20}, seed=1)
    b = Task.from_examples("t", _examples(50), {"train": 10, "validation": 5, "test": 20}, seed=2)
    assert (len(a.train), len(a.validation), len(a.test)) == (10, 5, 20)
    assert {e.id for e in a.test} != {e.id for e in b.test}


def test_too_few_examples_for_splits_says_how_many():
    with pytest.raises(DataError, match="ask for 30 examples but the data has 10"):
        Task.from_examples("t", _examples(10), {"train": 10, "validation": 10, "test": 10})
