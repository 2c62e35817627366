import json

import pytest

from promptmill.constrain import OutputSpec, parse_spec
from promptmill.errors import ConfigError


def test_labels_compile_to_an_alternation_with_escaped_literals():
    spec = OutputSpec(labels=("yes", 'say "no"'))
    assert spec.to_gbnf() == 'root ::= "yes" | "say \\"no\\""\n'
    assert spec.is_valid("yes") and spec.is_valid(' say "no" ') and not spec.is_valid("maybe")
    assert spec.format_note() == 'Answer with exactly one of: yes, say "no".'


def test_pattern_compiles_groups_classes_and_repeats():
    grammar = OutputSpec(pattern=r"(yes|no)-[A-Z]{2,3}\d+x?").to_gbnf()
    assert grammar.startswith("root ::= ")
    for piece in ('"y" "e" "s" | "n" "o"', "([A-Z]){2,3}", "([0-9])+", '("x")?'):
        assert piece in grammar


def test_grammars_parse_in_llama_cpp():
    from llama_cpp import LlamaGrammar

    for spec in (OutputSpec(labels=("a", "b")), OutputSpec(pattern=r"[a-z]+ \d{1,3}"),
                 OutputSpec(json_schema={"type": "object", "properties": {
                     "name": {"type": "string"}, "age": {"type": "integer"}},
                     "required": ["name"]})):
        LlamaGrammar.from_string(spec.to_gbnf(), verbose=False)


def test_unsupported_pattern_and_bad_specs_are_refused_with_the_field():
    with pytest.raises(ConfigError, match="output_spec.pattern.*grammar cannot enforce"):
        parse_spec({"pattern": r"(a)\1"})
    with pytest.raises(ConfigError, match="bad regular expression"):
        parse_spec({"pattern": "(unclosed"})
    with pytest.raises(ConfigError, match="exactly one of"):
        parse_spec({"labels": ["a"], "pattern": "a"})
    with pytest.raises(ConfigError, match="non-empty"):
        parse_spec({"labels": []})


def test_response_format_wraps_labels_and_unwraps_the_answer():
    spec = OutputSpec(labels=("pos", "neg"))
    schema = spec.response_format()["json_schema"]["schema"]
    assert schema["properties"]["answer"]["enum"] == ["pos", "neg"]
    assert spec.unwrap(json.dumps({"answer": "neg"})) == "neg"
    assert spec.unwrap("not json") == "not json"
    raw = OutputSpec(json_schema={"type": "object"})
    assert raw.response_format()["json_schema"]["schema"] == {"type": "object"}
    assert raw.unwrap('{"a": 1}') == '{"a": 1}'


def test_json_schema_validity():
    spec = OutputSpec(json_schema={"type": "object", "properties": {"n": {"type": "integer"}},
                                   "required": ["n"]})
    assert spec.is_valid('{"n": 3}') and not spec.is_valid('{"n": "x"}')
    assert not spec.is_valid("n = 3")


def test_key_round_trips_and_is_stable():
    spec = OutputSpec(labels=("b", "a"))
    assert OutputSpec.from_key(spec.key()) == spec
    assert spec.key() == '{"labels":["b","a"]}'
