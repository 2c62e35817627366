"""Export and import of prompt versions, and the standalone snippet run without promptmill."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import run_main

from promptmill.constrain import OutputSpec
from promptmill.errors import ConfigError
from promptmill.portable import export_prompt, import_prompt, python_snippet, read_document
from promptmill.prompt import Demo, Prompt
from promptmill.store.db import Store

RICH = Prompt(name="rich", instruction="Classify the ticket.\nBe brief.",
              template="Subject: {{ subject }}\r\nBody: {{body}}\n",
              demos=(Demo(inputs={"subject": "Refund", "body": "I want my money"},
                          output="billing"),
                     Demo(inputs={"subject": "Crash", "body": "App dies on start"},
                          output="bug")),
              context_slots=("policy",), output_spec=OutputSpec(labels=("billing", "bug")),
              max_tokens=4, extract="first_line", answer_prefix="Label:")
PLAIN = Prompt(name="plain", instruction="", template="{{ text }}", output_format="One word.")


def _saved(store, prompt: Prompt, tags=("production",), note="from the optimizer"):
    row = store.save_prompt(prompt.name, prompt.content(), prompt.hash, note=note)
    for tag in tags:
        store.tag_prompt(prompt.name, row["version"], tag)
    return row


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_export_then_import_restores_the_version_exactly(store, tmp_path, fmt):
    _saved(store, PLAIN)
    row = _saved(store, RICH)
    path = tmp_path / f"rich.{fmt}"
    path.write_text(export_prompt(store, "rich@production", fmt))
    other = Store(f"sqlite:///{tmp_path / 'other.db'}")
    imported = import_prompt(other, path)
    again = import_prompt(other, path)
    back = other.get_prompt("rich", "production")
    restored = Prompt.model_validate({**json.loads(back["body"]), "name": "rich"})
    assert restored == RICH and back["hash"] == row["hash"] == RICH.hash
    assert json.loads(back["body"]) == json.loads(row["body"])
    assert back["note"] == "from the optimizer"
    assert imported["id"] == again["id"]  # importing twice keeps one version
    assert other.list_prompts()[0]["tags"] == ["production"]
    other.close()


def test_an_edited_export_is_refused_unless_its_hash_is_removed(store, tmp_path):
    _saved(store, RICH)
    doc = json.loads(export_prompt(store, "rich", "json"))
    doc["prompt"]["instruction"] = "Something else."
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="edited after export"):
        import_prompt(store, path)
    del doc["hash"]
    path.write_text(json.dumps(doc))
    assert import_prompt(store, path)["version"] == 2


def test_bad_files_get_clear_errors(store, tmp_path):
    (tmp_path / "other.json").write_text('{"name": "x"}')
    (tmp_path / "broken.yaml").write_text("promptmill_prompt: [1\n")
    with pytest.raises(ConfigError, match="not a promptmill prompt export"):
        read_document(tmp_path / "other.json")
    with pytest.raises(ConfigError, match="cannot parse"):
        read_document(tmp_path / "broken.yaml")
    with pytest.raises(ConfigError, match="file not found"):
        read_document(tmp_path / "missing.json")
    with pytest.raises(ConfigError, match="unknown prompt export format"):
        export_prompt(store, "x", "toml")


def _isolated_python(script, *args: str, cwd) -> subprocess.CompletedProcess:
    """-I: no PYTHONPATH, no user site, no script dir; -S: no site-packages at all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run([sys.executable, "-I", "-S", str(script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_snippet_renders_exactly_without_promptmill_or_jinja(store, tmp_path):
    _saved(store, RICH)
    snippet = tmp_path / "rich_prompt.py"
    snippet.write_text(export_prompt(store, "rich@production", "python"))
    probe = tmp_path / "probe.py"
    probe.write_text("import sys, json\n"
                     "for name in ('promptmill', 'jinja2', 'pydantic'):\n"
                     "    try:\n        __import__(name)\n        print(name, 'importable')\n"
                     "    except ImportError:\n        pass\n"
                     "sys.path.insert(0, sys.argv[1])\nimport rich_prompt as p\n"
                     "inputs = {'subject': 'Login', 'body': 'Password {{ reset }} fails'}\n"
                     "ctx = {'policy': 'Refunds within 30 days.'}\n"
                     "print(json.dumps([p.messages(inputs, ctx), p.completion_text(inputs, ctx),"
                     " p.RESPONSE_FORMAT, p.MAX_TOKENS, p.HASH]))\n")
    done = _isolated_python(probe, str(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "importable" not in done.stdout  # nothing but the standard library was reachable
    messages, text, response_format, max_tokens, digest = json.loads(done.stdout)
    inputs = {"subject": "Login", "body": "Password {{ reset }} fails"}
    ctx = {"policy": "Refunds within 30 days."}
    assert messages == RICH.render_messages(inputs, ctx)
    assert text == RICH.render_text(inputs, ctx)
    assert response_format == RICH.output_spec.response_format()
    assert (max_tokens, digest) == (4, RICH.hash)


def test_snippet_command_line_and_missing_field(store, tmp_path):
    _saved(store, PLAIN)
    snippet = tmp_path / "plain.py"
    snippet.write_text(export_prompt(store, "plain", "python"))
    done = _isolated_python(snippet, '{"text": "great phone"}', cwd=tmp_path)
    assert json.loads(done.stdout) == PLAIN.render_messages({"text": "great phone"})
    as_text = _isolated_python(snippet, '{"text": "great phone"}', "--text", cwd=tmp_path)
    assert json.loads(as_text.stdout) == PLAIN.render_text({"text": "great phone"})
    missing = _isolated_python(snippet, '{"other": 1}', cwd=tmp_path)
    assert missing.returncode != 0 and "the template uses 'text'" in missing.stderr


def test_snippet_refuses_templates_beyond_plain_fields(store):
    prompt = Prompt(name="loop", template="{% for x in items %}{{ x }}{% endfor %}")
    _saved(store, prompt)
    with pytest.raises(ConfigError, match="beyond"):
        export_prompt(store, "loop", "python")
    doc = json.loads(export_prompt(store, "loop", "json"))
    doc["prompt"]["template"] = "{{ name | upper }}"
    del doc["hash"]
    with pytest.raises(ConfigError, match="beyond"):
        python_snippet(doc)


def test_cli_export_and_import(store, tmp_path, capsys, sqlite_url):
    _saved(store, RICH)
    out = tmp_path / "rich.yaml"
    code, text = run_main(["--db", sqlite_url, "prompts", "export", "rich@production",
                           "--format", "yaml", "--out", out], capsys)
    assert code in (0, None) and "wrote rich@production" in text
    other = f"sqlite:///{tmp_path / 'other.db'}"
    code, text = run_main(["--db", other, "prompts", "import", out], capsys)
    assert code in (0, None) and f"imported rich@1 (hash {RICH.hash})" in text
    code, text = run_main(["--db", other, "prompts", "export", "rich@nope"], capsys)
    assert code == 2 and "no prompt 'rich@nope'" in text
