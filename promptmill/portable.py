"""Prompt versions out of and back into a store: JSON, YAML, or a standalone Python snippet.

JSON and YAML hold the version's full content with its name, version number, tags, note and
content hash; importing checks the hash, so what comes back is provably the same prompt. The
Python snippet renders the prompt with the standard library only (no promptmill, no Jinja2):
everything that does not depend on the input (system text, demos) is rendered here by
promptmill itself and embedded as data, and only the ``{{ field }}`` substitutions of the final
user message happen at run time. Templates that need more of Jinja2 are refused, with a note to
use JSON or YAML instead; every snippet is checked against promptmill's own rendering before it
is written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from pprint import pformat
from typing import Any

from .errors import ConfigError
from .prompt import Prompt, parse_prompt_ref
from .store.db import Store

FORMAT_KEY = "promptmill_prompt"
FORMAT_VERSION = 1
FORMATS = ("json", "yaml", "python")
_FIELD = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_JINJA_SYNTAX = re.compile(r"\{\{|\{%|\{#|\}\}|%\}|#\}")


# --- documents -----------------------------------------------------------------------------------
def prompt_document(store: Store, ref: str) -> dict[str, Any]:
    """NAME[@VERSION|@TAG] from the store as a plain dict (what JSON and YAML files hold)."""
    name, version = parse_prompt_ref(ref)
    row = store.get_prompt(name, version)
    tags: list[str] = next((r["tags"] for r in store.list_prompts(row["name"])
                            if r["id"] == row["id"]), [])
    return {FORMAT_KEY: FORMAT_VERSION, "name": row["name"], "version": row["version"],
            "hash": row["hash"], "tags": tags, "note": row["note"],
            "prompt": json.loads(row["body"])}


def export_prompt(store: Store, ref: str, fmt: str = "json") -> str:
    """The text of an export file in ``fmt`` (json, yaml or python)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown prompt export format '{fmt}'", where="--format",
                          fix="use json, yaml or python")
    doc = prompt_document(store, ref)
    if fmt == "json":
        return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    return python_snippet(doc)


def read_document(path: str | Path) -> dict[str, Any]:
    """An export file (JSON or YAML) as a checked document."""
    import yaml

    from .task import read_user_text

    path = Path(path)
    text = read_user_text(path, missing_fix="give an exported .json or .yaml file",
                          error=ConfigError)
    try:
        if path.suffix == ".json" or text.lstrip().startswith("{"):
            doc = json.loads(text)
        else:
            doc = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"cannot parse the file ({detail})", where=str(path),
                          fix="give a file written by 'promptmill prompts export'") from None
    return _checked(doc, str(path))


def _checked(doc: Any, where: str) -> dict[str, Any]:
    if not isinstance(doc, dict) or doc.get(FORMAT_KEY) != FORMAT_VERSION:
        raise ConfigError("not a promptmill prompt export", where=where,
                          fix=f"give a file written by 'promptmill prompts export' (it has "
                              f"'{FORMAT_KEY}: {FORMAT_VERSION}')")
    for key in ("name", "prompt"):
        if key not in doc:
            raise ConfigError(f"the export has no '{key}'", where=where,
                              fix="export the prompt again")
    return doc


def document_prompt(doc: dict[str, Any], where: str = "prompt export") -> Prompt:
    """The Prompt in a document, after checking its content hash."""
    from pydantic import ValidationError

    try:
        prompt = Prompt.model_validate({**doc["prompt"], "name": doc["name"]})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err.get("loc", ()))
        raise ConfigError(f"bad prompt content ({err.get('msg')})", where=f"{where}: prompt."
                          f"{field}", fix="export the prompt again or correct the field") from None
    if doc.get("hash") and doc["hash"] != prompt.hash:
        raise ConfigError(f"the content hash is {prompt.hash}, but the file says {doc['hash']}: "
                          "the prompt was edited after export", where=f"{where}: hash",
                          fix="delete the 'hash' line to import the edited prompt as new content")
    return prompt


def import_prompt(store: Store, path: str | Path, *, name: str | None = None,
                  tags: bool = True) -> dict[str, Any]:
    """Save an exported prompt version (and its tags) in ``store``; returns the stored row.

    Importing the same content twice returns the existing version, so imports are idempotent.
    """
    doc = read_document(path)
    prompt = document_prompt(doc, str(path))
    target = name or doc["name"]
    row = store.save_prompt(target, prompt.content(), prompt.hash, note=doc.get("note"))
    for tag in (doc.get("tags") or []) if tags else []:
        store.tag_prompt(target, row["version"], tag)
    return row


# --- the standalone snippet ----------------------------------------------------------------------
def template_parts(template: str, where: str = "template") -> list[tuple[str, str]]:
    """('text', literal) and ('field', name) pieces, or a ConfigError for other Jinja syntax."""
    # Jinja2 normalizes line endings and, as promptmill configures it, drops one final newline
    source = template.replace("\r\n", "\n").replace("\r", "\n")
    source = source[:-1] if source.endswith("\n") else source
    parts, last = [], 0
    for match in _FIELD.finditer(source):
        parts.append(("text", source[last:match.start()]))
        parts.append(("field", match.group(1)))
        last = match.end()
    parts.append(("text", source[last:]))
    for kind, text in parts:
        if kind == "text" and _JINJA_SYNTAX.search(text):
            raise ConfigError("the template uses Jinja2 syntax beyond '{{ field }}', which the "
                              "standalone snippet cannot render", where=where,
                              fix="export as json or yaml and render with promptmill")
    return [p for p in parts if p != ("text", "")]


def python_snippet(doc: dict[str, Any]) -> str:
    """A Python file that renders the prompt with the standard library only."""
    prompt = document_prompt(doc)
    ref = f"{doc['name']}@{doc.get('version', '?')}"
    parts = template_parts(prompt.template, f"prompt {ref}: template")
    empty = {s: "" for s in prompt.context_slots} if prompt.context_slots else None
    demo_messages = _demo_messages(prompt, empty)
    data = {
        "NAME": doc["name"], "VERSION": doc.get("version"), "HASH": prompt.hash,
        "SYSTEM": prompt.system_text(), "DEMO_MESSAGES": demo_messages,
        "COMPLETION_PREFIX": _completion_prefix(prompt, empty),
        "ANSWER_PREFIX": prompt.answer_prefix, "TEMPLATE_PARTS": parts,
        "CONTEXT_SLOTS": list(prompt.context_slots),
        "RESPONSE_FORMAT": prompt.output_spec.response_format() if prompt.output_spec else None,
        "MAX_TOKENS": prompt.max_tokens, "EXTRACT": prompt.extract,
        "PROMPT": doc["prompt"],
    }
    retrieval = _RETRIEVAL_NOTE if prompt.demo_selection else ""
    source = _SNIPPET_HEAD.format(ref=_docstring_safe(ref), retrieval=retrieval)
    source += "".join(f"{k} = {pformat(v, width=96, sort_dicts=False)}\n" for k, v in data.items())
    source += _SNIPPET_BODY
    _self_check(source, prompt, ref)
    return source


def _docstring_safe(text: str) -> str:
    """``text`` as it may stand inside the generated file's docstring: no quote, backslash or
    line break of it can end the string, so a prompt's name can never become code."""
    return json.dumps(text, ensure_ascii=True)[1:-1]


def _demo_messages(prompt: Prompt, empty: dict[str, str] | None) -> list[dict[str, str]]:
    messages = prompt.render_messages({f: "" for f in prompt.variables()}, empty or None)
    return messages[(1 if prompt.system_text() else 0):-1]


def _completion_prefix(prompt: Prompt, empty: dict[str, str] | None) -> str:
    parts = [prompt.system_text()] if prompt.system_text() else []
    for i, demo in enumerate(prompt.demos):
        shown = prompt.render_input(demo.inputs, empty, where=f"demo {i + 1}")
        parts.append(f"{shown}\n{prompt.answer_prefix} {demo.output}")
    return "\n\n".join(parts)


def _self_check(source: str, prompt: Prompt, ref: str) -> None:
    """Run the snippet here on probe inputs; it must render exactly what promptmill renders."""
    namespace: dict[str, Any] = {"__name__": "promptmill_snippet_check"}
    exec(compile(source, f"<snippet {ref}>", "exec"), namespace)  # our own code
    inputs = {f: f"<{f} 1\n2>" for f in prompt.variables()}
    context = {s: f"<{s}>" for s in prompt.context_slots} or None
    same = (namespace["messages"](inputs, context) == prompt.render_messages(inputs, context)
            and namespace["completion_text"](inputs, context)
            == prompt.render_text(inputs, context))
    if not same:
        raise ConfigError("the standalone snippet would not render this prompt exactly",
                          where=f"prompt {ref}", fix="export as json or yaml instead")


_RETRIEVAL_NOTE = """
This prompt version retrieves its demos per input from a task's training data; this file
cannot do that retrieval and renders it with no demos. Serve it with 'promptmill serve'.
"""

_SNIPPET_HEAD = '''"""Prompt {ref}, exported by promptmill. Needs only the Python standard library.

    messages(inputs)          -> chat messages for any OpenAI-compatible API
    completion_text(inputs)   -> one string for completion (base) models
    RESPONSE_FORMAT           -> the output spec as an OpenAI response_format, or None

Command line: python THIS_FILE '{{"field": "value"}}' [--text]
{retrieval}"""

import json
import sys

'''

_SNIPPET_BODY = '''

def render_user(inputs, context=None):
    """The final user message: context slots first, then the template with the inputs."""
    missing = [s for s in CONTEXT_SLOTS if not context or s not in context]
    if missing:
        raise KeyError(f"context slot {missing[0]!r} has no value; pass context={{...}}")
    body = []
    for kind, value in TEMPLATE_PARTS:
        if kind == "text":
            body.append(value)
        elif value in inputs:
            body.append(str(inputs[value]))
        else:
            raise KeyError(f"the template uses {value!r}, which the inputs lack "
                           f"(given: {', '.join(sorted(inputs)) or 'none'})")
    blocks = [f"{s.replace('_', ' ').capitalize()}:\\n{context[s]}" for s in CONTEXT_SLOTS]
    return "\\n\\n".join([*blocks, "".join(body)])


def messages(inputs, context=None):
    system = [{"role": "system", "content": SYSTEM}] if SYSTEM else []
    user = {"role": "user", "content": render_user(inputs, context)}
    return [*system, *[dict(m) for m in DEMO_MESSAGES], user]


def completion_text(inputs, context=None):
    last = f"{render_user(inputs, context)}\\n{ANSWER_PREFIX}"
    return f"{COMPLETION_PREFIX}\\n\\n{last}" if COMPLETION_PREFIX else last


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--text"]
    given = json.loads(args[0] if args else sys.stdin.read())
    rendered = completion_text(given) if "--text" in sys.argv else messages(given)
    print(json.dumps(rendered, ensure_ascii=False, indent=2))
'''
