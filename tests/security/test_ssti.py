"""Server-side template injection: no template, through any render path, may run code.

Each payload tries to create a marker file through ``os.popen``/``open``/``__import__``. A path
holds when the marker never appears and the attempt ends in a one-line ``PromptmillError``
(exit 2 on the CLI), or, for templates that only display text, the payload is shown literally.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import write_jsonl

from promptmill.errors import PromptmillError, TemplateError
from promptmill.prompt import Prompt

# Each reaches Python through a different door; all must be shut.
STATIC_PAYLOADS = {
    "cycler-globals": "{{ cycler.__init__.__globals__.os.popen('touch MARK').read() }}",
    "joiner-globals": "{{ joiner.__init__.__globals__.os.popen('touch MARK').read() }}",
    "namespace-globals": "{{ namespace.__init__.__globals__.os.popen('touch MARK').read() }}",
    "lipsum-globals": "{{ lipsum.__globals__['os'].popen('touch MARK').read() }}",
    "self-builtins": "{{ self.__init__.__globals__.__builtins__.__import__('os')"
                     ".popen('touch MARK') }}",
    "mro-subclasses": "{% for c in ''.__class__.__mro__[1].__subclasses__() %}"
                      "{% if c.__name__ == 'Popen' %}{{ c(['touch', 'MARK']) }}{% endif %}"
                      "{% endfor %}",
    "getitem-dunder": "{{ cycler['__init__']['__globals__']['os'].popen('touch MARK') }}",
    "attr-filter": "{{ cycler|attr('__init__')|attr('__globals__') }}",
    "escaped-underscores": "{{ cycler|attr('\\x5f\\x5finit\\x5f\\x5f') }}",
    "function-internals": "{{ range.__globals__ }}",
    "builtins-open": "{{ lipsum.__globals__.__builtins__.open('MARK', 'w').write('x') }}",
    "input-class": "{{ text.__class__.__base__.__subclasses__() }}",
}
# Names built at render time cannot be seen by the load-time check: the sandbox stops them.
DYNAMIC_PAYLOADS = {
    "concatenated-attr": "{% set a = '_' ~ '_init_' ~ '_' %}{% set g = '_' ~ '_globals_' ~ '_' %}"
                         "{{ (cycler|attr(a)|attr(g)).os.popen('touch MARK') }}",
    "format-string": "{{ '{0.__class__.__mro__}'.format(text) }}",
    "mutate-list": "{% set xs = text.split() %}{{ xs.append('MARK') }}",
    "include-file": "{% include '/etc/passwd' %}",
    "import-module": "{% import 'os' as os %}{{ os }}",
    "huge-repeat": "{{ 'x' * 10 ** 9 }}",
    "huge-power": "{{ 2 ** 99999999 }}",
    "huge-output": "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
}


def _payload(template: str, marker: Path) -> str:
    return template.replace("MARK", str(marker))


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "PWNED"


@pytest.mark.parametrize("name", sorted(STATIC_PAYLOADS))
def test_unsafe_templates_are_refused_when_the_prompt_is_made(name, marker):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="templates may not use"):
        Prompt(template=_payload(STATIC_PAYLOADS[name], marker))
    assert not marker.exists()


@pytest.mark.parametrize("name", sorted({**STATIC_PAYLOADS, **DYNAMIC_PAYLOADS}))
@pytest.mark.parametrize("mode", ["messages", "text"])
def test_the_sandbox_stops_every_payload_at_render_time(name, mode, marker):
    # model_copy skips validation, as an optimizer's edit would: the sandbox must still hold
    template = _payload({**STATIC_PAYLOADS, **DYNAMIC_PAYLOADS}[name], marker)
    prompt = Prompt(name="p").model_copy(update={"template": template})
    render = prompt.render_messages if mode == "messages" else prompt.render_text
    with pytest.raises(TemplateError) as info:
        render({"text": "a b"})
    assert not marker.exists()
    assert "\n" not in info.value.one_line()


# --- through the CLI ---------------------------------------------------------------------------
def _task(tmp_path: Path, template: str) -> Path:
    write_jsonl(tmp_path / "data.jsonl",
                [{"id": f"e{i}", "text": f"item {i}", "label": "yes"} for i in range(12)])
    (tmp_path / "evil.yaml").write_text(yaml.safe_dump({"name": "evil", "template": template}))
    config = {"name": "t", "data": {"path": "data.jsonl", "input": ["text"], "target": "label",
                                    "id": "id"},
              "splits": {"train": 4, "validation": 4, "test": 4, "seed": 0}, "metric": "exact",
              "model": "fake:yes", "prompt": "evil.yaml"}
    (tmp_path / "task.yaml").write_text(yaml.safe_dump(config))
    return tmp_path / "task.yaml"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "promptmill.cli.app", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def _assert_refused(proc: subprocess.CompletedProcess, marker: Path) -> None:
    assert not marker.exists()
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


CLI_CASES = {"eval": ["eval", "task.yaml"],
             "optimize": ["optimize", "task.yaml", "--budget-calls", "20", "--quiet"]}


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(CLI_CASES))
@pytest.mark.parametrize("name", ["cycler-globals", "mro-subclasses", "concatenated-attr",
                                  "huge-repeat"])
def test_cli_commands_refuse_template_payloads(command, name, tmp_path, marker):
    template = _payload({**STATIC_PAYLOADS, **DYNAMIC_PAYLOADS}[name], marker)
    _task(tmp_path, template)
    proc = _cli(*CLI_CASES[command], cwd=tmp_path)
    _assert_refused(proc, marker)
    if name in STATIC_PAYLOADS:  # refused on load: the file and the field are named
        assert "evil.yaml" in proc.stderr and "template" in proc.stderr


@pytest.mark.slow
def test_prompts_import_refuses_a_payload_and_names_the_file(tmp_path, marker):
    doc = {"promptmill_prompt": 1, "name": "evil",
           "prompt": {"template": _payload(STATIC_PAYLOADS["cycler-globals"], marker)}}
    (tmp_path / "evil.json").write_text(json.dumps(doc))
    proc = _cli("prompts", "import", "evil.json", cwd=tmp_path)
    _assert_refused(proc, marker)
    assert "evil.json" in proc.stderr and "template" in proc.stderr


# --- stored versions, export, reports, judges ---------------------------------------------------
def test_a_stored_payload_cannot_run_when_served(store, marker):
    """A version written by an older promptmill (no load-time check) is stopped by the sandbox."""
    from promptmill.models.fake import FakeModel
    from promptmill.serve.render import load_served_prompt

    body = {"template": _payload(DYNAMIC_PAYLOADS["concatenated-attr"], marker)}
    store.save_prompt("stored", body, "h" * 16)
    served = load_served_prompt(store, "stored", model=FakeModel(default="ok"))
    with pytest.raises(PromptmillError):
        served.render({"text": "hi"})
    assert not marker.exists()


def test_the_python_export_cannot_be_broken_out_of(store, tmp_path, marker):
    """A prompt's name lands in the snippet's docstring; it must stay text."""
    from promptmill.portable import python_snippet

    name = f'x"""\nopen({str(marker)!r}, "w").write("x")\n"""'
    doc = {"promptmill_prompt": 1, "name": name, "version": 1,
           "prompt": {"template": "Q: {{ q }}", "instruction": 'say """ and \\ and {{ q }}'}}
    source = python_snippet(doc)
    path = tmp_path / "snippet.py"
    path.write_text(source)
    subprocess.run([sys.executable, str(path), '{"q": "hi"}'], check=True, capture_output=True)
    assert not marker.exists()


def test_the_diagnosis_report_shows_template_syntax_in_outputs_literally(store):
    from promptmill.diagnosis import diagnose
    from promptmill.diagnosis.report import render_html
    from promptmill.evaluation import Evaluator
    from promptmill.metrics import get_metric
    from promptmill.models.fake import FakeModel
    from promptmill.task import Example

    examples = [Example(id=str(i), inputs={"input": f"q{i}"}, target="yes") for i in range(4)]
    model = FakeModel(default="{{ 7 * 7 }}{% raw %}<script>alert(1)</script>")
    result = Evaluator(model, get_metric("exact"), store).evaluate(examples, Prompt(), task="t")
    html = render_html(diagnose(result.run_id, store=store))
    assert "{{ 7 * 7 }}" in html and ">49<" not in html
    assert "<script>alert(1)" not in html


def test_a_judge_rubric_is_sent_as_text_never_rendered(marker):
    from promptmill.metrics.judge import LLMJudge
    from promptmill.models.fake import FakeModel
    from promptmill.task import Example

    seen: list[str] = []

    class Recording(FakeModel):
        def generate(self, request, params):
            seen.append(json.dumps(request))
            return super().generate(request, params)

    rubric = _payload(STATIC_PAYLOADS["cycler-globals"], marker)
    judge = LLMJudge(rubric=rubric, judge_model=Recording(default="Score: 5"))
    judge.score("an answer", Example(id="1", inputs={"q": "x"}, target="expected"))
    assert not marker.exists()
    assert any("cycler.__init__.__globals__" in s for s in seen)


@pytest.mark.slow
def test_a_stored_version_with_a_payload_is_one_line_naming_the_version(tmp_path, marker):
    """A store written before the load-time check may hold such a version: reading it back
    names NAME@VERSION and the field, exit 2."""
    from promptmill.store.db import Store

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Store(url)
    old.save_prompt("legacy", {"template": _payload(STATIC_PAYLOADS["lipsum-globals"], marker)},
                    "0" * 16)
    old.close()
    proc = _cli("--db", url, "prompts", "show", "legacy", cwd=tmp_path)
    _assert_refused(proc, marker)
    assert "legacy@1" in proc.stderr and "template" in proc.stderr
