"""Structured-output metrics: json_valid, json_schema."""

from __future__ import annotations

import json

import pytest
from metric_helpers import ex, score

from promptmill.errors import ConfigError
from promptmill.metrics import get_metric


@pytest.mark.parametrize("text", ['{"a": 1}', '  [1, 2]\n', '```json\n{"a": 1}\n```',
                                  '```\n{"a": 1}\n```'])
def test_json_valid_accepts_json_and_fenced_json(text):
    assert score("json_valid", text, ex()).value == 1.0


def test_json_valid_feedback_points_at_the_error():
    result = score("json_valid", '{"a": 1,}', ex())
    assert result.value == 0.0
    assert result.feedback.startswith("not valid JSON: Expecting property name")
    assert "line 1 column 9" in result.feedback


PERSON = {"type": "object", "required": ["name", "age"],
          "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}}


def test_json_schema_passes_valid_output():
    assert score("json_schema", '```json\n{"name": "Ada", "age": 36}\n```', ex(),
                 schema=PERSON).value == 1.0


def test_json_schema_feedback_names_the_violation_path():
    result = score("json_schema", '{"name": "Ada", "age": "old"}', ex(), schema=PERSON)
    assert result.value == 0.0
    assert result.feedback == "JSON does not match the schema at $.age: 'old' is not of type " \
                              "'integer'"
    missing = score("json_schema", '{"age": -1}', ex(), schema=PERSON)
    assert "(1 more violations)" in missing.feedback
    assert score("json_schema", "name: Ada", ex(), schema=PERSON).feedback.startswith(
        "not valid JSON")


def test_json_schema_from_a_file_relative_to_base_dir(tmp_path):
    (tmp_path / "person.json").write_text(json.dumps(PERSON))
    metric = get_metric("json_schema", {"schema": "person.json"}, base_dir=tmp_path)
    assert metric.score('{"name": "Ada", "age": 36}', ex()).value == 1.0
    with pytest.raises(ConfigError, match="JSON schema file not found"):
        get_metric("json_schema", {"schema": "missing.json"}, base_dir=tmp_path)


def test_invalid_json_schema_fails_at_construction():
    with pytest.raises(ConfigError, match="invalid JSON schema at type"):
        get_metric("json_schema", {"schema": {"type": "integr"}})
