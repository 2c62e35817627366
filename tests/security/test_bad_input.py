"""Hostile or broken input through the real CLI: one line on stderr, exit 2, never a traceback.

Every case runs ``promptmill.cli.app.main`` (the console script) on a task folder that one
broken file spoils, and checks the exact message: it names the file, line or field and the fix.
One parametrized id per attack case, so a benchmark can count the cases of this category.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from helpers import run_main_streams

from promptmill.cli.app import main

SRC = str(Path(__file__).resolve().parents[2])


def run_cli(args: list, capsys) -> tuple[int, str, str]:
    """``promptmill ARGS`` in this process, through main(): exit status, stdout, stderr."""
    return run_main_streams(args, capsys)


def one_error_line(code: int, out: str, err: str, status: int = 2) -> str:
    """The single 'error: ...' line on stderr, after checking status and the absence of noise."""
    assert code == status, (code, out, err)
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    return lines[0]


# --- building blocks for the cases ------------------------------------------------------------

def edit_config(task: Path, **changes) -> None:
    config = yaml.safe_load(task.read_text())
    config.update(changes)
    task.write_text(yaml.safe_dump(config))


def data_rows(task: Path) -> list[dict]:
    return [json.loads(line) for line in (task.parent / "data.jsonl").read_text().splitlines()]


def use_data(task: Path, name: str, content: bytes) -> None:
    (task.parent / name).write_bytes(content)
    config = yaml.safe_load(task.read_text())
    config["data"]["path"] = name
    task.write_text(yaml.safe_dump(config))


def as_csv(rows: list[dict], columns: tuple[str, ...] = ("id", "country", "capital")) -> bytes:
    lines = [",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def metric_returning(body: str) -> Callable[[Path], list]:
    def setup(task: Path) -> list:
        (task.parent / "my_metric.py").write_text(
            f"import math, sys\n\nclass Stop(BaseException):\n    pass\n\n"
            f"def score(prediction, example):\n    {body}\n")
        edit_config(task, metric="python:my_metric.py:score")
        return ["eval", task]
    return setup


def broken_data(name: str, content: Callable[[list[dict]], bytes]) -> Callable[[Path], list]:
    def setup(task: Path) -> list:
        use_data(task, name, content(data_rows(task)))
        return ["eval", task]
    return setup


def broken_config(text: bytes) -> Callable[[Path], list]:
    def setup(task: Path) -> list:
        task.write_bytes(text)
        return ["eval", task]
    return setup


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def _with_bad_byte(rows: list[dict]) -> bytes:
    return jsonl(rows[:12]).replace(b'"Chile"', b'"Ch\xffle"')


def _prompt_file_bad_utf8(task: Path) -> list:
    (task.parent / "p.yaml").write_bytes(b"instruction: Capital?\ntemplate: '{{ country }}'\n"
                                         b"output_format: \xc3(\n")
    edit_config(task, prompt="p.yaml")
    return ["eval", task]


def _prompt_option_bad_utf8(task: Path) -> list:
    (task.parent / "other.yaml").write_bytes(b"instruction: \xfe\ntemplate: '{{ country }}'\n")
    return ["eval", task, "--prompt", task.parent / "other.yaml"]


def _directory(kind: str) -> Callable[[Path], list]:
    def setup(task: Path) -> list:
        folder = task.parent
        if kind == "data":
            (folder / "data.jsonl").unlink()
            (folder / "data.jsonl").mkdir()
        elif kind == "config":
            (folder / "tasks.yaml").mkdir()
            return ["eval", folder / "tasks.yaml"]
        elif kind == "prompt_in_config":
            (folder / "prompts.yaml").mkdir()
            edit_config(task, prompt="prompts.yaml")
        elif kind == "prompt_option":
            (folder / "prompts").mkdir()
            return ["eval", task, "--prompt", folder / "prompts"]
        elif kind == "metric_file":
            (folder / "metric.py").mkdir()
            edit_config(task, metric="python:metric.py:score")
        elif kind == "schema_file":
            (folder / "schema.json").mkdir()
            edit_config(task, metric={"name": "json_schema", "params": {"schema": "schema.json"}})
        return ["eval", task]
    return setup


def _duplicate_id(rows: list[dict]) -> bytes:
    rows[5]["id"] = "c3"
    return jsonl(rows)


def _missing_id(rows: list[dict]) -> bytes:
    del rows[4]["id"]
    return jsonl(rows)


def _null_id(rows: list[dict]) -> bytes:
    rows[2]["id"] = None
    return jsonl(rows)


def _huge_cell(rows: list[dict]) -> bytes:
    data = as_csv(rows).splitlines(keepends=True)
    data[2] = b"c1," + b"x" * (17 * 1024 * 1024) + b",Tokyo\n"
    return b"".join(data)


def _answers_cell_not_json(task: Path) -> list:
    use_data(task, "data.csv",
             b'id,country,capital,alts\nc0,France,Paris,"[Paris, ""Paname"""\n')
    config = yaml.safe_load(task.read_text())
    config["data"]["answers"] = "alts"
    task.write_text(yaml.safe_dump(config))
    return ["eval", task]


def _nul_in_path(task: Path) -> list:
    task.write_text(task.read_text().replace("path: data.jsonl", 'path: "data\\0.jsonl"'))
    return ["eval", task]


def _escape_in_path(task: Path) -> list:
    """A path that would retitle the user's terminal if printed as it is."""
    task.write_text(task.read_text().replace("path: data.jsonl",
                                             'path: "data\\e]0;pwned\\a.jsonl"'))
    return ["eval", task]


def _markup_in_path(task: Path) -> list:
    edit_config(task, data={"path": "data[/red][bold].jsonl", "input": ["country"],
                            "target": "capital", "id": "id"})
    return ["eval", task]


def _alias_bomb() -> bytes:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return ("\n".join(lines) + "\nname: t\ndata: {path: data.jsonl}\nmodel: {name: fake, "
            "params: {default: *a8}}\n").encode()


GOOD_HEAD = b"name: t\ndata: {path: data.jsonl, input: country, target: capital, id: id}\n"

# id: (how to spoil the task folder, fragments the one error line must contain)
CASES: dict[str, tuple[Callable[[Path], list], list[str]]] = {
    # invalid UTF-8, in every kind of file
    "jsonl_invalid_utf8": (broken_data("data.jsonl", _with_bad_byte),
                           ["data.jsonl:12", "not valid UTF-8: byte 0xff at line 12",
                            "Fix: save the file as UTF-8"]),
    "json_invalid_utf8": (broken_data("data.json", lambda rows: json.dumps(rows).encode()
                                      .replace(b"Oslo", b"Os\x80lo")),
                          ["data.json:1", "not valid UTF-8: byte 0x80", "save the file as UTF-8"]),
    "csv_invalid_utf8": (broken_data("data.csv", lambda rows: as_csv(rows).replace(
        b"Peru", b"P\xe9ru")), ["data.csv:8", "not valid UTF-8: byte 0xe9 at line 8"]),
    "csv_utf16": (broken_data("data.csv", lambda rows: as_csv(rows).decode().encode("utf-16")),
                  ["data.csv", "this file is UTF-16", "save the file as UTF-8"]),
    "task_yaml_invalid_utf8": (broken_config(GOOD_HEAD + b"metric: ex\xe4ct\n"),
                               ["task.yaml:3", "not valid UTF-8: byte 0xe4 at line 3"]),
    "prompt_yaml_invalid_utf8": (_prompt_file_bad_utf8,
                                 ["p.yaml:3", "not valid UTF-8: byte 0xc3 at line 3"]),
    "prompt_option_invalid_utf8": (_prompt_option_bad_utf8,
                                   ["other.yaml:1", "not valid UTF-8: byte 0xfe"]),
    # a directory where a file is expected
    "data_path_is_directory": (_directory("data"),
                               ["data.jsonl: this is a directory, not a dataset file"]),
    "task_config_is_directory": (_directory("config"),
                                 ["tasks.yaml: this is a directory, not a task config"]),
    "prompt_in_config_is_directory": (_directory("prompt_in_config"),
                                      ["prompts.yaml: this is a directory, not a prompt file"]),
    "prompt_option_is_directory": (_directory("prompt_option"),
                                   ["prompts: this is a directory, not a prompt file"]),
    "metric_file_is_directory": (_directory("metric_file"),
                                 ["metric.py: this is a directory, not a metric file"]),
    "schema_file_is_directory": (_directory("schema_file"),
                                 ["schema.json: this is a directory, not a JSON schema file"]),
    "data_path_with_nul": (_nul_in_path,
                           ["data\\x00.jsonl", "the path contains a NUL character"]),
    "terminal_escape_in_path": (_escape_in_path,
                                ["data\\x1b]0;pwned\\x07.jsonl: dataset file not found"]),
    # CSV cells
    "csv_cell_over_limit": (broken_data("data.csv", _huge_cell),
                            ["data.csv:3", "row 2 has a cell longer than the limit of "
                             "16,777,216 characters"]),
    "csv_duplicate_column": (broken_data("data.csv", lambda rows: b"id,country,country\n"
                                         + as_csv(rows).split(b"\n", 1)[1]),
                             ["data.csv:1", "the header names the column 'country' twice"]),
    "csv_answers_cell_not_json": (_answers_cell_not_json, [
        "data.csv:2", "the 'alts' cell starts with '[' but is not a JSON list"]),
    # empty files
    "jsonl_empty": (broken_data("data.jsonl", lambda rows: b""),
                    ["data.jsonl has no examples"]),
    "jsonl_blank_lines_only": (broken_data("data.jsonl", lambda rows: b"\n  \n\r\n"),
                               ["data.jsonl has no examples"]),
    "json_empty_list": (broken_data("data.json", lambda rows: b"[]"),
                        ["data.json has no examples"]),
    "csv_header_only": (broken_data("data.csv", lambda rows: b"id,country,capital\n"),
                        ["data.csv has no examples, only a header row"]),
    "csv_empty": (broken_data("data.csv", lambda rows: b""), ["data.csv has no examples"]),
    # ids
    "duplicate_id": (broken_data("data.jsonl", _duplicate_id),
                     ["data.jsonl:6", "duplicate example id 'c3' (first at", "data.jsonl:4",
                      "the field named by data.id"]),
    "missing_id": (broken_data("data.jsonl", _missing_id),
                   ["data.jsonl:5", "missing field 'id'", "data.id"]),
    "null_id": (broken_data("data.jsonl", _null_id),
                ["data.jsonl:3", "the id field 'id' is null", "data.id"]),
    # hostile JSON
    "jsonl_deep_nesting": (broken_data("data.jsonl", lambda rows: jsonl(rows[:3]) + b"[" * 50_000
                                       + b"\n"), ["data.jsonl:4", "nests lists or objects"]),
    "json_deep_nesting": (broken_data("data.json", lambda rows: b'{"examples": ' + b"[" * 200
                                      + b"]" * 200 + b"}"), ["data.json", "more than 100 deep"]),
    "jsonl_huge_integer": (broken_data("data.jsonl", lambda rows: b'{"id": 1' + b"0" * 5000
                                       + b', "country": "x", "capital": "y"}\n'),
                           ["data.jsonl:1", "unreadable JSON value", "4300 digits"]),
    "jsonl_record_not_an_object": (broken_data("data.jsonl", lambda rows: b'["c0", "France"]\n'),
                                   ["data.jsonl:1", "expected a JSON object", "not a list"]),
    # metrics
    "metric_above_one": (metric_returning("return 1.5"),
                         ["my_metric.py:score", "returned the score 1.5, outside [0, 1]",
                          "for example 'c"]),
    "metric_negative": (metric_returning("return -0.25"),
                        ["returned the score -0.25, outside [0, 1]"]),
    "metric_nan": (metric_returning("return math.nan"), ["returned the score nan for example"]),
    "metric_inf": (metric_returning("return (math.inf, 'great')"),
                   ["returned the score inf for example"]),
    "metric_not_a_number": (metric_returning("return 'yes'"),
                            ["my_metric.py:score", "the metric function returned 'yes'"]),
    "metric_sys_exit": (metric_returning("sys.exit(3)"),
                        ["my_metric.py:score", "the metric function called sys.exit(3)"]),
    "metric_sys_exit_zero": (metric_returning("sys.exit(0)"),
                             ["the metric function called sys.exit(0)"]),
    "metric_base_exception": (metric_returning("raise Stop('halt')"),
                              ["the metric function raised Stop: halt"]),
    "metric_exits_on_import": (lambda task: ((task.parent / "exits.py").write_text(
        "import sys\nsys.exit('no')\n"), edit_config(task, metric="python:exits.py:f"),
        ["eval", task])[-1], ["exits.py", "it called sys.exit('no')"]),
    # hostile YAML
    "yaml_python_tag": (broken_config(GOOD_HEAD + b"metric: !!python/object/apply:os.system "
                                                  b"['touch pwned']\n"),
                        ["task.yaml:3", "invalid YAML", "no !!python or custom tags"]),
    "yaml_python_name_tag": (broken_config(b"name: !!python/name:os.system\n"),
                             ["task.yaml:1", "no !!python or custom tags"]),
    "yaml_binary_tag": (broken_config(GOOD_HEAD + b"prompt: {instruction: !!binary aGk=}\n"),
                        ["task.yaml:3", "does not hold plain data"]),
    "yaml_alias_bomb": (broken_config(_alias_bomb()),
                        ["task.yaml", "anchors and aliases expand this YAML"]),
    "yaml_recursive_alias": (broken_config(GOOD_HEAD + b"model: {name: fake, params: &p "
                                                       b"{a: *p}}\n"),
                             ["task.yaml:3", "recursive anchor"]),
    "yaml_deep_nesting": (broken_config(b"name: " + b"[" * 5000 + b"]" * 5000 + b"\n"),
                          ["task.yaml", "nests more than 100 levels"]),
    "yaml_huge_integer": (broken_config(GOOD_HEAD + b"splits: {seed: 1" + b"0" * 5000 + b"}\n"),
                          ["task.yaml", "unreadable YAML value"]),
    "yaml_top_level_list": (broken_config(b"- name: t\n- data: x\n"),
                            ["task.yaml", "expected a mapping of settings (found a list)"]),
    "yaml_top_level_scalar": (broken_config(b"just text\n"),
                              ["expected a mapping of settings (found a string)"]),
    "yaml_empty_file": (broken_config(b""), ["expected a mapping of settings (the file is empty)"]),
    "yaml_two_documents": (broken_config(GOOD_HEAD + b"---\nname: u\n"),
                           ["task.yaml:3", "invalid YAML (but found another document)"]),
    "yaml_nul_character": (broken_config(GOOD_HEAD + b"metric: exa\x00ct\n"),
                           ["task.yaml:3", "unacceptable character #x0000"]),
    "yaml_wrong_type": (broken_config(GOOD_HEAD + b"generation:\n  max_tokens: [1, 2]\n"),
                        ["task.yaml:4", "field 'generation.max_tokens'", "got a list"]),
    "yaml_split_not_a_number": (broken_config(GOOD_HEAD + b"splits: {test: .nan}\n"),
                                ["task.yaml:3", "field 'splits.test'", "(got nan)"]),
    "yaml_negative_split": (broken_config(GOOD_HEAD + b"splits: {train: -3}\n"),
                            ["task.yaml:3", "field 'splits.train'", "greater than or equal to 0"]),
    "yaml_list_for_text": (broken_config(b"name: [2001-01-01]\ndata: {path: data.jsonl}\n"),
                          ["task.yaml:1", "field 'name'", "valid string"]),
    # the message itself must survive printing
    "rich_markup_in_path": (_markup_in_path, ["data[/red][bold].jsonl", "dataset file not found"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(case, capitals_task, sqlite_url, capsys):
    setup, fragments = CASES[case]
    args = setup(capitals_task)
    line = one_error_line(*run_cli(["--db", sqlite_url, *args], capsys))
    for fragment in fragments:
        assert fragment in line, line
    assert "Fix:" in line
    if "no examples" in line:
        assert "split" not in line  # an empty file is not a split-size problem


def test_unreadable_file_says_permission_denied(capitals_task, sqlite_url, capsys, monkeypatch):
    data = capitals_task.parent / "data.jsonl"
    if os.geteuid() == 0:  # root reads anything: make the read fail the way chmod 000 would
        real = Path.read_bytes

        def read_bytes(self):
            if self == data:
                raise PermissionError(13, "Permission denied", str(self))
            return real(self)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
    else:
        data.chmod(0)
    line = one_error_line(*run_cli(["--db", sqlite_url, "eval", capitals_task], capsys))
    assert "data.jsonl: permission denied: cannot read this dataset file" in line


# --- a UTF-8 BOM is stripped: same columns, same ids, same splits ------------------------------

@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
@pytest.mark.parametrize("with_id", [True, False])
def test_a_bom_changes_nothing(fmt, with_id, capitals_task):
    from promptmill.api import load_task

    rows = data_rows(capitals_task)
    # The first column is the one a BOM would rename: the id, or else an input field.
    columns = ("id", "country", "capital") if with_id else ("country", "capital", "id")
    content = {"jsonl": jsonl(rows), "json": json.dumps(rows).encode(),
               "csv": as_csv(rows, columns)}[fmt]
    config = yaml.safe_load(capitals_task.read_text())
    config["splits"] = {"train": 0.5, "validation": 0.25, "test": 0.25, "seed": 7}
    if not with_id:
        del config["data"]["id"]
    splits = []
    for name, body in ((f"plain.{fmt}", content), (f"bom.{fmt}", b"\xef\xbb\xbf" + content)):
        (capitals_task.parent / name).write_bytes(body)
        config["data"]["path"] = name
        capitals_task.write_text(yaml.safe_dump(config))
        _, task = load_task(capitals_task)
        splits.append({s: [(e.id, e.inputs, e.target) for e in task.split(s)]
                       for s in ("train", "validation", "test")})
    assert splits[0] == splits[1]
    assert len(splits[0]["train"]) == 6


def test_a_csv_cell_above_the_default_csv_limit_loads(tmp_path):
    from promptmill.task import load_examples

    path = tmp_path / "long.csv"
    path.write_text("input,output\n" + "x" * 200_000 + ",y\n")
    assert load_examples(path)[0].inputs["input"] == "x" * 200_000


# --- the last line of defence in main() -------------------------------------------------------

def _stored_run(capitals_task, sqlite_url, capsys) -> None:
    code, out, err = run_cli(["--db", sqlite_url, "eval", capitals_task, "-q"], capsys)
    assert code == 0, out + err


def test_os_error_that_escapes_a_command_names_the_file(capitals_task, sqlite_url, capsys,
                                                        tmp_path):
    _stored_run(capitals_task, sqlite_url, capsys)
    (tmp_path / "out.jsonl").mkdir()
    line = one_error_line(*run_cli(["--db", sqlite_url, "export", "1", "-o",
                                    tmp_path / "out.jsonl"], capsys))
    assert f"{tmp_path / 'out.jsonl'}: this is a directory, not a file" in line
    line = one_error_line(*run_cli(["--db", sqlite_url, "export", "1", "-o",
                                    tmp_path / "missing" / "out.jsonl"], capsys))
    assert "missing/out.jsonl: no such file or folder. Fix: check the path" in line


def test_undecodable_file_that_escapes_a_command_names_the_file(sqlite_url, capsys, tmp_path):
    bad = tmp_path / "exported.json"
    bad.write_bytes(b'{"format": "promptmill-prompt", "name": "caf\xe9"}')
    line = one_error_line(*run_cli(["--db", sqlite_url, "prompts", "import", bad], capsys))
    assert "exported.json" in line and "UTF-8" in line


def _escaping(kind: str, folder: Path) -> Callable[[object], object]:
    """A stand-in for a loader with a bug: it lets a low-level error escape while reading."""
    bad = folder / f"escaped.{kind}"
    bad.write_bytes({"yaml": b"a: [1\n", "json": b'{"a": ', "utf8": b"caf\xe9",
                     "csv": b'a,"b\n'}.get(kind, b""))

    def load(config):
        import csv

        if kind == "permission":
            raise PermissionError(13, "Permission denied", str(bad))
        if kind == "directory":
            raise IsADirectoryError(21, "Is a directory", str(folder))
        if kind == "missing":
            return (folder / "gone.txt").read_text()
        with bad.open(encoding="utf-8", newline="") as handle:
            if kind == "yaml":
                return yaml.safe_load(handle)
            if kind == "json":
                return json.load(handle)
            if kind == "csv":
                return list(csv.reader(handle, strict=True))
            return handle.read()
    return load


@pytest.mark.parametrize(("kind", "fragments"), [
    ("permission", ["escaped.permission: permission denied", "check the file's permissions"]),
    ("directory", [": this is a directory, not a file", "give the path of a file inside it"]),
    ("missing", ["gone.txt: no such file or folder", "check the path"]),
    ("utf8", ["escaped.utf8: not valid UTF-8 (byte offset 3)", "save the file as UTF-8"]),
    ("yaml", ["escaped.yaml:2: invalid YAML", "check indentation and quoting"]),
    ("json", ["escaped.json: malformed JSON", "correct the JSON"]),
    ("csv", ["escaped.csv: unreadable CSV", "check the quoting"]),
])
def test_file_errors_that_escape_a_command_are_one_line_exit_2(kind, fragments, capitals_task,
                                                              sqlite_url, capsys, monkeypatch):
    import promptmill.api

    monkeypatch.setattr(promptmill.api, "load_task", _escaping(kind, capitals_task.parent))
    line = one_error_line(*run_cli(["--db", sqlite_url, "eval", capitals_task], capsys))
    assert "internal error" not in line
    for fragment in fragments:
        assert fragment in line, line


def test_unexpected_error_is_one_line_exit_1_and_debug_shows_the_traceback(
        capitals_task, sqlite_url, capsys, monkeypatch):
    import promptmill.api

    def broken(config):
        raise RuntimeError("a bug in promptmill")

    monkeypatch.setattr(promptmill.api, "load_task", broken)
    monkeypatch.delenv("PROMPTMILL_DEBUG", raising=False)
    line = one_error_line(*run_cli(["--db", sqlite_url, "eval", capitals_task], capsys),
                          status=1)
    assert line == ("error: internal error: RuntimeError: a bug in promptmill — please report "
                    "it; set PROMPTMILL_DEBUG=1 for the traceback")
    monkeypatch.setenv("PROMPTMILL_DEBUG", "1")
    sys.argv, old = ["promptmill", "--db", sqlite_url, "eval", str(capitals_task)], sys.argv
    try:
        with pytest.raises(RuntimeError, match="a bug in promptmill"):
            main()
    finally:
        sys.argv = old


# --- the same through a real process: what a user sees -----------------------------------------

def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PROMPTMILL_DEBUG"}
    return {**env, "PYTHONPATH": SRC, **extra}


def _promptmill(args: list, cwd: Path) -> subprocess.CompletedProcess:
    code = "import sys; from promptmill.cli.app import main; sys.argv[0] = 'promptmill'; main()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=_environment(), timeout=120)


@pytest.mark.parametrize("case", ["jsonl_invalid_utf8", "metric_sys_exit", "yaml_alias_bomb"])
def test_bad_input_in_a_real_process(case, capitals_task, sqlite_url):
    setup, fragments = CASES[case]
    args = setup(capitals_task)
    done = _promptmill(["--db", sqlite_url, *args], capitals_task.parent)
    line = one_error_line(done.returncode, done.stdout, done.stderr)
    assert all(fragment in line for fragment in fragments), line


def test_internal_error_in_a_real_process(tmp_path):
    code = ("import sys\nfrom promptmill.cli import common\n"
            "def boom(cls): raise KeyError('oops')\n"
            "common.State.store = classmethod(boom)\n"
            "from promptmill.cli.app import main\nsys.argv = ['promptmill', 'runs']\nmain()\n")
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=_environment(), cwd=tmp_path, timeout=120)
    line = one_error_line(quiet.returncode, quiet.stdout, quiet.stderr, status=1)
    assert "internal error: KeyError: 'oops' — please report it" in line
    loud = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_environment(PROMPTMILL_DEBUG="1"), cwd=tmp_path, timeout=120)
    assert loud.returncode == 1 and "Traceback" in loud.stderr and "KeyError" in loud.stderr
