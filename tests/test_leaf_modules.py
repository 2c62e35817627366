"""Hashing and YAML loading live in leaf modules; the old import paths still work."""

from __future__ import annotations

import pytest


def test_canonical_json_is_one_function_wherever_it_is_imported_from():
    from promptmill import constrain, hashing, prompt

    assert prompt.canonical_json is hashing.canonical_json is constrain.canonical_json
    assert prompt.sha256_hex is hashing.sha256_hex
    assert hashing.canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'
    assert hashing.sha256_hex("") == ("e3b0c44298fc1c149afbf4c8996fb924"
                                      "27ae41e4649b934ca495991b7852b855")


def test_the_yaml_reader_is_still_importable_from_config():
    from promptmill import config, yamlfile

    assert config.load_yaml_model is yamlfile.load_yaml_model
    assert config.validate_with_lines is yamlfile.validate_with_lines
    assert config.MAX_ALIAS_GROWTH == yamlfile.MAX_ALIAS_GROWTH


def test_a_prompt_file_loads_through_the_yaml_leaf(tmp_path):
    from promptmill.errors import ConfigError
    from promptmill.prompt import Prompt

    path = tmp_path / "p.yaml"
    path.write_text("instruction: Be brief.\ntemplat: '{{ input }}'\n")
    with pytest.raises(ConfigError) as info:
        Prompt.from_file(path)
    assert info.value.where == f"{path}:2" and "unknown field 'templat'" in info.value.message


def test_the_context_schema_builds_nothing_and_the_factory_builds_the_chain():
    from promptmill.context import config as schema
    from promptmill.context.factory import build_contextualizer
    from promptmill.models.fake import FakeModel
    from promptmill.task import Example, Task

    assert not hasattr(schema, "build_contextualizer")
    task = Task("t", [Example("1", {"input": "hi"}, "x")], [], [])
    context = schema.ContextConfig(situation={"audience": "customers"})
    chain = build_contextualizer(context, task, FakeModel())
    assert chain is not None and build_contextualizer(None, task, FakeModel()) is None
