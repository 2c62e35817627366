"""Fuzz targets for the loaders of user files: data (JSONL, JSON, CSV), task and prompt YAML.

Each target is a plain function ``fuzz_<name>(data: bytes, tmp_path) -> str``: it writes
``data`` where the loader expects a file, loads it, and returns "loaded" or "rejected". A
:class:`PromptmillError` is a rejection (and must be one line); any other exception escapes,
and that is the bug the fuzzing looks for. ``TARGETS`` maps names to targets and ``SEEDS`` to
valid files to mutate, so tests and ``benchmarks/bench_hardening.py`` run the same cases;
``inputs(name)`` is the Hypothesis strategy of random and mutated files for one target.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from hypothesis import strategies as st

from promptmill.errors import PromptmillError
from promptmill.task import FieldMap, load_examples

FIELDS = FieldMap(inputs=("input",), target="output", answers="answers", id="id")


def _outcome(load: Callable[[], object]) -> str:
    try:
        load()
    except PromptmillError as exc:
        line = exc.one_line()
        assert line and "\n" not in line, f"not one line: {line!r}"
        return "rejected"
    return "loaded"


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = Path(tmp_path) / name
    path.write_bytes(data)
    return path


def fuzz_jsonl(data: bytes, tmp_path) -> str:
    path = _write(tmp_path, "data.jsonl", data)
    return _outcome(lambda: load_examples(path, FIELDS))


def fuzz_json(data: bytes, tmp_path) -> str:
    path = _write(tmp_path, "data.json", data)
    return _outcome(lambda: load_examples(path, FIELDS))


def fuzz_csv(data: bytes, tmp_path) -> str:
    path = _write(tmp_path, "data.csv", data)
    return _outcome(lambda: load_examples(path, FIELDS))


def fuzz_task_yaml(data: bytes, tmp_path) -> str:
    """The whole of loading a task: config, its prompt file, its data and the splits."""
    from promptmill.api import load_task

    _write(tmp_path, "data.jsonl", SEEDS["jsonl"][0])
    _write(tmp_path, "prompt.yaml", SEEDS["prompt_yaml"][0])
    path = _write(tmp_path, "task.yaml", data)
    return _outcome(lambda: load_task(path))


def fuzz_prompt_yaml(data: bytes, tmp_path) -> str:
    """A prompt file, and what loading it for a task does next: hash it, check its variables."""
    from promptmill.api import check_prompt_fields
    from promptmill.config import TaskConfig
    from promptmill.prompt import Prompt

    path = _write(tmp_path, "prompt.yaml", data)
    task = TaskConfig(name="t", data={"path": "data.jsonl", "input": ["input"]})

    def load() -> None:
        prompt = Prompt.from_file(path)
        assert isinstance(prompt.hash, str)
        check_prompt_fields(prompt, task, f"{path}: template")

    return _outcome(load)


TARGETS: dict[str, Callable[[bytes, object], str]] = {
    "jsonl": fuzz_jsonl,
    "json": fuzz_json,
    "csv": fuzz_csv,
    "task_yaml": fuzz_task_yaml,
    "prompt_yaml": fuzz_prompt_yaml,
}

_ROWS = [{"id": "a", "input": "2+2", "output": "4", "answers": ["four"]},
         {"id": "b", "input": "Capital of France?", "output": "Paris"},
         {"id": "c", "input": "ünïcödé ✓", "output": "ok", "answers": []}]

SEEDS: dict[str, list[bytes]] = {
    "jsonl": ["".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _ROWS).encode()],
    "json": [json.dumps(_ROWS, ensure_ascii=False).encode(),
             json.dumps({"examples": _ROWS}).encode()],
    "csv": [b'id,input,output,answers\na,2+2,4,"four|4"\nb,"Capital, of France?",Paris,\n'
            b'c,"say ""hi""",hi,"[""hi"", ""hello""]"\n'],
    "task_yaml": [b"name: t\ndata: {path: data.jsonl, input: input, target: output, id: id}\n"
                  b"splits: {train: 1, validation: 0, test: 2, seed: 3}\nmetric: exact\n"
                  b"model: {name: fake, params: {default: x}}\ngeneration: {max_tokens: 8}\n"
                  b"prompt: prompt.yaml\n",
                  b"name: t\ndata:\n  path: data.jsonl\n  input: [input]\nprompt:\n"
                  b"  instruction: &i Answer.\n  template: '{{ input }}'\n"
                  b"  demos: [{inputs: {input: x}, output: *i}]\n"],
    "prompt_yaml": [b"name: p\ninstruction: Answer briefly.\ntemplate: 'Q: {{ input }}'\n"
                    b"demos:\n  - {inputs: {input: '1+1'}, output: '2'}\n"
                    b"output_format: one word\nmax_tokens: 8\n"],
}

# Bytes that broke loaders before, or are likely to: inserted at random places.
_NASTY = [
    b"\xef\xbb\xbf", b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xff\xfe", b"\r", b"\n",
    b'"', b",", b"{", b"[", b"]", b"}", b":", b"- ", b"&a ", b"*a", b"!!python/object:os.system ",
    b"!!binary ", b"!!set ", b"<<: *a\n", b"? ", b"---\n", b"%YAML 1.1\n", b"\t",
    b"9" * 5000, b"[" * 5000, b"{\"a\":" * 3000, b"- " * 2000, b"1e999", b"NaN", b"-Infinity",
    b"2001-01-01", b"{{ cycler.__init__.__globals__ }}", b"{% for %}", b"x" * 200_000,
]


@st.composite
def _mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "repeat"]))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and data:
            index = min(at, len(data) - 1)
            data[index] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from(_NASTY))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        elif kind == "repeat":
            data[at:at] = data[at:at + draw(st.integers(1, 64))] * draw(st.integers(2, 50))
    return bytes(data)


def _alias_bomb(levels: int = 9) -> bytes:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return ("\n".join(lines) + f"\nname: *a{levels - 1}\n").encode()


_HANDMADE: dict[str, list[bytes]] = {
    "jsonl": [b"", b"\n\n", b"[" * 100_000, b"null\n", b'{"id": "a"}\n',
              b'{"id": ' + b"9" * 5000 + b', "input": "x", "output": "y"}\n'],
    "json": [b"", b"[]", b"{}", b'{"examples": {"a": 1}}', b"[" * 100_000 + b"]" * 100_000],
    "csv": [b"", b"id,input,output\n", b"id,id\n1,2\n", b"id,input,output\na," + b"x" * 200_000
            + b",y\n", b"id,input,output\n\x00,\x00,\x00\n", b'id,input,output\na,"open\n'],
    "task_yaml": [b"", b"- a\n", b"42", b"name: t\nname: u\n", _alias_bomb(),
                  b"a: &a [*a]\n", b"[" * 10_000, b"name: !!python/object/apply:os.system [id]\n",
                  b"name: t\ndata: {path: .}\n", b"name: t\ndata: {path: \"a\\0b\"}\n",
                  b"name: t\ndata: {path: data.jsonl}\nsplits: {train: .nan}\n",
                  b"name: t\ndata: {path: data.jsonl}\nsplits: {seed: " + b"9" * 5000 + b"}\n",
                  b"name: t\ndata: {path: data.jsonl}\nprompt: prompt.yaml/\n"],
    "prompt_yaml": [b"", b"template: 5\n", b"demos: {a: b}\n", b"template: '{{ x '\n",
                    b"extract: 'regex:" + b"(" * 1000 + b"'\n",
                    b"output_spec: {pattern: '" + b"(" * 1000 + b"'}\n",
                    b"demos: [{inputs: {d: 2001-01-01, 1: x}, output: y}]\n",
                    b"template: '" + b"{{ x }}" * 10_000 + b"'\n", _alias_bomb(8)],
}


# Every section of a task config, filled in, for replacing one field at a time.
FULL_TASK: dict = {
    "name": "t",
    "data": {"path": "data.jsonl", "input": ["input"], "target": "output",
             "answers": "answers", "id": "id"},
    "splits": {"train": 1, "validation": 0, "test": 2, "seed": 3},
    "metric": {"name": "exact", "params": {}},
    "model": {"name": "fake", "params": {"default": "x"}, "mode": "chat"},
    "generation": {"max_tokens": 8, "temperature": 0.0, "top_p": 1.0, "seed": 0,
                   "stop": ["\n"], "logprobs": False},
    "prompt": {"instruction": "Answer.", "template": "{{ input }}",
               "demos": [{"inputs": {"input": "1+1"}, "output": "2"}],
               "output_format": "a number", "context_slots": [], "answer_prefix": "A:",
               "output_spec": {"pattern": "[0-9]+"}, "extract": "last_line", "max_tokens": 4,
               "demo_selection": {"method": "bm25", "k": 1, "mmr_lambda": 0.5,
                                  "balance_labels": False}},
    "context": {"situation": {"audience": "kids"}, "demos": {"method": "random", "k": 1},
                "budget": {"max_tokens": 512, "priority": ["demos"]}},
}

WRONG_VALUES: list = [[1, 2], {"k": "v"}, "text", -7, 2.5, None, True, "", "x" * 10_000,
                      10**30, float("nan"), "(" * 1000, "regex:" + "(" * 1000, "{{ x "]


def field_paths(value, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside ``value`` (mappings by key, lists by index)."""
    paths = [prefix] if prefix else []
    children = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, child in children:
        paths.extend(field_paths(child, (*prefix, key)))
    return paths


def replaced(document: dict, path: tuple, new) -> dict:
    """A deep copy of ``document`` with the value at ``path`` replaced by ``new``."""
    copy = json.loads(json.dumps(document))
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new
    return copy


def retyped_yaml(document: dict, path: tuple, new) -> bytes:
    import yaml

    return yaml.safe_dump(replaced(document, path, new), sort_keys=False).encode()


@st.composite
def _retyped(draw: st.DrawFn, document: dict) -> bytes:
    path = draw(st.sampled_from(field_paths(document)))
    return retyped_yaml(document, path, draw(st.sampled_from(WRONG_VALUES)))


_DOCUMENTS = {"task_yaml": FULL_TASK, "prompt_yaml": FULL_TASK["prompt"]}


def inputs(name: str) -> st.SearchStrategy[bytes]:
    """Random bytes, hand-made nasty files and mutated valid files for one target.

    The YAML targets also get valid files with one field of the wrong type or value.
    """
    kinds = [st.binary(max_size=512), st.sampled_from(_HANDMADE[name]), _mutated(SEEDS[name])]
    if name in _DOCUMENTS:
        kinds.append(_retyped(_DOCUMENTS[name]))
    return st.one_of(kinds)


def run_target(name: str, examples: int, tmp_path) -> dict[str, object]:
    """Feed ``examples`` generated files to one target and count what happened (for benchmarks).

    Unlike the tests, an unexpected exception is counted (with the first few shown) instead of
    raised, so one report covers every loader. Repeatable: derandomized, no example database.
    """
    from hypothesis import HealthCheck, given, settings

    counts: dict[str, int] = {"loaded": 0, "rejected": 0, "unexpected": 0}
    failures: list[str] = []

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=inputs(name))
    def feed(data: bytes) -> None:
        try:
            counts[TARGETS[name](data, tmp_path)] += 1
        except Exception as exc:  # counting them is the point
            counts["unexpected"] += 1
            if len(failures) < 5:
                failures.append(f"{type(exc).__name__}: {exc}"[:300])

    feed()
    return {"examples": sum(counts.values()), **counts, "failures": failures}
