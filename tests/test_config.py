import pytest

from promptmill.config import load_task_config
from promptmill.errors import ConfigError

GOOD = """name: t
data:
  path: data.jsonl
  input: question
  target: answer
metric: {name: exact}
model: fake
prompt:
  instruction: Answer.
  template: "{{ question }}"
"""


def test_good_config_loads_with_defaults(tmp_path):
    (tmp_path / "t.yaml").write_text(GOOD)
    cfg = load_task_config(tmp_path / "t.yaml")
    assert cfg.data.input == ["question"]
    assert cfg.model.name == "fake" and cfg.metric.name == "exact"
    assert cfg.data_path() == tmp_path / "data.jsonl"
    assert cfg.generation.temperature == 0.0


def test_invalid_yaml_names_line(tmp_path):
    (tmp_path / "t.yaml").write_text("name: t\ndata:\n  path: [unclosed\n")
    with pytest.raises(ConfigError) as err:
        load_task_config(tmp_path / "t.yaml")
    assert "invalid YAML" in str(err.value) and "t.yaml:" in str(err.value)


def test_unknown_field_names_line_and_allowed_fields(tmp_path):
    (tmp_path / "t.yaml").write_text(GOOD.replace("  target: answer", "  targte: answer"))
    with pytest.raises(ConfigError) as err:
        load_task_config(tmp_path / "t.yaml")
    message = str(err.value)
    assert "t.yaml:5" in message and "data.targte" in message and "target" in message


def test_wrong_type_names_field_and_line(tmp_path):
    (tmp_path / "t.yaml").write_text(GOOD + "generation:\n  max_tokens: lots\n")
    with pytest.raises(ConfigError) as err:
        load_task_config(tmp_path / "t.yaml")
    assert "generation.max_tokens" in str(err.value) and "t.yaml:12" in str(err.value)


def test_missing_required_field(tmp_path):
    (tmp_path / "t.yaml").write_text("name: t\n")
    with pytest.raises(ConfigError, match="missing required field 'data'"):
        load_task_config(tmp_path / "t.yaml")


def test_prompt_from_separate_file(tmp_path):
    (tmp_path / "p.yaml").write_text("instruction: From file.\ntemplate: '{{ question }}'\n")
    (tmp_path / "t.yaml").write_text(GOOD.split("prompt:")[0] + "prompt: p.yaml\n")
    assert load_task_config(tmp_path / "t.yaml").prompt.instruction == "From file."


# --- hostile YAML: plain data only, bounded, and every error one line with file and line ------

def _error(tmp_path, text: bytes | str) -> str:
    path = tmp_path / "t.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(ConfigError) as err:
        load_task_config(path)
    message = str(err.value)
    assert "\n" not in message and "Fix:" in message
    return message


def _bomb(levels: int) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_python_tags_are_never_constructed(tmp_path):
    marker = tmp_path / "pwned"
    message = _error(tmp_path, GOOD + f"x: !!python/object/apply:os.system ['touch {marker}']\n")
    assert "t.yaml:11" in message and "no !!python or custom tags" in message
    assert not marker.exists()


def test_alias_bombs_and_recursive_aliases_are_refused(tmp_path):
    assert "anchors and aliases expand this YAML" in _error(tmp_path, _bomb(9) + GOOD)
    assert "recursive anchor" in _error(tmp_path, GOOD + "x: &x [1, *x]\n")
    (tmp_path / "ok.yaml").write_text(_bomb(3) + GOOD.replace("name: t", "name: *a0")
                                      .replace("metric: {name: exact}", "metric: exact"))
    with pytest.raises(ConfigError, match="field 'name'"):  # small reuse is fine, up to types
        load_task_config(tmp_path / "ok.yaml")


def test_deep_nesting_and_huge_numbers_are_config_errors(tmp_path):
    assert "nests more than 100 levels" in _error(tmp_path, "name: " + "[" * 5000)
    assert "nests more than 100 levels" in _error(tmp_path, "name: " + "[" * 150 + "]" * 150)
    assert "unreadable YAML value" in _error(tmp_path, GOOD + "x: 1" + "0" * 5000 + "\n")


def test_invalid_utf8_bom_and_directories(tmp_path):
    assert "t.yaml:2: not valid UTF-8: byte 0xe9 at line 2" in _error(
        tmp_path, b"name: t\ndata: {path: caf\xe9}\n")
    (tmp_path / "b.yaml").write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert load_task_config(tmp_path / "b.yaml").name == "t"
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(ConfigError, match="this is a directory, not a task config"):
        load_task_config(tmp_path / "dir.yaml")


def test_yaml_dates_and_number_keys_load_as_text(tmp_path):
    (tmp_path / "t.yaml").write_text(GOOD.replace("prompt:", "model: {name: fake, params: "
                                                  "{answers: {1: x, 2001-01-01: y}}}\nprompt:")
                                     .replace("model: fake\n", "") +
                                     "  demos: [{inputs: {question: 2001-01-01}, output: '1'}]\n")
    cfg = load_task_config(tmp_path / "t.yaml")
    assert cfg.model.params == {"answers": {"1": "x", "2001-01-01": "y"}}
    assert cfg.prompt.demos[0].inputs == {"question": "2001-01-01"}
    assert len(cfg.prompt.hash) == 16  # JSON-serializable: no date objects in the prompt


@pytest.mark.parametrize(("extra", "message"), [
    ("splits: {train: lots}\n", "t.yaml:11: field 'splits.train': Input should be a valid "
                                "number, unable to parse string as a number (got 'lots')"),
    ("splits: {test: -1}\n", "t.yaml:11: field 'splits.test': Input should be greater than or "
                             "equal to 0 (got -1)"),
    ("generation: {stop: 5}\n", "t.yaml:11: field 'generation.stop': Input should be a valid "
                                "list (got 5)"),
    ("prompt2: x\n", "t.yaml:11: unknown field 'prompt2'"),
    ("context: {demos: {k: 0, method: bm25}}\n", "t.yaml:11: field 'context.demos.k'"),
])
def test_field_errors_name_the_field_without_union_tags(tmp_path, extra, message):
    assert message in _error(tmp_path, GOOD + extra)


def test_more_problems_are_counted_and_nested_unknown_fields_list_the_allowed(tmp_path):
    message = _error(tmp_path, GOOD.replace("  target: answer", "  target: [1]") +
                     "generation: {max_tokens: 0}\n")
    assert "field 'data.target'" in message and "(1 more field to fix after this)" in message
    message = _error(tmp_path, GOOD.replace("  instruction: Answer.", "  instruction: Answer.\n"
                                            "  demos: [{inputs: {}, output: x, why: y}]"))
    assert "unknown field 'prompt.demos.0.why'" in message and "inputs, output" in message


def test_top_level_that_is_not_a_mapping(tmp_path):
    assert "(found a list)" in _error(tmp_path, "- a\n")
    assert "(the file is empty)" in _error(tmp_path, "")
    assert "invalid YAML (but found another document)" in _error(tmp_path, GOOD + "---\na: 1\n")
