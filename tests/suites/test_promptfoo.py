"""promptfoo configs, written here in promptfoo's documented format, read as they are.

Every section of the format: prompts (inline, file://, ---, JSON/YAML chat, objects, CSV),
providers (OpenAI-compatible, promptmill:SPEC, the rest refused), tests (inline, CSV with
__expected, YAML, JSONL, JSON, globs), defaultTest, vars (files, expansion, composition),
evaluateOptions.repeat, $ref, the keys ignored with a warning and those refused, the Nunjucks
check, and the round trip through export_promptfoo.
"""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import pytest

from promptmill.errors import ConfigError
from promptmill.prompt import Demo, Prompt
from promptmill.suites.load import load_suite
from promptmill.suites.model import Assertion, Case, ModelEntry, PromptEntry, Suite
from promptmill.suites.promptfoo import (
    assertion_from_string,
    export_promptfoo,
    load_promptfoo,
    nunjucks_problem,
    write_promptfoo,
)

GETTING_STARTED = """\
# yaml-language-server: $schema=https://promptfoo.dev/config-schema.json
description: 'Getting started'
prompts:
  - 'Convert this English to {{language}}: {{input}}'
  - 'Translate to {{language}}: {{input}}'

providers:
  - openai:gpt-4o-mini
  - openai:chat:gpt-4o

tests:
  - vars:
      language: French
      input: Hello world
    assert:
      - type: contains
        value: 'Bonjour le monde'
  - vars:
      language: Spanish
      input: Where is the library?
    assert:
      - type: icontains
        value: 'Dónde está la biblioteca'
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def load(folder: Path, config: str, **files: str) -> Suite:
    for name, text in files.items():
        write(folder, name.replace("__", "/"), text)
    return load_promptfoo(write(folder, "promptfooconfig.yaml", config))


def refused(folder: Path, config: str, **files: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(folder, config, **files)
    line = str(info.value)
    assert "\n" not in line
    return line


def messages(prompt: Prompt, variables: dict) -> list[dict]:
    return prompt.render_messages(variables)


# --- the whole of a documented example --------------------------------------------------------
def test_the_getting_started_example_reads_as_it_is(tmp_path):
    suite = load(tmp_path / "getting-started", GETTING_STARTED)
    assert suite.name == "getting-started"  # promptfooconfig.yaml says nothing: its folder
    assert suite.description == "Getting started"
    assert [p.prompt.template for p in suite.prompts] == [
        "Convert this English to {{language}}: {{input}}", "Translate to {{language}}: {{input}}"]
    assert [m.spec for m in suite.models] == ["openai:gpt-4o-mini", "openai:gpt-4o"]
    assert suite.cases[1].vars == {"language": "Spanish", "input": "Where is the library?"}
    assert suite.cases[1].assertions == [Assertion(type="icontains",
                                                   value="Dónde está la biblioteca")]
    # promptfoo's own defaults for OpenAI: temperature 0 and up to 1024 tokens
    assert (suite.generation.temperature, suite.generation.max_tokens) == (0.0, 1024)


def test_load_suite_hands_a_promptfoo_config_to_this_loader(tmp_path):
    path = write(tmp_path, "promptfooconfig.yaml", GETTING_STARTED)
    assert load_suite(path) == load_promptfoo(path)


def test_a_promptfoo_config_runs_on_a_promptmill_model(tmp_path, store):
    from promptmill.suites.runner import run_suite

    suite = load(tmp_path, """\
        prompts: ['Capital of {{ country }}?']
        providers:
          - id: promptmill:fake
            label: atlas
            config: {answers: {France: Paris}, default: "no idea"}
        tests:
          - vars: {country: France}
            assert: [{type: icontains, value: paris}]
          - vars: {country: Peru}
            assert: [{type: contains, value: Lima}]
        """)
    result = run_suite(suite, store=store, progress=False)
    cell = next(iter(result.cells.values()))
    assert result.models == ["atlas"]
    assert {o.case_id: o.passed for o in cell.outcomes} == {"case-1": True, "case-2": False}


# --- prompts ----------------------------------------------------------------------------------
def test_a_text_file_holds_several_prompts_separated_by_dashes(tmp_path):
    suite = load(tmp_path, """\
        prompts: [file://prompts.txt]
        providers: [openai:gpt-4o-mini]
        tests: [{vars: {name: Ann, text: hi}}]
        """, **{"prompts.txt": """\
        Translate to French: "{{name}}: {{text}}"
        ---
        Translate to German: "{{name}}: {{text}}"
        """})
    prompts = [p.prompt for p in suite.prompts]
    assert [p.template for p in prompts] == ['Translate to French: "{{name}}: {{text}}"',
                                             'Translate to German: "{{name}}: {{text}}"']
    assert [p.name for p in prompts] == ["prompts-1", "prompts-2"]


def test_a_json_chat_prompt_becomes_instruction_demos_and_template(tmp_path):
    chat = [{"role": "system", "content": "You translate to French."},
            {"role": "user", "content": "Text: good night"},
            {"role": "assistant", "content": "bonne nuit"},
            {"role": "user", "content": "Text: {{ text }}"}]
    suite = load(tmp_path, """\
        prompts: [file://chat.json]
        providers: [openai:gpt-4o-mini]
        tests: [{vars: {text: hello}}]
        """, **{"chat.json": json.dumps(chat)})
    prompt = suite.prompts[0].prompt
    assert prompt.instruction == "You translate to French."
    assert prompt.demos == (Demo(inputs={"text": "good night"}, output="bonne nuit"),)
    # what the model is sent is exactly the chat promptfoo would send
    expected = [*chat[:3], {"role": "user", "content": "Text: hello"}]
    assert messages(prompt, {"text": "hello"}) == expected


def test_inline_json_and_yaml_files_are_chat_prompts_too(tmp_path):
    inline = json.dumps([{"role": "user", "content": "Tell me about {{topic}}"}])
    suite = load(tmp_path, f"""\
        prompts:
          - '{inline}'
          - file://chat.yaml
        providers: [openai:gpt-4o-mini]
        tests: [{{vars: {{topic: owls}}}}]
        """, **{"chat.yaml": """\
        - role: system
          content: Be brief.
        - role: user
          content: "{{ topic }}?"
        """})
    first, second = (p.prompt for p in suite.prompts)
    assert (first.instruction, first.template) == ("", "Tell me about {{topic}}")
    assert (second.instruction, second.template) == ("Be brief.", "{{ topic }}?")


def test_prompt_objects_give_labels_and_a_token_limit(tmp_path):
    suite = load(tmp_path, """\
        prompts:
          - label: 'Prompt #1'
            raw: 'Solve {{problem}}'
            config: {max_tokens: 50}
          - id: file://p.md
            label: markdown
        providers: [openai:gpt-4o-mini]
        tests: [{vars: {problem: 2+2}}]
        """, **{"p.md": "Answer: {{problem}}\n"})
    assert [(p.label, p.prompt.template) for p in suite.prompts] == [
        ("Prompt #1", "Solve {{problem}}"), ("markdown", "Answer: {{problem}}")]
    assert suite.prompts[0].prompt.max_tokens == 50


def test_csv_prompts_and_globs(tmp_path):
    suite = load(tmp_path, """\
        prompts: [file://prompts.csv, 'file://more/*.txt']
        providers: [openai:gpt-4o-mini]
        tests: [{vars: {topic: tea}}]
        """, **{"prompts.csv": 'prompt,label\n"Tell me about {{topic}}",Basic\n',
                "more__a.txt": "A {{topic}}", "more__b.txt": "B {{topic}}"})
    assert [p.prompt.template for p in suite.prompts] == ["Tell me about {{topic}}",
                                                          "A {{topic}}", "B {{topic}}"]
    assert suite.prompts[0].prompt.name == "Basic"


def test_no_prompts_means_promptfoos_passthrough(tmp_path):
    suite = load(tmp_path, "providers: [openai:gpt-4o-mini]\ntests: [{vars: {prompt: hi}}]\n")
    assert suite.prompts[0].prompt.template == "{{ prompt }}"


def test_a_path_like_string_that_is_no_file_is_prompt_text(tmp_path):
    suite = load(tmp_path, """\
        prompts: ['Answer yes/no: {{ q }}']
        providers: [openai:gpt-4o-mini]
        tests: [{vars: {q: x}}]
        """)
    assert suite.prompts[0].prompt.template == "Answer yes/no: {{ q }}"


@pytest.mark.parametrize(("chat", "words"), [
    ([{"role": "system", "content": "Translate to {{ lang }}"},
      {"role": "user", "content": "{{ text }}"}], "a template in the system message"),
    ([{"role": "user", "content": "{{ q }}"}, {"role": "assistant", "content": "ok"}],
     "the message order user -> assistant"),
    ([{"role": "user", "content": "first, unlike the rest"},
      {"role": "assistant", "content": "ok"},
      {"role": "user", "content": "Question: {{ q }}"}], "does not fit the last one's template"),
    ([{"role": "user", "content": [{"type": "text", "text": "{{ q }}"}]}],
     "content is not text"),
])
def test_chat_prompts_promptmill_cannot_send_as_written_are_refused(tmp_path, chat, words):
    line = refused(tmp_path, """\
        prompts: [file://chat.json]
        providers: [openai:gpt-4o-mini]
        tests: [{vars: {q: x, text: y, lang: z}}]
        """, **{"chat.json": json.dumps(chat)})
    assert words in line and "chat.json" in line and "Fix:" in line


def test_a_json_prompt_built_by_template_tags_is_refused_by_name(tmp_path):
    line = refused(tmp_path, """\
        prompts: [file://prompt.json]
        providers: [openai:gpt-4o-mini]
        tests: [{vars: {question: q}}]
        """, **{"prompt.json": """\
        [
          {% for turn in history %}
            {"role": "user", "content": "{{ turn }}"},
          {% endfor %}
          {"role": "user", "content": "{{ question }}"}
        ]
        """})
    assert line.startswith(f"{tmp_path / 'prompt.json'}:2: a chat prompt that is JSON only "
                           "after rendering")


def test_prompt_functions_are_refused(tmp_path):
    line = refused(tmp_path, """\
        prompts: [file://prompt.py:make]
        providers: [openai:gpt-4o-mini]
        """, **{"prompt.py": "def make(context):\n    return 'hi'\n"})
    assert "prompt function" in line and "promptfooconfig.yaml:1" in line


# --- Nunjucks in Jinja2 -----------------------------------------------------------------------
@pytest.mark.parametrize("template", [
    "{{ items | join(', ') }}", "{{ ', '.join(items) }}", "{% for x in items %}{{ x }}{% endfor %}",
    "{{ name | upper }} {{ name | default('anon') }}", "{% if a == 1 %}x{% elif a %}y{% endif %}",
    "{{ user_profile.name }}", "{{ data | tojson }}",
])
def test_templates_jinja2_renders_as_nunjucks_pass(template):
    assert nunjucks_problem(template) is None


@pytest.mark.parametrize(("template", "named", "fix"), [
    ("{{ previous_messages | dump }}", "filter 'dump'", "tojson"),
    ("{{ body | allcaps }}", "filter 'allcaps'", "nunjucksFilters"),
    ("{{ (field | load).property }}", "filter 'load'", "structured"),
    ("{{ text | nl2br }}", "filter 'nl2br'", "replace"),
    ("{% if x is truthy %}y{% endif %}", "test 'is truthy'", "{% if x %}"),
    ("{{ items.length }}", "member '.length'", "| length"),
    ("{{ name.toUpperCase() }}", "member '.toUpperCase'", "| upper"),
    ("{% if a %}x{% elseif b %}y{% endif %}", "{% elseif %}", "{% elif %}"),
    ("{% if a === 1 %}x{% endif %}", "=== and !==", "=="),
    ("{{ env.TOPIC }}", "env global", "pass the value as a var"),
])
def test_nunjucks_only_syntax_is_named(template, named, fix):
    problem = nunjucks_problem(template)
    assert problem is not None
    message, how, _line = problem
    assert named in message and fix in how


def test_a_nunjucks_only_filter_in_a_prompt_file_names_its_line(tmp_path):
    line = refused(tmp_path, """\
        prompts: [file://p.txt]
        providers: [openai:gpt-4o-mini]
        tests: [{vars: {a: x, messages: []}}]
        """, **{"p.txt": "Intro {{ a }}\n\nHistory:\n{{ messages | dump }}\n"})
    assert line.startswith(f"{tmp_path / 'p.txt'}:4: ") and "'dump'" in line and "tojson" in line


# --- providers --------------------------------------------------------------------------------
def test_openai_compatible_providers_map_to_the_openai_backend(tmp_path, monkeypatch):
    monkeypatch.delenv("OLLAMA_BASE_URL", raising=False)
    suite = load(tmp_path, """\
        prompts: ['{{ q }}']
        providers:
          - id: openai:chat:smollm
            label: local
            config:
              apiBaseUrl: http://127.0.0.1:8080/v1
              apiKeyEnvar: LOCAL_KEY
              temperature: 0.7
              max_tokens: 128
          - openai:chat:gpt-4o-mini: {config: {temperature: 0.7, max_tokens: 128}}
          - {id: 'ollama:chat:llama3.2', config: {temperature: 0.7, num_predict: 128}}
          - {id: 'groq:llama-3.1-8b-instant', config: {temperature: 0.7, max_tokens: 128}}
          - {id: promptmill:fake, config: {default: hi, temperature: 0.7, max_tokens: 128}}
        tests: [{vars: {q: x}}]
        """)
    assert [(m.spec, m.params, m.label) for m in suite.models] == [
        ("openai:smollm", {"base_url": "http://127.0.0.1:8080/v1", "api_key_env": "LOCAL_KEY"},
         "local"),
        ("openai:gpt-4o-mini", {}, None),
        ("openai:llama3.2", {"base_url": "http://localhost:11434/v1",
                             "api_key_env": "OLLAMA_API_KEY"}, None),
        ("openai:llama-3.1-8b-instant", {"base_url": "https://api.groq.com/openai/v1",
                                         "api_key_env": "GROQ_API_KEY"}, None),
        ("fake", {"default": "hi"}, None)]
    assert (suite.generation.temperature, suite.generation.max_tokens) == (0.7, 128)


def test_providers_can_come_from_a_file(tmp_path):
    suite = load(tmp_path, """\
        prompts: ['{{ q }}']
        providers: [file://provider.yaml]
        tests: [{vars: {q: x}}]
        """, **{"provider.yaml": "id: openai:gpt-4.1-mini\nlabel: Foo bar\n"})
    assert suite.models == [ModelEntry(spec="openai:gpt-4.1-mini", label="Foo bar")]


def test_an_unsupported_provider_is_one_line_naming_it_its_line_and_the_way_out(tmp_path):
    line = refused(tmp_path, """\
        prompts: ['{{ q }}']
        providers:
          - openai:gpt-4o-mini
          - vertex:gemini-2.0-flash-exp
        tests: [{vars: {q: x}}]
        """)
    assert line.startswith(f"{tmp_path / 'promptfooconfig.yaml'}:4: the provider "
                           "'vertex:gemini-2.0-flash-exp' is not supported")
    assert "openai:chat:MODEL" in line and "promptmill:SPEC" in line


@pytest.mark.parametrize(("provider", "words"), [
    ("{id: openai:gpt-4o, config: {apiKey: sk-123}}", "API key is never read from a config"),
    ("openai:embedding:text-embedding-3-small", "promptmill calls chat models"),
    ("ollama:llama3", "use ollama:chat:MODEL"),
    ("{id: openai:gpt-4o, config: {tools: []}}", "config key 'tools' is not supported"),
    ("{id: openai:gpt-4o, transform: output.trim()}", "provider key 'transform'"),
    ("file://provider.js", "is not supported"),
])
def test_provider_settings_promptmill_cannot_honour_are_refused(tmp_path, provider, words):
    line = refused(tmp_path, f"prompts: ['{{{{ q }}}}']\nproviders: [{provider}]\n"
                             "tests: [{vars: {q: x}}]\n")
    assert words in line


def test_providers_must_agree_on_generation(tmp_path):
    line = refused(tmp_path, """\
        prompts: ['{{ q }}']
        providers:
          - {id: openai:gpt-4o, config: {temperature: 0.2}}
          - openai:gpt-4o-mini
        tests: [{vars: {q: x}}]
        """)
    assert "different temperature" in line and "promptfooconfig.yaml:4" in line


# --- tests ------------------------------------------------------------------------------------
CSV = """\
question,expected,__expected1,__expected2,__description,__threshold
"What's the capital of France?",Paris,"contains: Paris","llm-rubric: Is it accurate?",capital,0.5
"What is 15 + 27?",42,42,"python: file://verify.py",sum,
"Say hi",hi,"icontains-any: hi, hello","similar(0.9):hello there",,
"Tell a joke",x,"not-contains: knock","grade: is it funny?",,
"""


def test_csv_tests_read_the_expected_columns_in_promptfoos_syntax(tmp_path):
    suite = load(tmp_path, """\
        prompts: ['{{ question }}']
        providers: [openai:gpt-4o-mini]
        tests: file://tests.csv
        """, **{"tests.csv": CSV, "verify.py": "def get_assert(output, context):\n"
                                               "    return True\n"})
    first, second, third, fourth = suite.cases
    assert first.vars == {"question": "What's the capital of France?", "expected": "Paris"}
    assert (first.description, first.threshold) == ("capital", 0.5)
    assert [(a.type, a.value) for a in first.assertions] == [
        ("contains", "Paris"), ("llm-rubric", " Is it accurate?")]
    assert [(a.type, a.value) for a in second.assertions] == [
        ("equals", "42"), ("python", "file://verify.py")]
    assert [(a.type, a.value, a.threshold) for a in third.assertions] == [
        ("icontains-any", ["hi", "hello"], None), ("similar", "hello there", 0.9)]
    assert [(a.type, a.value) for a in fourth.assertions] == [
        ("not-contains", "knock"), ("llm-rubric", " is it funny?")]
    assert third.description == "Row #3"  # promptfoo's name for an undescribed row


@pytest.mark.parametrize(("cell", "expected"), [
    ("Bonjour le monde", {"type": "equals", "value": "Bonjour le monde"}),
    ("contains-all:a,b", {"type": "contains-all", "value": ["a", "b"]}),
    ("is-json", {"type": "is-json", "value": None}),
    ("levenshtein:hello", {"type": "levenshtein", "value": "hello", "threshold": 0.75}),
    ("fn:output.includes('x')", {"type": "javascript", "value": "output.includes('x')"}),
    ("file://check.py:grade", {"type": "python", "value": "file://check.py:grade"}),
])
def test_one_cell_assertions_read_as_promptfoo_reads_them(cell, expected):
    assert assertion_from_string(cell) == expected


def test_tests_come_from_yaml_jsonl_json_and_globs_with_inline_ones(tmp_path):
    suite = load(tmp_path, """\
        prompts: ['{{ var1 }}']
        providers: [openai:gpt-4o-mini]
        tests:
          - file://tests.yaml
          - file://more/*.jsonl
          - file://one.json
          - vars: {var1: inline}
        """, **{"tests.yaml": "- vars: {var1: from-yaml}\n  assert: [{type: equals, value: a}]\n",
                "more__a.jsonl": '{"vars": {"var1": "jsonl-1"}}\n\n{"vars": {"var1": "jsonl-2"}}\n',
                "one.json": '[{"vars": {"var1": "json"}, "description": "Test #1"}]'})
    assert [c.vars["var1"] for c in suite.cases] == ["from-yaml", "jsonl-1", "jsonl-2", "json",
                                                     "inline"]
    assert suite.cases[0].assertions == [Assertion(type="equals", value="a")]


def test_default_test_applies_to_every_case_and_names_the_grader(tmp_path):
    suite = load(tmp_path, """\
        prompts: ['{{ template }} {{ unique_var }}']
        providers: [openai:gpt-4o-mini]
        defaultTest:
          vars: {template: 'shared'}
          assert:
            - type: llm-rubric
              value: does not describe self as an AI
          options:
            provider: openai:chat:gpt-4o-mini
        tests:
          - vars: {unique_var: value1}
          - vars: {unique_var: value2, template: override}
            assert: [{type: llm-rubric, value: polite}]
        """)
    assert suite.default_test.vars == {"template": "shared"}
    assert suite.default_test.assertions[0].provider == "openai:gpt-4o-mini"
    assert suite.merged(1).vars == {"template": "override", "unique_var": "value2"}
    assert [a.provider for a in suite.merged(1).assertions] == ["openai:gpt-4o-mini"] * 2


def test_var_values_read_files_and_lists_expand_into_cases(tmp_path):
    suite = load(tmp_path, """\
        prompts: ['{{ language }} {{ input }} {{ data }}']
        providers: [openai:gpt-4o-mini]
        tests:
          - vars:
              language: [French, German]
              input: file://inputs/*.txt
              data: file://data.yaml
          - vars: {language: [a, b], input: x, data: y}
            options: {disableVarExpansion: true}
        """, **{"inputs__1.txt": "  Hello world\n", "inputs__2.txt": "Good morning\n",
                "data.yaml": "answer: 42\n"})
    combos = [(c.vars["language"], c.vars["input"]) for c in suite.cases[:4]]
    assert combos == [("French", "Hello world"), ("French", "Good morning"),
                      ("German", "Hello world"), ("German", "Good morning")]
    assert suite.cases[0].vars["data"] == '{"answer": 42}'  # promptfoo: YAML as its JSON text
    assert suite.cases[4].vars["language"] == ["a", "b"]


def test_vars_given_as_a_file_and_vars_that_use_other_vars(tmp_path):
    suite = load(tmp_path, """\
        prompts: ['Write a {{item}}']
        providers: [openai:gpt-4o-mini]
        tests:
          - vars: file://vars.yaml
          - vars: {item: 'instagram about {{ topic | upper }}', topic: physics}
        """, **{"vars.yaml": "item: 'tweet about {{topic}}'\ntopic: bananas\n"})
    assert [c.vars["item"] for c in suite.cases] == ["tweet about bananas",
                                                     "instagram about PHYSICS"]


def test_a_var_that_only_looks_like_a_template_stays_text_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="promptmill.suites.promptfoo"):
        suite = load(tmp_path, """\
            prompts: ['Reply to: {{ comment }}']
            providers: [openai:gpt-4o-mini]
            tests: [{vars: {comment: "{{tq | the current consensus }} is wrong"}}]
            """)
    assert suite.cases[0].vars["comment"] == "{{tq | the current consensus }} is wrong"
    assert any("1 var value(s) hold {{ but are no template" in r.getMessage()
               for r in caplog.records)


def test_assertion_values_from_files_and_templates_by_ref(tmp_path):
    suite = load(tmp_path, """\
        prompts: ['{{ q }}']
        providers: [openai:gpt-4o-mini]
        assertionTemplates:
          startsUpperCase: {type: regex, value: '^[A-Z]'}
        tests:
          - vars: {q: speech}
            assert:
              - {type: contains, value: file://gettysburg.txt}
              - $ref: '#/assertionTemplates/startsUpperCase'
              - {type: is-json, value: file://schema.json}
        """, **{"gettysburg.txt": "Four score and seven years ago\n", "schema.json": "{}"})
    assert [(a.type, a.value) for a in suite.cases[0].assertions] == [
        ("contains", "Four score and seven years ago"), ("regex", "^[A-Z]"),
        ("is-json", "file://schema.json")]


def test_no_tests_runs_the_prompts_once_without_vars(tmp_path):
    suite = load(tmp_path, "prompts: ['Say hello']\nproviders: [openai:gpt-4o-mini]\n")
    assert suite.cases == [Case()]


def test_repeat_comes_from_evaluate_options(tmp_path):
    suite = load(tmp_path, """\
        prompts: ['{{ q }}']
        providers: [openai:gpt-4o-mini]
        evaluateOptions: {repeat: 3, maxConcurrency: 2}
        tests: [{vars: {q: x}}]
        """)
    assert suite.repeat == 3


# --- ignored and refused keys -----------------------------------------------------------------
def test_keys_that_change_no_result_are_ignored_with_a_warning_line(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="promptmill.suites.promptfoo"):
        load(tmp_path, """\
            description: x
            prompts: ['{{ q }}']
            providers: [openai:gpt-4o-mini]
            outputPath: results.html
            sharing: false
            evaluateOptions: {maxConcurrency: 2}
            tests: [{vars: {q: x}, metadata: {topic: a}}]
            """)
    warned = [r.getMessage() for r in caplog.records]
    assert any("promptfooconfig.yaml:4: 'outputPath' is ignored" in w for w in warned)
    assert any("'sharing' is ignored" in w for w in warned)
    assert any("evaluateOptions.maxConcurrency is ignored" in w for w in warned)
    assert any("metadata is ignored" in w for w in warned)
    assert all("\n" not in w for w in warned)


@pytest.mark.parametrize(("extra", "words"), [
    ("scenarios: [{config: [], tests: []}]", "promptfoo scenarios is not supported"),
    ("nunjucksFilters: {allcaps: ./allcaps.js}", "custom Nunjucks filters"),
    ("env: {OPENAI_API_KEY: sk-1}", "setting environment variables"),
    ("redteam: {plugins: []}", "red-team config"),
    ("extensions: [file://hook.py:hook]", "extension hooks"),
    ("tagz: {}", "unknown promptfoo key 'tagz'"),
])
def test_keys_that_would_change_results_are_refused(tmp_path, extra, words):
    line = refused(tmp_path, f"prompts: ['{{{{ q }}}}']\nproviders: [openai:gpt-4o-mini]\n"
                             f"tests: [{{vars: {{q: x}}}}]\n{extra}\n")
    assert words in line and "promptfooconfig.yaml:4" in line


@pytest.mark.parametrize(("test", "words"), [
    ("{vars: {q: x}, options: {transform: output.toUpperCase()}}", "test option 'transform'"),
    ("{vars: {q: x}, assert: [{type: equals, value: a, transform: output.x}]}",
     "assertion key 'transform'"),
    ("{vars: {q: x}, assert: [{type: javascript, value: output.length > 1}]}",
     "assertion type 'javascript' is not supported"),
    ("{vars: {q: x}, assert: [{type: factuality, value: x}]}", "use llm-rubric"),
    ("{vars: {q: x}, provider: openai:gpt-4o}", "test key 'provider'"),
    ("{vars: {q: x}, options: {transformVars: 'return vars'}}", "test option 'transformVars'"),
])
def test_test_features_promptmill_cannot_honour_are_refused(tmp_path, test, words):
    line = refused(tmp_path, "prompts: ['{{ q }}']\nproviders: [openai:gpt-4o-mini]\n"
                             f"tests:\n  - {test}\n")
    assert words in line and "promptfooconfig.yaml:" in line


@pytest.mark.parametrize(("config", "missing"), [
    ("prompts: [file://missing.txt]\nproviders: [openai:gpt-4o-mini]\n", "file://missing.txt"),
    ("prompts: ['{{ q }}']\nproviders: [openai:gpt-4o-mini]\ntests: file://nope.csv\n",
     "file://nope.csv"),
    ("prompts: ['{{ q }}']\nproviders: [openai:gpt-4o-mini]\n"
     "tests: [{vars: {q: file://gone.txt}}]\n", "file://gone.txt"),
    ("prompts: ['{{ q }}']\nproviders: [openai:gpt-4o-mini]\n"
     "tests: [{vars: {q: x}, assert: [{type: contains, value: file://absent.txt}]}]\n",
     "file://absent.txt"),
])
def test_a_missing_file_is_named_with_its_line(tmp_path, config, missing):
    line = refused(tmp_path, config)
    assert f"the file '{missing}' does not exist" in line
    assert line.startswith(f"{tmp_path / 'promptfooconfig.yaml'}:")


def test_a_bad_csv_cell_names_its_row(tmp_path):
    line = refused(tmp_path, "prompts: ['{{ q }}']\nproviders: [openai:gpt-4o-mini]\n"
                             "tests: file://t.csv\n",
                   **{"t.csv": "q,__threshold\na,0.5\nb,half\n"})
    assert line.startswith(f"{tmp_path / 't.csv'}:3: __threshold must be a number")


def test_a_javascript_config_is_refused(tmp_path):
    path = write(tmp_path, "promptfooconfig.js", "module.exports = {};\n")
    with pytest.raises(ConfigError, match="JavaScript or TypeScript promptfoo config"):
        load_promptfoo(path)


# --- written back -----------------------------------------------------------------------------
def round_trip_suite(tmp_path: Path) -> Suite:
    chat = Prompt(instruction="You translate to French.", template="Text: {{ text }}",
                  demos=(Demo(inputs={"text": "good night"}, output="bonne nuit"),),
                  max_tokens=40)
    return Suite.model_validate({
        "name": "translate", "description": "French, checked",
        "prompts": [PromptEntry(prompt=Prompt(template="French for {{ text }}?"), label="plain"),
                    PromptEntry(prompt=chat, label="chat")],
        "models": [ModelEntry(spec="openai:smollm", params={"base_url": "http://127.0.0.1:8080/v1",
                                                           "api_key_env": "LOCAL_KEY"}),
                   ModelEntry(spec="fake", params={"default": "bonjour"}, label="fake-fr")],
        "defaultTest": {"vars": {"tone": "formal"},
                        "assert": [{"type": "not-icontains", "value": "sorry"}]},
        "tests": [{"id": "hello", "description": "greeting", "vars": {"text": "hello"},
                   "assert": [{"type": "icontains", "value": "bonjour", "weight": 2,
                               "metric": "accuracy"},
                              {"type": "llm-rubric", "value": "is French",
                               "provider": "openai:judge"},
                              {"type": "contains-any", "value": ["bonjour", "salut"]}],
                   "threshold": 0.5},
                  {"vars": {"text": "night"}, "assert": [{"type": "latency", "threshold": 500}]}],
        "repeat": 3, "generation": {"max_tokens": 64, "temperature": 0.5, "seed": 7,
                                    "stop": ["\n\n"]},
        "source": str(tmp_path / "suite.yaml"), "base_dir": tmp_path})


def test_an_exported_config_reads_back_to_the_same_suite(tmp_path):
    suite = round_trip_suite(tmp_path)
    path = tmp_path / "promptfooconfig.yaml"
    write_promptfoo(suite, path)
    again = load_promptfoo(path)
    assert again.model_dump() == suite.model_dump()
    assert again.prompts[1].prompt.hash == suite.prompts[1].prompt.hash  # same version


def test_the_export_is_promptfoos_format(tmp_path):
    config = export_promptfoo(round_trip_suite(tmp_path))
    assert config["providers"][0] == {"id": "openai:chat:smollm", "config": {
        "apiBaseUrl": "http://127.0.0.1:8080/v1", "apiKeyEnvar": "LOCAL_KEY", "temperature": 0.5,
        "max_tokens": 64, "top_p": 1.0, "seed": 7, "stop": ["\n\n"]}}
    assert config["providers"][1]["id"] == "promptmill:fake"
    assert json.loads(config["prompts"][1]["raw"]) == [
        {"role": "system", "content": "You translate to French."},
        {"role": "user", "content": "Text: good night"},
        {"role": "assistant", "content": "bonne nuit"},
        {"role": "user", "content": "Text: {{ text }}"}]
    assert config["evaluateOptions"] == {"repeat": 3}
    assert config["tests"][0]["metadata"] == {"id": "hello"}


def test_exporting_a_prompt_file_writes_its_content_inline(tmp_path):
    Prompt(instruction="Be brief.", template="{{ q }}").to_file(tmp_path / "ask.yaml")
    suite = Suite.model_validate({"name": "s", "prompts": ["ask.yaml"],
                                  "tests": [{"vars": {"q": "x"}}], "base_dir": tmp_path})
    path = tmp_path / "promptfooconfig.yaml"
    write_promptfoo(suite, path)
    entry = load_promptfoo(path).prompts[0]
    assert entry.label == "ask"
    assert entry.prompt.content() == Prompt.from_file(tmp_path / "ask.yaml").content()


def test_a_stored_prompt_needs_the_store_to_be_exported(tmp_path):
    suite = Suite.model_validate({"name": "s", "prompts": ["sentiment@production"],
                                  "tests": [{"vars": {"q": "x"}}], "base_dir": tmp_path})
    with pytest.raises(ConfigError, match="without the store"):
        export_promptfoo(suite)
