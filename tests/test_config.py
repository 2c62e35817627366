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
