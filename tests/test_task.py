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


# --- hostile and broken files: one DataError naming the file, line and fix --------------------

def test_invalid_utf8_names_line_and_byte_offset(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"input": "a", "output": "b"}\n{"input": "\xff", "output": "b"}\n')
    with pytest.raises(DataError) as err:
        load_examples(path)
    assert str(err.value) == (f"{path}:2: not valid UTF-8: byte 0xff at line 2 (byte offset 41)."
                              " Fix: save the file as UTF-8 (in most editors: Save As, encoding "
                              "UTF-8)")


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
def test_a_utf8_bom_is_stripped(tmp_path, suffix):
    rows = [{"id": "x", "input": "a", "output": "b"}, {"id": "y", "input": "c", "output": "d"}]
    body = {".jsonl": "".join(json.dumps(r) + "\n" for r in rows), ".json": json.dumps(rows),
            ".csv": "id,input,output\nx,a,b\ny,c,d\n"}[suffix]
    plain, bom = tmp_path / f"plain{suffix}", tmp_path / f"bom{suffix}"
    plain.write_text(body)
    bom.write_bytes(b"\xef\xbb\xbf" + body.encode())
    fields = FieldMap(id="id")
    assert load_examples(bom, fields) == load_examples(plain, fields)
    assert [e.id for e in load_examples(bom, fields)] == ["x", "y"]


def test_a_utf16_file_is_named_as_such(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("input,output\na,b\n", encoding="utf-16")
    with pytest.raises(DataError, match="this file is UTF-16.*save the file as UTF-8"):
        load_examples(path)


def test_a_directory_is_not_a_dataset_file(tmp_path):
    (tmp_path / "d.jsonl").mkdir()
    with pytest.raises(DataError, match="d.jsonl: this is a directory, not a dataset file"):
        load_examples(tmp_path / "d.jsonl")
    with pytest.raises(DataError, match="this is a directory"):
        load_examples(tmp_path)  # no suffix: still a directory first, not an unknown format


@pytest.mark.parametrize(("name", "body", "message"), [
    ("d.jsonl", "", "d.jsonl has no examples"),
    ("d.jsonl", "\n \n", "d.jsonl has no examples"),
    ("d.json", "[]", "d.json has no examples"),
    ("d.json", '{"examples": {}}', "d.json has no examples"),
    ("d.csv", "", "d.csv has no examples"),
    ("d.csv", "input,output\n", "d.csv has no examples, only a header row"),
])
def test_an_empty_file_says_so(tmp_path, name, body, message):
    (tmp_path / name).write_text(body)
    with pytest.raises(DataError, match=message):
        load_examples(tmp_path / name)


def test_duplicate_id_names_both_lines_and_the_config_key(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"qid": 1, "input": "a", "output": "b"},
                                             {"qid": 2, "input": "c", "output": "d"},
                                             {"qid": 1, "input": "e", "output": "f"}])
    with pytest.raises(DataError) as err:
        load_examples(path, FieldMap(id="qid"))
    message = str(err.value)
    assert f"{path}:3: duplicate example id '1' (first at {path}:1)" in message
    assert "unique 'qid' (the field named by data.id)" in message


@pytest.mark.parametrize(("row", "message"), [
    ({"input": "a", "output": "b"}, "missing field 'qid'.*data.id"),
    ({"qid": None, "input": "a", "output": "b"}, "the id field 'qid' is null"),
    ({"qid": "", "input": "a", "output": "b"}, "the id field 'qid' is empty"),
    ({"qid": [1], "input": "a", "output": "b"}, "the id field 'qid' is a list"),
])
def test_a_configured_id_field_is_required(tmp_path, row, message):
    path = write_jsonl(tmp_path / "d.jsonl", [{"qid": 0, "input": "x", "output": "y"}, row])
    with pytest.raises(DataError, match=message):
        load_examples(path, FieldMap(id="qid"))


def test_csv_cells_up_to_the_limit_load_and_longer_ones_name_the_row(tmp_path, monkeypatch):
    import promptmill.task as task_module

    monkeypatch.setattr(task_module, "MAX_CSV_CELL", 300_000)
    path = tmp_path / "d.csv"
    path.write_text("input,output\nshort,x\n" + "y" * 200_000 + ",z\n")
    assert len(load_examples(path)[1].inputs["input"]) == 200_000  # csv's default is 131,072
    path.write_text("input,output\nshort,x\nshort,x\n" + "y" * 300_001 + ",z\n")
    with pytest.raises(DataError, match=r"d.csv:4: row 3 has a cell longer than the limit of "
                                        r"300,000 characters"):
        load_examples(path)


@pytest.mark.parametrize(("body", "message"), [
    ("[" * 50_000, "nests lists or objects more than 100 deep"),
    ('{"input": ' + "[" * 101 + "]" * 101 + ', "output": "x"}', "more than 100 deep"),
    ('{"input": ' + "1" * 5000 + ', "output": "x"}', "unreadable JSON value"),
    ('["a", "b"]', "expected a JSON object with named fields, not a list"),
])
def test_hostile_json_lines_are_data_errors(tmp_path, body, message):
    path = tmp_path / "d.jsonl"
    path.write_text(body + "\n")
    with pytest.raises(DataError, match=message):
        load_examples(path)


def test_csv_header_and_answer_cells_are_checked(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("input,input,output\na,b,c\n")
    with pytest.raises(DataError, match="d.csv:1: the header names the column 'input' twice"):
        load_examples(path)
    path.write_text('input,output,alts\na,b,"[oops"\n')
    with pytest.raises(DataError, match="the 'alts' cell starts with '\\[' but is not a JSON"):
        load_examples(path, FieldMap(answers="alts"))


def test_json_mapping_values_must_be_records(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"examples": {"first": {"input": "a", "output": "b"},
                                             "second": "not a record"}}))
    with pytest.raises(DataError, match="examples.second: expected a JSON object.*a string"):
        load_examples(path)


def test_an_empty_task_is_refused_before_splitting():
    with pytest.raises(DataError, match="task 't' has no examples"):
        Task.from_examples("t", [])


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_jsonl_line_endings_of_every_platform(tmp_path, newline):
    path = tmp_path / "d.jsonl"
    path.write_bytes(newline.join(['{"input": "a", "output": "b"}', '{"input": "c", "output": "d"}',
                                   '{"input": 1']).encode())
    with pytest.raises(DataError, match=r"d.jsonl:3: malformed JSON"):
        load_examples(path)
