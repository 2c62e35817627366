"""Loading a suite, resolving its prompts to NAME@VERSION, and every bad input found before a call.

Each bad input is one line naming the file and line, with a fix; through the CLI it exits 2.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
from helpers import run_main_streams

from promptmill.errors import ConfigError, PromptmillError
from promptmill.prompt import Prompt
from promptmill.suites.load import check_suite, is_promptfoo, load_suite, resolve_prompts

# the line numbers below are this text's: tests point at them
SUITE = """\
name: capitals
prompts:
  - name: ask
    instruction: Name the capital city.
    template: "Country: {{ country }}"
models:
  - spec: fake
    params: {answers: {France: Paris}, default: "I do not know"}
defaultTest:
  assert:
    - type: not-contains
      value: "I do not know"
tests:
  - id: france
    vars: {country: France}
    assert:
      - type: contains
        value: Paris
  - id: japan
    vars:
      country: Japan
    assert:
      - type: icontains
        value: tokyo
"""


def write(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load_and_check(path: Path, store) -> None:
    suite = load_suite(path)
    check_suite(suite, resolve_prompts(suite, store))


def bad_input(path: Path, store) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_and_check(path, store)
    error = info.value
    assert "\n" not in error.one_line() and error.fix, error.one_line()
    return error


# --- loading --------------------------------------------------------------------------------
def test_a_native_suite_loads_with_its_default_test_merged(tmp_path):
    path = write(tmp_path, SUITE)
    suite = load_suite(path)
    assert suite.name == "capitals" and suite.source == str(path)
    assert suite.base_dir == tmp_path
    assert [suite.case_id(i) for i in range(2)] == ["france", "japan"]
    merged = suite.merged(1)
    assert [a.type for a in merged.assertions] == ["not-contains", "icontains"]
    assert merged.vars == {"country": "Japan"}
    assert suite.models[0].params["answers"] == {"France": "Paris"}


def test_a_promptfoo_config_goes_to_the_promptfoo_loader(tmp_path, monkeypatch):
    seen = []
    stub = types.ModuleType("promptmill.suites.promptfoo")
    stub.load_promptfoo = lambda path: seen.append(path) or "a suite"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "promptmill.suites.promptfoo", stub)
    by_key = write(tmp_path, "providers: [openai:chat:x]\nprompts: [hi]\n", "any.yaml")
    by_name = write(tmp_path, "prompts: [hi]\n", "promptfooconfig.yaml")
    assert load_suite(by_key) == load_suite(by_name) == "a suite"
    assert seen == [by_key, by_name]
    assert not is_promptfoo(tmp_path / "suite.yaml", {"models": ["fake"]})


def test_inline_file_and_stored_prompts_are_labelled_name_at_version(tmp_path, store):
    (tmp_path / "prompts").mkdir()
    file_prompt = tmp_path / "prompts" / "short.yaml"
    Prompt(instruction="Be short.", template="{{ country }}").to_file(file_prompt)
    stored = Prompt(instruction="Stored.", template="{{ country }}")
    store.save_prompt("kept", Prompt(template="old {{ country }}").content(), "h0")
    row = store.save_prompt("kept", stored.content(), stored.hash)
    store.tag_prompt("kept", row["version"], "production")
    text = SUITE.replace("""  - name: ask
    instruction: Name the capital city.
    template: "Country: {{ country }}"
""", """  - prompts/short.yaml
  - kept@production
  - template: "{{ country }}?"
  - label: shown
    template: "{{ country }}!"
""")
    suite = load_suite(write(tmp_path, text))
    resolved = resolve_prompts(suite, store)
    assert [label for label, _ in resolved] == ["short@1", "kept@2", "capitals-3@1", "shown@1"]
    assert resolved[1][1].instruction == "Stored." and resolved[0][1].name == "short"
    assert [label for label, _ in resolve_prompts(suite, store)][0] == "short@1"  # same content
    Prompt(instruction="Be shorter.", template="{{ country }}").to_file(file_prompt)
    assert resolve_prompts(suite, store)[0][0] == "short@2"  # changed content: a new version


def test_a_good_suite_passes_the_checks(tmp_path, store):
    load_and_check(write(tmp_path, SUITE), store)


# --- bad input: one line, file:line, a fix --------------------------------------------------
def test_an_unknown_assertion_type_names_its_line(tmp_path, store):
    error = bad_input(write(tmp_path, SUITE.replace("type: icontains", "type: icontain")), store)
    assert error.where == f"{tmp_path / 'suite.yaml'}:23" and "icontain" in error.message


def test_a_case_var_no_template_uses_names_the_var_line(tmp_path, store):
    text = SUITE.replace("      country: Japan\n", "      country: Japan\n      contry: Japan\n")
    error = bad_input(write(tmp_path, text), store)
    assert error.where == f"{tmp_path / 'suite.yaml'}:22"
    assert "'contry'" in error.message and "country" in error.message  # what templates use


def test_a_default_test_var_no_template_uses_names_the_default_test(tmp_path, store):
    text = SUITE.replace("defaultTest:\n", "defaultTest:\n  vars: {language: fr}\n")
    error = bad_input(write(tmp_path, text), store)
    assert error.where == f"{tmp_path / 'suite.yaml'}:10" and "'language'" in error.message


def test_a_var_used_only_by_an_assertion_is_used(tmp_path, store):
    text = SUITE.replace("      country: Japan\n", "      country: Japan\n      city: Tokyo\n"
                         ).replace("value: tokyo", "value: '{{ city }}'")
    load_and_check(write(tmp_path, text), store)


def test_a_template_var_a_case_lacks_names_the_case(tmp_path, store):
    text = SUITE.replace('"Country: {{ country }}"', '"{{ country }} in {{ language }}"')
    error = bad_input(write(tmp_path, text), store)
    assert error.where == f"{tmp_path / 'suite.yaml'}:14"
    assert "ask@1" in error.message and "'language'" in error.message and "france" in \
        error.message


def test_a_missing_prompt_file_names_the_prompt_line(tmp_path, store):
    text = SUITE.replace("""  - name: ask
    instruction: Name the capital city.
    template: "Country: {{ country }}"
""", "  - prompts/missing.yaml\n")
    error = bad_input(write(tmp_path, text), store)
    assert error.where == f"{tmp_path / 'suite.yaml'}:3" and "missing.yaml" in error.message


def test_a_stored_prompt_that_does_not_exist_names_the_prompt_line(tmp_path, store):
    text = SUITE.replace("""  - name: ask
    instruction: Name the capital city.
    template: "Country: {{ country }}"
""", "  - nosuch@production\n")
    error = bad_input(write(tmp_path, text), store)
    assert error.where == f"{tmp_path / 'suite.yaml'}:3" and "nosuch@production" in \
        error.message


def test_a_missing_python_check_file_names_the_assertion_line(tmp_path, store):
    text = SUITE.replace("type: icontains\n        value: tokyo",
                         "type: python:checks.py:is_tokyo")
    error = bad_input(write(tmp_path, text), store)
    assert error.where == f"{tmp_path / 'suite.yaml'}:23" and "checks.py" in error.message
    (tmp_path / "checks.py").write_text("def is_tokyo(output, example):\n    return 1.0\n")
    load_and_check(tmp_path / "suite.yaml", store)  # the file exists: no complaint


def test_a_missing_file_value_names_the_assertion_line(tmp_path, store):
    text = SUITE.replace("type: contains\n        value: Paris",
                         "type: json-schema\n        value: file://schema.json")
    error = bad_input(write(tmp_path, text), store)
    assert error.where == f"{tmp_path / 'suite.yaml'}:17" and "schema.json" in error.message


def test_a_threshold_outside_0_1_names_its_line(tmp_path, store):
    text = SUITE.replace("  - id: japan\n", "  - id: japan\n    threshold: 1.5\n")
    error = bad_input(write(tmp_path, text), store)
    assert error.where == f"{tmp_path / 'suite.yaml'}:20" and "threshold" in error.message


def test_an_unknown_model_names_the_model_line(tmp_path, store):
    error = bad_input(write(tmp_path, SUITE.replace("spec: fake", "spec: fakemodel")), store)
    assert error.where == f"{tmp_path / 'suite.yaml'}:7" and "fakemodel" in error.message
    assert "embedded" in error.fix


def test_two_cases_with_one_id_name_the_second(tmp_path, store):
    error = bad_input(write(tmp_path, SUITE.replace("id: japan", "id: france")), store)
    assert error.where == f"{tmp_path / 'suite.yaml'}:19" and "'france'" in error.message


def test_an_unknown_field_names_its_line_and_the_known_ones(tmp_path, store):
    text = SUITE.replace("prompts:\n", "descripton: typo\nprompts:\n", 1)
    error = bad_input(write(tmp_path, text), store)
    assert error.where == f"{tmp_path / 'suite.yaml'}:2" and "descripton" in error.message
    assert "description" in error.fix


def test_a_missing_suite_file_is_one_line(tmp_path, store):
    with pytest.raises(PromptmillError) as info:
        load_suite(tmp_path / "nope.yaml")
    assert "nope.yaml" in info.value.one_line() and "\n" not in info.value.one_line()


def test_bad_input_exits_2_with_one_line_through_the_cli(tmp_path, capsys):
    text = SUITE.replace("      country: Japan\n", "      country: Japan\n      contry: Japan\n")
    path = write(tmp_path, text)
    code, out, err = run_main_streams(["test", str(path)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"{path}:22" in lines[0] and "contry" in lines[0], err
