import subprocess
import sys

import pytest

from promptmill.errors import TemplateError
from promptmill.prompt import Demo, Prompt


def test_messages_put_shared_part_first_and_example_last():
    prompt = Prompt(instruction="Translate to French.", template="English: {{ input }}",
                    demos=(Demo(inputs={"input": "cat"}, output="chat"),),
                    output_format="Answer with one word.")
    messages = prompt.render_messages({"input": "dog"})
    assert messages[0] == {"role": "system",
                           "content": "Translate to French.\n\nAnswer with one word."}
    assert messages[1:3] == [{"role": "user", "content": "English: cat"},
                             {"role": "assistant", "content": "chat"}]
    assert messages[-1] == {"role": "user", "content": "English: dog"}


def test_completion_text_for_base_models():
    prompt = Prompt(instruction="Add.", template="{{ a }}+{{ b }}",
                    demos=(Demo(inputs={"a": 1, "b": 1}, output="2"),))
    assert prompt.render_text({"a": 2, "b": 3}) == "Add.\n\n1+1\nAnswer: 2\n\n2+3\nAnswer:"


def test_missing_variable_is_an_error_not_empty():
    prompt = Prompt(template="{{ question }} ({{ hint }})")
    with pytest.raises(TemplateError) as err:
        prompt.render_messages({"question": "why?"}, where="data.jsonl example '7'")
    assert "hint" in str(err.value) and "example '7'" in str(err.value)


def test_context_slots_are_required_and_rendered_before_input():
    prompt = Prompt(template="Q: {{ q }}", context_slots=("knowledge",))
    with pytest.raises(TemplateError, match="knowledge"):
        prompt.render_messages({"q": "x"})
    text = prompt.render_messages({"q": "x"}, {"knowledge": "[1] fact"})[-1]["content"]
    assert text == "Knowledge:\n[1] fact\n\nQ: x"


def test_template_syntax_error_is_reported():
    with pytest.raises(TemplateError, match="syntax"):
        Prompt(template="{{ broken ").render_messages({})


def test_hash_is_stable_across_processes_and_ignores_name():
    prompt = Prompt(instruction="Be brief.", template="{{ input }}", name="a")
    assert prompt.hash == Prompt(instruction="Be brief.", template="{{ input }}", name="b").hash
    assert prompt.hash != Prompt(instruction="Be briefer.", template="{{ input }}").hash
    code = ("from promptmill.prompt import Prompt;"
            "print(Prompt(instruction='Be brief.', template='{{ input }}').hash)")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": "123"}).stdout.strip()
    assert other == prompt.hash


def test_prompt_file_roundtrip(tmp_path):
    prompt = Prompt(instruction="Hi", demos=(Demo(inputs={"input": "a"}, output="b"),))
    prompt.to_file(tmp_path / "p.yaml")
    assert Prompt.from_file(tmp_path / "p.yaml") == prompt


def test_variables_lists_template_fields():
    assert Prompt(template="{{ a }} and {{ b|upper }}").variables() == {"a", "b"}


def test_yaml_shows_nested_settings_in_full_and_round_trips(tmp_path):
    from promptmill.prompt import DemoSelection

    prompt = Prompt(instruction="Classify.", demo_selection=DemoSelection(),
                    output_spec={"labels": ["a", "b"]}, extract="first_line")
    text = prompt.to_yaml()
    assert "method: bm25" in text and "k: 4" in text and "- a" in text
    assert "context_slots" not in text  # unset fields stay out
    prompt.to_file(tmp_path / "p.yaml")
    assert Prompt.from_file(tmp_path / "p.yaml") == prompt
