"""promptfoo configs read as they are, and written back.

``promptmill test promptfooconfig.yaml`` reads promptfoo's own format into a :class:`Suite`:
the same prompts, providers, tests and assertions, with the same meaning, or a one-line error
that names the file, the line and what to write instead. Nothing is dropped silently: a key
that changes no result (``outputPath``, ``sharing``, ...) is ignored with a warning line; a
key that would change results and that promptmill cannot honour is an error.

What maps to what:

- ``prompts``: inline strings, ``file://`` text files (``.txt`` split at ``---`` lines, ``.md``,
  ``.j2``), JSON or YAML chat prompts (``.json``, ``.yaml``, ``.jsonl`` one per line, or an
  inline JSON string), ``.csv`` (``prompt`` and ``label`` columns), globs, and
  ``{id|raw, label, config}`` objects. A chat prompt becomes a :class:`Prompt`: the system
  message is the instruction, earlier user/assistant pairs are demos, the last user message
  is the template. No ``prompts`` means promptfoo's passthrough ``{{ prompt }}``.
- ``providers`` (or ``targets``): ``openai:chat:MODEL`` / ``openai:MODEL`` with
  ``config.apiBaseUrl`` (or ``apiHost``) and ``apiKeyEnvar`` -> promptmill's OpenAI-compatible
  backend (``OPENAI_BASE_URL`` is read by the backend itself, as promptfoo reads it);
  ``ollama:chat:MODEL`` and the hosted OpenAI-compatible APIs promptfoo knows (openrouter,
  deepseek, groq, togetherai, fireworks, perplexity, cerebras, lambdalabs, xai) -> the same
  backend at their address; ``promptmill:SPEC`` (``promptmill:embedded``) -> any promptmill
  model. ``temperature``, ``max_tokens``, ``top_p``, ``seed``, ``stop`` -> the suite's
  generation settings (one per suite, so providers must agree; promptfoo's defaults are
  temperature 0 and 1024 tokens).
- ``tests``: inline, ``file://`` CSV (``__expected``/``__expectedN`` columns in promptfoo's
  ``contains:``/``icontains:``/``grade:``/plain-equals syntax, ``__description``,
  ``__threshold``, ``__metric``), YAML, JSON, JSONL, globs; ``vars`` given as files;
  ``file://`` var values (text is read and trimmed, YAML becomes its JSON text); list vars
  expand to one case per combination; vars that refer to other vars are resolved.
- ``defaultTest``, ``evaluateOptions.repeat``, ``assertionTemplates`` with ``$ref``, and the
  assertion types with their promptfoo names (checked by :mod:`promptmill.suites.checks`).

Templates are Nunjucks in promptfoo and sandboxed Jinja2 here. They agree on nearly all
syntax and filters; :func:`nunjucks_problem` finds, before any call, what Jinja2 would render
differently or not at all: the filters ``dump`` (use ``tojson``), ``nl2br`` and promptfoo's
``load``, custom ``nunjucksFilters``, the tests ``truthy``/``falsy``/``null``, JavaScript
members such as ``.length`` or ``.toUpperCase()``, ``{% elseif %}``, regex literals
``r/.../``, ``===``/``!==``, async tags, and the ``env`` global. One difference stays: Nunjucks
renders a missing var as empty text, promptmill refuses to render it (the suite check names it).

:func:`export_promptfoo` writes a suite as a promptfoo config that this module reads back to the
same suite (prompts are written inline; a token ``cost`` ceiling and the promptmill-only
assertion types are flagged with a warning, as promptfoo would read them differently).
"""

from __future__ import annotations

import csv
import functools
import glob
import io
import itertools
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import ConfigError, validator_words
from ..prompt import Demo, Prompt
from ..yamlfile import read_yaml
from .model import NEGATION, Assertion, Case, ModelEntry, PromptEntry, Suite, SuiteGeneration

if TYPE_CHECKING:
    from ..store.db import Store

__all__ = ["export_promptfoo", "load_promptfoo", "nunjucks_problem", "write_promptfoo"]

LOG = logging.getLogger(__name__)
FILE = "file://"
PROMPT_SEPARATOR = "---"
PASSTHROUGH = "{{ prompt }}"
SUITE_TAG = "suite"  # tags.suite carries the suite's name through an export
MAX_REF_DEPTH = 20
SUPPORTED_PROVIDERS = ("use openai:chat:MODEL (with config.apiBaseUrl for any OpenAI-compatible "
                       "server: vLLM, llama.cpp, LiteLLM, Ollama's /v1) or promptmill:SPEC "
                       "(e.g. promptmill:embedded, promptmill:gguf:PATH)")


# --- where in the files -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Spot:
    """A place in a promptfoo file: ``FILE:LINE`` of a part, found from the YAML nodes."""

    path: Path
    root: yaml.Node | None = None
    keys: tuple[Any, ...] = ()
    line: int | None = None  # a fixed line (a CSV row, a JSONL line): keys are not looked up

    def at(self, *more: Any) -> str:
        if self.line is not None or self.root is None:
            return f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        node: yaml.Node | None = self.root
        line = None
        for key in (*self.keys, *more):
            node = _child(node, key)
            if node is None:
                break
            line = node.start_mark.line + 1
        return f"{self.path}:{line}" if line is not None else str(self.path)

    def sub(self, *more: Any) -> _Spot:
        return self if self.line is not None else _Spot(self.path, self.root, (*self.keys, *more))


def _child(node: yaml.Node | None, key: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if getattr(k, "value", None) == str(key)), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(
            node.value):
        return node.value[key]
    return None


def _warn(where: str, message: str) -> None:
    LOG.warning("%s: %s", where, message)


def _refuse(what: str, where: str, fix: str) -> ConfigError:
    return ConfigError(f"{what} is not supported", where=where, fix=fix)


# --- the top level ----------------------------------------------------------------------------
# Keys that change no result: ignored, with a warning line.
_IGNORED_KEYS = {
    "outputPath": "promptmill writes results with --output",
    "sharing": "promptmill shares nothing; results stay in the store",
    "metadata": "promptmill does not filter by metadata",
    "writeLatestResults": "every suite run is stored",
    "commandLineOptions": "give options on promptmill's command line",
    "derivedMetrics": "promptmill reports named metric groups, not formulas over them",
    "tracing": "promptmill records every call in its store",
}
# Keys that would change results and that promptmill cannot honour: an error each.
_REFUSED_KEYS = {
    "scenarios": ("promptfoo scenarios", "write each scenario's tests as plain tests"),
    "nunjucksFilters": ("custom Nunjucks filters (JavaScript)",
                        "use Jinja2's built-in filters in the templates"),
    "extensions": ("extension hooks (code run around the eval)",
                   "remove them; promptmill runs no hooks"),
    "env": ("setting environment variables from the config",
            "export them in the shell before running (an API key never goes in a file)"),
    "redteam": ("a promptfoo red-team config (it generates attacks, not a test suite)",
                "run it with promptfoo redteam; give promptmill a config with tests"),
}
_MAPPED_KEYS = frozenset({"description", "prompts", "providers", "targets", "tests",
                          "defaultTest", "evaluateOptions", "tags", "assertionTemplates"})
_IGNORED_EVALUATE = frozenset({"maxConcurrency", "delay", "showProgressBar", "cache",
                               "timeoutMs", "maxEvalTimeMs", "interactiveProviders",
                               "generateSuggestions", "silent"})


def load_promptfoo(path: str | Path) -> Suite:
    """A promptfoo config (YAML or JSON) as a :class:`Suite`, or one-line ConfigError."""
    path = Path(path)
    if path.suffix in (".js", ".cjs", ".mjs", ".ts"):
        raise _refuse("a JavaScript or TypeScript promptfoo config", str(path),
                      "write the config as promptfooconfig.yaml")
    data, root = read_yaml(path, what="promptfoo config")
    if not isinstance(data, dict):
        raise ConfigError("a promptfoo config is a mapping of settings", where=str(path),
                          fix="write it as 'key: value' lines (prompts, providers, tests)")
    return _Loader(path, data, root).suite()


class _Loader:
    """One config file read section by section; every error names its file and line."""

    def __init__(self, path: Path, data: dict[str, Any], root: yaml.Node | None):
        self.path, self.base_dir = path, path.parent
        self.top = _Spot(path, root)
        self.refs: set[str] = set()
        self.data = _deref(data, data, self.top, self.refs)
        self.judge: Any = None  # defaultTest.options.provider: the grader of llm-rubric
        self.unjudged = False  # an llm-rubric with no grader named anywhere
        self.literal: list[str] = []  # var values that look like templates and are not

    def suite(self) -> Suite:
        self._check_keys()
        prompts = _Prompts(self).entries(self.data.get("prompts"))
        models, generation = _Providers(self).entries(self._providers())
        tests = _Tests(self)
        default = tests.default_case(self.data.get("defaultTest"))
        cases = tests.cases(self.data.get("tests"), default)
        if self.literal:
            _warn(self.literal[0], f"{len(self.literal)} var value(s) hold {{{{ but are no "
                                   "template; kept as text (promptfoo would fail those tests)")
        if self.unjudged:
            _warn(self.top.at(), "llm-rubric without a provider is graded by promptmill's "
                                 "default judge, not promptfoo's default OpenAI grader; set "
                                 "defaultTest.options.provider to choose the judge")
        body = {"name": self._name(), "description": self.data.get("description"),
                "prompts": prompts, "models": models, "cases": cases,
                "default_test": tests.kept_default(default), "repeat": self._repeat(),
                "generation": generation}
        return _validated(Suite, {**body, "source": str(self.path), "base_dir": self.base_dir},
                          self.top.at())

    def _check_keys(self) -> None:
        for key in self.data:
            where = self.top.at(key)
            if key in _REFUSED_KEYS:
                what, fix = _REFUSED_KEYS[key]
                raise _refuse(what, where, fix)
            if key in _IGNORED_KEYS:
                _warn(where, f"'{key}' is ignored ({_IGNORED_KEYS[key]})")
            elif key not in _MAPPED_KEYS and key not in self.refs:
                raise ConfigError(f"unknown promptfoo key '{key}'", where=where,
                                  fix="remove it or use one of: " + ", ".join(sorted(
                                      _MAPPED_KEYS | set(_IGNORED_KEYS))))
        if "providers" in self.data and "targets" in self.data:
            raise ConfigError("both 'providers' and 'targets' are given", where=self.top.at(
                "targets"), fix="keep one of them (targets is promptfoo's other name)")

    def _providers(self) -> Any:
        return self.data.get("providers", self.data.get("targets"))

    def _name(self) -> str:
        tags = self.data.get("tags") or {}
        if not isinstance(tags, dict):
            raise ConfigError("'tags' must be a mapping", where=self.top.at("tags"),
                              fix="write tags as 'key: value' lines")
        others = sorted(set(tags) - {SUITE_TAG})
        if others:
            _warn(self.top.at("tags"), f"tags {', '.join(others)} are ignored")
        if tags.get(SUITE_TAG):
            return str(tags[SUITE_TAG])
        stem = self.path.stem  # promptfooconfig.claude.yaml in amazon-bedrock/: that folder
        if not stem.startswith("promptfooconfig"):
            return stem
        folder = self.path.resolve().parent.name or "promptfoo"
        return folder + stem.removeprefix("promptfooconfig")

    def _repeat(self) -> int:
        options = self.data.get("evaluateOptions") or {}
        spot = self.top.sub("evaluateOptions")
        if not isinstance(options, dict):
            raise ConfigError("'evaluateOptions' must be a mapping", where=spot.at(),
                              fix="write it as 'repeat: N' lines")
        for key in options:
            if key in _IGNORED_EVALUATE:
                _warn(spot.at(key), f"evaluateOptions.{key} is ignored (it changes no result)")
            elif key != "repeat":
                raise _refuse(f"evaluateOptions.{key}", spot.at(key),
                              "remove it; of evaluateOptions promptmill reads repeat")
        repeat = options.get("repeat", 1)
        if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
            raise ConfigError(f"evaluateOptions.repeat must be a whole number of 1 or more "
                              f"(got {repeat!r})", where=spot.at("repeat"), fix="write e.g. 3")
        return repeat

    # --- shared helpers ---------------------------------------------------------------------
    def file(self, reference: str, where: str, base: Path | None = None) -> Path:
        """The file a ``file://`` reference names (relative to the config), which must exist."""
        path = Path(reference.removeprefix(FILE)).expanduser()
        path = path if path.is_absolute() else (base or self.base_dir) / path
        if not path.is_file():
            raise ConfigError(f"the file '{reference}' does not exist", where=where,
                              fix="check the path (relative paths are relative to the config)")
        return path

    def files(self, reference: str, where: str, base: Path | None = None) -> list[Path]:
        """A ``file://`` reference or glob: the files it names, sorted; none is an error."""
        text = reference.removeprefix(FILE)
        if not any(ch in text for ch in "*?["):
            return [self.file(reference, where, base)]
        pattern = text if Path(text).is_absolute() else str((base or self.base_dir) / text)
        found = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
        if not found:
            raise ConfigError(f"no file matches '{reference}'", where=where,
                              fix="check the pattern (relative to the config)")
        return found


def _deref(value: Any, data: dict[str, Any], spot: _Spot, used: set[str],
           depth: int = 0) -> Any:
    """promptfoo's ``$ref: '#/assertionTemplates/name'``, replaced by what it points at."""
    if depth > MAX_REF_DEPTH:
        raise ConfigError("$ref entries refer to each other in a loop", where=spot.at(),
                          fix="make every $ref point at a plain value")
    if isinstance(value, list):
        return [_deref(v, data, spot, used, depth) for v in value]
    if not isinstance(value, dict):
        return value
    if "$ref" in value:
        return _deref(_pointed(value["$ref"], data, spot, used), data, spot, used, depth + 1)
    return {k: _deref(v, data, spot, used, depth) for k, v in value.items()}


def _pointed(ref: Any, data: dict[str, Any], spot: _Spot, used: set[str]) -> Any:
    if not isinstance(ref, str) or not ref.startswith("#/"):
        raise _refuse(f"the $ref {ref!r} (only references inside the file, '#/key/name')",
                      spot.at(), "copy the referenced part into this file")
    target: Any = data
    parts = [p.replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/")]
    for part in parts:
        if isinstance(target, dict) and part in target:
            target = target[part]
        elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        else:
            raise ConfigError(f"the $ref '{ref}' points at nothing", where=spot.at(),
                              fix="check the names in the reference")
    used.add(parts[0])
    return target


def _validated(model: type[BaseModel], body: dict[str, Any], where: str) -> Any:
    """A pydantic model built from promptfoo's parts; its first problem as a ConfigError."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ())) or "(value)"
        message, fix = validator_words(err)
        raise ConfigError(f"{field}: {message}", where=where,
                          fix=fix or "correct the value") from None


# --- prompts ----------------------------------------------------------------------------------
_CHAT_ROLES = ("system", "user", "assistant")
_PROMPT_FUNCTIONS = (".py", ".js", ".cjs", ".mjs", ".ts", ".cts", ".mts")
# a code file, or a function in one: file://prompt.py:make, tests.ts:generate
_CODE_FILE = re.compile(r"\.(py|js|cjs|mjs|ts|cts|mts)(:[\w.]+)?$")
_PATH_LIKE = re.compile(r"\.(txt|md|j2|json|jsonl|ya?ml|csv|py|js|ts|mjs|cjs)(:\w+)?$")


class _Prompts:
    def __init__(self, loader: _Loader):
        self.loader = loader
        self.spot = loader.top.sub("prompts")

    def entries(self, value: Any) -> list[PromptEntry]:
        if value is None:
            return [PromptEntry(prompt=Prompt(template=PASSTHROUGH))]
        items = self._items(value)
        entries: list[PromptEntry] = []
        for index, item in enumerate(items):
            entries.extend(self._entry(item, self.spot.sub(index)))
        if not entries:
            raise ConfigError("the config lists no prompts", where=self.spot.at(),
                              fix="add prompts: - 'your prompt with {{ var }}'")
        return entries

    def _items(self, value: Any) -> list[Any]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict):  # promptfoo's older form {file: label}
            return [{"raw": raw, "label": label} for raw, label in value.items()]
        if isinstance(value, list):
            return value
        raise ConfigError("'prompts' must be a list of prompts", where=self.spot.at(),
                          fix="write prompts: - 'text with {{ var }}' or - file://prompt.txt")

    def _entry(self, item: Any, spot: _Spot) -> list[PromptEntry]:
        if isinstance(item, str):
            return [PromptEntry(prompt=p, label=None) for p in self._from_raw(item, spot)]
        if not isinstance(item, dict):
            raise ConfigError("a prompt is a string or a mapping with raw/id and label",
                              where=spot.at(), fix="write - 'text' or - {raw: text, label: L}")
        unknown = sorted(set(item) - {"id", "raw", "label", "config"})
        if unknown:
            raise _refuse(f"the prompt key '{unknown[0]}'", spot.at(unknown[0]),
                          "use raw (or id: file://...), label and config.max_tokens")
        raw = item.get("raw", item.get("id"))
        if not isinstance(raw, str):
            raise ConfigError("the prompt has no raw text or id", where=spot.at(),
                              fix="give raw: 'text' or id: file://prompt.txt")
        label = item.get("label")
        prompts = self._from_raw(raw, spot)
        config = _prompt_config(item.get("config"), spot.sub("config"))
        if config:
            prompts = [p.model_copy(update=config) for p in prompts]
        return [PromptEntry(prompt=p, label=_numbered(label, i, len(prompts)))
                for i, p in enumerate(prompts)]

    def _from_raw(self, raw: str, spot: _Spot) -> list[Prompt]:
        is_file = raw.startswith(FILE) or self._existing_file(raw)
        if is_file and _CODE_FILE.search(raw):
            raise _refuse("a prompt function (code that builds the prompt)", spot.at(),
                          "write the prompt as text or as a JSON chat prompt with {{ vars }}")
        if is_file:
            return [p for path in self.loader.files(raw, spot.at())
                    for p in self._from_file(path, spot)]
        return [_text_prompt(raw, spot.at(), name=None)]

    def _existing_file(self, raw: str) -> bool:
        """promptfoo reads a path-like string as a file when there is one, else as text."""
        if "\n" in raw or not (_PATH_LIKE.search(raw) or "/" in raw or "*" in raw):
            return False
        text = re.sub(r":\w+$", "", raw)  # prompt.py:function names a function in a file
        try:
            if any(ch in text for ch in "*?["):
                return bool(glob.glob(str(self.loader.base_dir / text)))
            return (self.loader.base_dir / text).is_file()
        except OSError:  # a long line of text is no file name
            return False

    def _from_file(self, path: Path, spot: _Spot) -> list[Prompt]:
        suffix, name = path.suffix.lower(), path.stem
        if suffix in _PROMPT_FUNCTIONS:  # a glob that found code
            raise _refuse("a prompt function (code that builds the prompt)", spot.at(),
                          "write the prompt as text or as a JSON chat prompt with {{ vars }}")
        text = _read_text(path, spot.at())
        if suffix == ".txt":
            return _split_prompts(text, path, name)
        if suffix == ".jsonl":
            return [_chat_prompt(_json_line(line, path, n), f"{path}:{n}", _numbered(name, i, 2))
                    for i, (n, line) in enumerate(_lines(text))]
        if suffix == ".json":
            return [_chat_prompt(_json_prompt(text, path), str(path), name)]
        if suffix in (".yaml", ".yml"):
            return [_chat_prompt(_yaml_text(text, path), str(path), name)]
        if suffix == ".csv":
            return _csv_prompts(text, path)
        return [_text_prompt(text.strip(), f"{path}:1", name=name)]  # .md, .j2, anything else


def _prompt_config(config: Any, spot: _Spot) -> dict[str, Any]:
    """A prompt's own ``config``: promptmill reads max_tokens (the prompt's token limit)."""
    if not config:
        return {}
    if not isinstance(config, dict):
        raise ConfigError("a prompt's config must be a mapping", where=spot.at(),
                          fix="write config: {max_tokens: N}")
    unknown = sorted(set(config) - {"max_tokens"})
    if unknown:
        raise _refuse(f"the prompt config key '{unknown[0]}'", spot.at(unknown[0]),
                      "set generation settings on the provider; a prompt config may give "
                      "max_tokens")
    return {"max_tokens": config["max_tokens"]}


def _numbered(name: str | None, index: int, count: int) -> str | None:
    return name if name is None or count < 2 else f"{name}-{index + 1}"


def _read_text(path: Path, where: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read '{path}' as text ({exc})", where=where,
                          fix="give a UTF-8 text file") from None


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


def _json_line(line: str, path: Path, number: int) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON ({exc.msg})", where=f"{path}:{number}",
                          fix="write one JSON value per line") from None


def _json_text(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON ({exc.msg})", where=f"{path}:{exc.lineno}",
                          fix="check the brackets and quotes on that line") from None


def _json_prompt(text: str, path: Path) -> Any:
    """A JSON chat prompt file; one that is JSON only once its tags are rendered is refused."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if "{%" in text or "{{" in text:
            raise _refuse("a chat prompt that is JSON only after rendering (its {% %} tags or "
                          "{{ }} outside strings build the messages)", f"{path}:{exc.lineno}",
                          "write fixed messages as valid JSON, each {{ var }} inside a quoted "
                          "string") from None
        raise ConfigError(f"invalid JSON ({exc.msg})", where=f"{path}:{exc.lineno}",
                          fix="check the brackets and quotes on that line") from None


def _yaml_text(text: str, path: Path) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError("invalid YAML", where=where,
                          fix="check indentation and quoting on that line") from None


def _split_prompts(text: str, path: Path, name: str) -> list[Prompt]:
    """promptfoo's ``.txt``: several prompts separated by ``---``, each trimmed."""
    separator = os.environ.get("PROMPTFOO_PROMPT_SEPARATOR") or PROMPT_SEPARATOR
    parts, line = [], 1
    for chunk in text.split(separator):
        stripped = chunk.strip()
        if stripped:
            first = line + chunk[: len(chunk) - len(chunk.lstrip())].count("\n")
            parts.append((stripped, first))
        line += chunk.count("\n")
    return [_text_prompt(part, f"{path}:{first}", name=_numbered(name, i, len(parts)))
            for i, (part, first) in enumerate(parts)]


def _csv_prompts(text: str, path: Path) -> list[Prompt]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if not reader.fieldnames or "prompt" not in reader.fieldnames:
        raise ConfigError("a CSV prompt file needs a 'prompt' column", where=f"{path}:1",
                          fix="name the first column prompt (and optionally one label)")
    prompts = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        prompts.append(_text_prompt(row["prompt"], where, name=row.get("label") or None))
    return prompts


def _text_prompt(raw: str, where: str, name: str | None) -> Prompt:
    """A prompt's text: a JSON chat prompt when it is one, else a user message template."""
    stripped = raw.strip()
    if stripped.startswith("[") and '"role"' in stripped:
        try:
            return _chat_prompt(json.loads(stripped), where, name)
        except json.JSONDecodeError:
            raise _refuse("a chat prompt that is JSON only after rendering", where,
                          "write the messages as valid JSON, each {{ var }} inside a quoted "
                          "string") from None
    return _built_prompt({"template": raw}, where, name)


def _built_prompt(body: dict[str, Any], where: str, name: str | None) -> Prompt:
    problem = nunjucks_problem(body.get("template", ""))
    if problem is not None:
        message, fix, line = problem
        raise ConfigError(message, where=_at_line(where, line), fix=fix)
    prompt: Prompt = _validated(Prompt, {**body, "name": name}, where)
    return prompt


def _at_line(where: str, line: int | None) -> str:
    """``FILE:FIRST`` moved to the template's ``line`` (1 = the template's first line)."""
    file, _, first = where.rpartition(":")
    if not line or not file or not first.isdigit():
        return where
    return f"{file}:{int(first) + line - 1}"


# --- chat prompts -----------------------------------------------------------------------------
def _chat_prompt(messages: Any, where: str, name: str | None) -> Prompt:
    """system -> instruction, earlier user/assistant pairs -> demos, last user -> template."""
    if isinstance(messages, dict) and "role" in messages:
        messages = [messages]
    if not isinstance(messages, list) or not messages:
        raise ConfigError("a JSON or YAML prompt must be a list of chat messages", where=where,
                          fix='write [{"role": "user", "content": "... {{ var }}"}]')
    turns = [_message(m, where) for m in messages]
    instruction = ""
    if turns[0][0] == "system":
        instruction = _fixed_text(turns.pop(0)[1], "the system message", where)
    roles = [role for role, _ in turns]
    expected = ["user", "assistant"] * (len(turns) // 2) + ["user"]
    if roles != expected[: len(roles)] or not roles or roles[-1] != "user":
        raise _refuse(f"the message order {' -> '.join(roles) or '(none)'}", where,
                      "write one system message first (optional), then user/assistant pairs, "
                      "and end with the user message that holds the {{ vars }}")
    template = turns[-1][1]
    pairs = zip(turns[0:-1:2], turns[1:-1:2], strict=True)
    demos = [_demo(template, user, answer, where) for (_, user), (_, answer) in pairs]
    return _built_prompt({"instruction": instruction, "template": template, "demos": demos},
                         where, name)


def _message(message: Any, where: str) -> tuple[str, str]:
    if not isinstance(message, dict) or message.get("role") not in _CHAT_ROLES:
        raise ConfigError("each chat message needs a role (system, user or assistant)",
                          where=where, fix='write {"role": "user", "content": "..."}')
    content = message.get("content")
    if not isinstance(content, str):
        raise _refuse("a message whose content is not text (images, tool calls)", where,
                      "give every message its content as a string")
    extra = sorted(set(message) - {"role", "content"})
    if extra:
        raise _refuse(f"the message key '{extra[0]}'", where, "keep role and content only")
    return message["role"], content


def _fixed_text(text: str, what: str, where: str) -> str:
    if "{{" in text or "{%" in text:
        raise _refuse(f"a template in {what} (promptmill renders only the last user "
                      "message with the vars)", where,
                      "move the {{ vars }} into the last user message")
    return text


def _demo(template: str, user: str, answer: str, where: str) -> Demo:
    """An earlier user turn as the inputs that render the template to exactly its text."""
    _fixed_text(user, "an earlier user message", where)
    _fixed_text(answer, "an assistant message", where)
    inputs = _demo_inputs(template, user)
    if inputs is None:
        raise _refuse("an earlier user message that does not fit the last one's template",
                      where, "write earlier turns in the last user message's form (a demo "
                             "fills its {{ vars }}), or put the examples in the system message")
    return Demo(inputs=inputs, output=answer)


_SIMPLE_VAR = re.compile(r"\{\{-?\s*([A-Za-z_]\w*)\s*-?\}\}")


def _demo_inputs(template: str, text: str) -> dict[str, str] | None:
    """The var values that render ``template`` to ``text``, when its vars are plain
    ``{{ name }}`` (no filters or tags); checked by rendering."""
    pieces = _SIMPLE_VAR.split(template)
    literals, names = pieces[0::2], pieces[1::2]
    if any(mark in lit for lit in literals for mark in ("{{", "{%", "{#")):
        return None
    pattern, seen = "", set()
    for literal, var in itertools.zip_longest(literals, names):
        pattern += re.escape(literal or "")
        if var is not None:
            pattern += f"(?P={var})" if var in seen else f"(?P<{var}>.*?)"
            seen.add(var)
    match = re.fullmatch(pattern, text, flags=re.DOTALL)
    if match is None:
        return None
    inputs = match.groupdict()
    rendered = _SIMPLE_VAR.sub(lambda m: inputs[m.group(1)], template)
    return inputs if rendered == text else None


# --- Nunjucks templates in Jinja2 -------------------------------------------------------------
# Filters and tests Nunjucks (or promptfoo) has and Jinja2 lacks, with what to use instead.
NUNJUCKS_ONLY_FILTERS = {
    "dump": "use | tojson (Jinja2's JSON filter; it also escapes <, >, & and ')",
    "nl2br": "write the line breaks into the text, or use | replace('\\n', '<br>')",
    "load": "promptfoo's load (JSON.parse) has no Jinja2 equivalent: pass the value as "
            "structured YAML vars instead of JSON text",
}
NUNJUCKS_ONLY_TESTS = {"truthy": "write {% if x %}", "falsy": "write {% if not x %}",
                       "null": "use 'is none'"}
# JavaScript members Nunjucks reaches on strings and arrays, and Jinja2's way to write them.
_JS_MEMBERS = {
    "length": "| length", "toUpperCase": "| upper", "toLowerCase": "| lower", "trim": "| trim",
    "includes": "the 'in' operator", "indexOf": "the 'in' operator or .find()",
    "join": "| join(', ')", "toString": "| string", "startsWith": ".startswith()",
    "endsWith": ".endswith()", "substring": "slicing x[a:b]", "slice": "slicing x[a:b]",
    "charAt": "indexing x[i]", "toFixed": "| round(n)", "push": "a list built in the vars",
    "concat": "~ (string joining) or +", "map": "| map(...)", "filter": "| select(...)",
}
# Syntax Nunjucks accepts and Jinja2 does not, found in a template Jinja2 cannot parse.
_NUNJUCKS_SYNTAX = (
    (re.compile(r"\{%-?\s*elseif\b"), "{% elseif %}", "write {% elif %}"),
    (re.compile(r"\{%-?\s*(asyncEach|asyncAll|ifAsync)\b"), "async tags",
     "write {% for %} / {% if %}"),
    (re.compile(r"[=!]=="), "=== and !==", "write == and !="),
    (re.compile(r"(?<![\w)\]])r/[^/\n]+/[gimy]*"), "regex literals r/.../",
     "use a plain string, or check the output with a regex assertion"),
)


def nunjucks_problem(template: str) -> tuple[str, str, int | None] | None:
    """(message, fix, line) for the first thing in ``template`` that Jinja2 would not render
    as Nunjucks does, or None. A static check on the template's syntax tree."""
    import jinja2

    from ..templating import static_environment

    env = static_environment()
    try:
        tree = env.parse(template)
    except jinja2.TemplateSyntaxError as exc:
        return _syntax_problem(template, exc)
    for finder in (_filter_problem, _test_problem, _member_problem, _env_problem):
        problem = finder(tree, env)
        if problem is not None:
            return problem
    return None


def _syntax_problem(template: str, exc: Any) -> tuple[str, str, int | None]:
    for pattern, what, fix in _NUNJUCKS_SYNTAX:
        found = pattern.search(template)
        if found is not None:
            line = template.count("\n", 0, found.start()) + 1
            return f"the template uses Nunjucks-only syntax ({what})", fix, line
    return (f"template syntax error: {exc.message}",
            "check the {{ }} and {% %} pairs in the template", exc.lineno)


def _filter_problem(tree: Any, env: Any) -> tuple[str, str, int | None] | None:
    from jinja2 import nodes

    for node in tree.find_all(nodes.Filter):
        if node.name in env.filters:
            continue
        fix = NUNJUCKS_ONLY_FILTERS.get(node.name, "custom filters (nunjucksFilters) are "
                                                   "JavaScript: use Jinja2's built-in filters")
        return f"the template uses the filter '{node.name}', which Jinja2 lacks", fix, node.lineno
    return None


def _test_problem(tree: Any, env: Any) -> tuple[str, str, int | None] | None:
    from jinja2 import nodes

    for node in tree.find_all(nodes.Test):
        if node.name not in env.tests:
            fix = NUNJUCKS_ONLY_TESTS.get(node.name, "use one of Jinja2's tests")
            return f"the template uses the test 'is {node.name}', which Jinja2 lacks", fix, \
                node.lineno
    return None


def _member_problem(tree: Any, env: Any) -> tuple[str, str, int | None] | None:
    from jinja2 import nodes

    for node in tree.find_all(nodes.Getattr):
        if node.attr in _JS_MEMBERS and not _is_text_constant(node.node):
            return (f"the template uses the JavaScript member '.{node.attr}', which Jinja2 "
                    f"values lack", f"use {_JS_MEMBERS[node.attr]}", node.lineno)
    return None


def _is_text_constant(node: Any) -> bool:
    from jinja2 import nodes

    return isinstance(node, nodes.Const) and isinstance(node.value, str)  # ', '.join(x)


def _env_problem(tree: Any, env: Any) -> tuple[str, str, int | None] | None:
    from jinja2 import nodes

    for node in tree.find_all(nodes.Name):
        if node.name == "env" and node.ctx == "load":
            return ("the template reads promptfoo's env global (environment variables)",
                    "pass the value as a var; a template never reads the environment",
                    node.lineno)
    return None


# --- providers --------------------------------------------------------------------------------
# promptfoo providers that speak OpenAI's API at a known address: (base URL, key variable).
OPENAI_COMPATIBLE = {
    "openrouter": ("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    "deepseek": ("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    "groq": ("https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    "togetherai": ("https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    "fireworks": ("https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
    "perplexity": ("https://api.perplexity.ai", "PERPLEXITY_API_KEY"),
    "cerebras": ("https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
    "lambdalabs": ("https://api.lambda.ai/v1", "LAMBDA_API_KEY"),
    "xai": ("https://api.x.ai/v1", "XAI_API_KEY"),
}
OLLAMA_DEFAULT_URL = "http://localhost:11434"
_OPENAI_OTHER_KINDS = ("completion", "embedding", "embeddings", "assistant", "realtime",
                       "responses", "image", "moderation")
# promptfoo's provider config -> the suite's generation settings (and their defaults there)
_GENERATION_KEYS = {"temperature": "temperature", "max_tokens": "max_tokens",
                    "max_completion_tokens": "max_tokens", "num_predict": "max_tokens",
                    "top_p": "top_p", "seed": "seed", "stop": "stop"}
PROMPTFOO_GENERATION: dict[str, Any] = {"temperature": 0.0, "max_tokens": 1024, "top_p": 1.0,
                                        "seed": 0, "stop": []}
_IGNORED_PROVIDER_CONFIG = frozenset({"cost", "showThinking", "organization"})


@dataclass(frozen=True)
class _Mapped:
    spec: str
    params: dict[str, Any]
    generation: dict[str, Any]


class _Providers:
    def __init__(self, loader: _Loader):
        self.loader = loader

    def entries(self, value: Any) -> tuple[list[ModelEntry], SuiteGeneration]:
        spot = self.loader.top.sub("providers" if "providers" in self.loader.data else "targets")
        if value is None:
            _warn(spot.at(), "no providers: the suite runs on promptmill's default model")
            return [ModelEntry(spec="embedded")], SuiteGeneration.model_validate(
                PROMPTFOO_GENERATION)
        items = value if isinstance(value, list) else [value]
        models, settings = [], []
        for index, item in enumerate(items):
            for option, at in self._options(item, spot.sub(index)):
                entry, generation = self._model(option, at)
                models.append(entry)
                settings.append((generation, at))
        return models, _one_generation(settings)

    def _options(self, item: Any, spot: _Spot) -> list[tuple[dict[str, Any], _Spot]]:
        """promptfoo's forms: 'id', {id, label, config}, {id: {config}}, file://p.yaml."""
        if isinstance(item, str) and item.startswith(FILE) and item.endswith(
                (".yaml", ".yml", ".json")):
            return self._from_file(item, spot)
        if isinstance(item, str):
            return [({"id": item}, spot)]
        if isinstance(item, dict) and "id" not in item and len(item) == 1:
            key, options = next(iter(item.items()))
            options = options if isinstance(options, dict) else {}
            return [({**options, "id": options.get("id", key)}, spot.sub(key))]
        if isinstance(item, dict):
            return [(item, spot)]
        raise ConfigError("a provider is an id or a mapping with id, label and config",
                          where=spot.at(), fix="write - openai:chat:MODEL")

    def _from_file(self, reference: str, spot: _Spot) -> list[tuple[dict[str, Any], _Spot]]:
        path = self.loader.file(reference, spot.at())
        data, root = read_yaml(path, what="provider file")
        items = data if isinstance(data, list) else [data]
        file_spot = _Spot(path, root)
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise ConfigError("a provider file holds a mapping with id, label and config",
                                  where=file_spot.at(i), fix="write id: openai:chat:MODEL")
            out.append((item, file_spot.sub(i) if isinstance(data, list) else file_spot))
        return out

    def _model(self, option: dict[str, Any], spot: _Spot) -> tuple[ModelEntry, dict[str, Any]]:
        for key in option:
            if key in ("delay",):
                _warn(spot.at(key), f"provider '{key}' is ignored (it changes no result)")
            elif key not in ("id", "label", "config"):
                raise _refuse(f"the provider key '{key}'", spot.at(key),
                              "keep id, label and config; every prompt runs on every provider"
                              if key == "prompts" else "keep id, label and config")
        provider_id = option.get("id")
        if not isinstance(provider_id, str):
            raise ConfigError("the provider has no id", where=spot.at(),
                              fix="write id: openai:chat:MODEL")
        mapped = map_provider(provider_id, option.get("config") or {}, spot.at("id"),
                              lambda key: spot.at("config", key))
        entry = _validated(ModelEntry, {"spec": mapped.spec, "params": mapped.params,
                                        "label": option.get("label")}, spot.at())
        return entry, mapped.generation


def map_provider(provider_id: str, config: dict[str, Any], where: str,
                 config_where: Callable[[str], str] | None = None) -> _Mapped:
    """A promptfoo provider id and config as a promptmill model spec, params and generation."""
    at = config_where or (lambda key: where)
    if not isinstance(config, dict):
        raise ConfigError("a provider's config must be a mapping", where=where,
                          fix="write config: {temperature: 0}")
    family, _, rest = provider_id.partition(":")
    if family == "promptmill" and rest:
        return _promptmill_provider(rest, config)
    if family == "openai":
        return _openai_provider(_openai_model(rest, provider_id, where), config, at)
    if family == "ollama":
        return _ollama_provider(rest, provider_id, config, where, at)
    if family in OPENAI_COMPATIBLE:
        base_url, key_env = OPENAI_COMPATIBLE[family]
        model = _compatible_model(rest, provider_id, where)
        return _openai_provider(model, config, at, base_url=base_url, key_env=key_env)
    raise ConfigError(f"the provider '{provider_id}' is not supported", where=where,
                      fix=SUPPORTED_PROVIDERS)


def _promptmill_provider(spec: str, config: dict[str, Any]) -> _Mapped:
    generation = {_GENERATION_KEYS[k]: v for k, v in config.items() if k in _GENERATION_KEYS}
    params = {k: v for k, v in config.items() if k not in _GENERATION_KEYS}
    return _Mapped(spec, params, generation)


def _openai_model(rest: str, provider_id: str, where: str) -> str:
    kind, _, model = rest.partition(":")
    if kind == "chat":
        return model or "gpt-4.1-2025-04-14"  # promptfoo's default chat model
    if kind in _OPENAI_OTHER_KINDS:
        raise ConfigError(f"the provider '{provider_id}' is not supported (promptmill calls "
                          "chat models)", where=where, fix="use openai:chat:MODEL")
    if not rest:
        raise ConfigError(f"the provider '{provider_id}' names no model", where=where,
                          fix="write openai:chat:MODEL")
    return rest  # promptfoo reads openai:MODEL as a chat model


def _compatible_model(rest: str, provider_id: str, where: str) -> str:
    kind, _, model = rest.partition(":")
    if kind == "chat" and model:
        return model
    if kind in _OPENAI_OTHER_KINDS or not rest:
        raise ConfigError(f"the provider '{provider_id}' is not supported (promptmill calls "
                          "chat models)", where=where,
                          fix=f"use {provider_id.partition(':')[0]}:MODEL for a chat model")
    return rest


def _ollama_provider(rest: str, provider_id: str, config: dict[str, Any], where: str,
                     at: Callable[[str], str]) -> _Mapped:
    kind, _, model = rest.partition(":")
    if kind != "chat" or not model:
        raise ConfigError(f"the provider '{provider_id}' is not supported (Ollama's completion "
                          "and embedding APIs are not chat)", where=where,
                          fix="use ollama:chat:MODEL")
    base = (os.environ.get("OLLAMA_BASE_URL") or OLLAMA_DEFAULT_URL).rstrip("/")
    return _openai_provider(model, config, at, base_url=f"{base}/v1", key_env="OLLAMA_API_KEY")


def _openai_provider(model: str, config: dict[str, Any], at: Callable[[str], str], *,
                     base_url: str | None = None, key_env: str | None = None) -> _Mapped:
    params: dict[str, Any] = {}
    generation: dict[str, Any] = {}
    for key, value in config.items():
        if key in ("apiBaseUrl", "apiHost"):
            base_url = value if key == "apiBaseUrl" else f"https://{value}/v1"
        elif key == "apiKeyEnvar":
            key_env = value
        elif key == "apiKey":
            raise ConfigError("an API key is never read from a config", where=at(key),
                              fix="put the key in an environment variable and name it with "
                                  "apiKeyEnvar")
        elif key in _GENERATION_KEYS:
            generation[_GENERATION_KEYS[key]] = value
        elif key in _IGNORED_PROVIDER_CONFIG:
            _warn(at(key), f"provider config '{key}' is ignored (it changes no output)")
        else:
            raise _refuse(f"the provider config key '{key}'", at(key),
                          "keep apiBaseUrl, apiKeyEnvar, temperature, max_tokens, top_p, "
                          "seed and stop")
    if base_url:
        params["base_url"] = base_url
    if key_env:
        params["api_key_env"] = key_env
    return _Mapped(f"openai:{model}", params, generation)


def _one_generation(settings: list[tuple[dict[str, Any], _Spot]]) -> SuiteGeneration:
    """promptmill has one generation setting per suite: every provider must agree on it."""
    chosen: dict[str, Any] = {}
    for generation, spot in settings:
        full = {**PROMPTFOO_GENERATION, **generation}
        if isinstance(full["stop"], str):
            full["stop"] = [full["stop"]]
        if chosen and full != chosen:
            key = next(k for k in full if full[k] != chosen.get(k))
            raise _refuse(f"providers with different {key} ({chosen[key]!r} and {full[key]!r})",
                          spot.at(), "give every provider the same generation settings "
                                     "(promptmill applies one per suite)")
        chosen = full
    return _validated(SuiteGeneration, chosen or dict(PROMPTFOO_GENERATION),
                      settings[0][1].at() if settings else "providers")


# --- tests ------------------------------------------------------------------------------------
_TEST_KEYS = frozenset({"description", "vars", "assert", "threshold", "options", "metadata"})
_REFUSED_TEST_KEYS = {
    "provider": "list every model under providers; each case runs on every provider",
    "providerOutput": "remove it; promptmill checks what the models answer",
    "assertScoringFunction": "set the case's threshold and assertion weights instead",
}
_IGNORED_OPTIONS = frozenset({"runSerially"})
_ASSERT_KEYS = frozenset({"type", "value", "threshold", "weight", "metric", "provider"})
_REFUSED_ASSERT_KEYS = {
    "transform": "check the raw output, e.g. with regex or a python check",
    "rubricPrompt": "write the whole criterion in the llm-rubric value",
    "contextTransform": "check the raw output",
}
# promptfoo's assertion types, for the __expected syntax of CSV tests ("type:value").
PROMPTFOO_ASSERTION_TYPES = (
    "answer-relevance", "bleu", "classifier", "contains", "contains-all", "contains-any",
    "contains-json", "contains-sql", "contains-xml", "context-faithfulness", "context-recall",
    "context-relevance", "cost", "equals", "factuality", "g-eval", "gleu", "guardrails",
    "icontains", "icontains-all", "icontains-any", "is-json", "is-refusal", "is-sql",
    "is-valid-function-call", "is-valid-openai-function-call", "is-valid-openai-tools-call",
    "is-xml", "javascript", "latency", "levenshtein", "llm-rubric", "pi", "meteor",
    "model-graded-closedqa", "model-graded-factuality", "moderation", "perplexity",
    "perplexity-score", "python", "regex", "rouge-n", "similar", "starts-with", "webhook",
)
_TYPE_NAMES = "|".join(re.escape(t) for t in sorted(PROMPTFOO_ASSERTION_TYPES, key=len,
                                                     reverse=True))
# not-TYPE(THRESHOLD):VALUE, as promptfoo's assertionFromString reads a cell
_EXPECTED = re.compile(rf"^(not-)?({_TYPE_NAMES})(?:\((\d+(?:\.\d+)?)\))?(?::([\s\S]*))?$")
_CSV_THRESHOLD_TYPES = frozenset({"answer-relevance", "classifier", "context-faithfulness",
                                  "context-recall", "context-relevance", "cost", "latency",
                                  "levenshtein", "perplexity-score", "perplexity", "rouge-n",
                                  "similar", "starts-with"})
_MEDIA = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".pdf", ".mp4", ".mov", ".webm",
          ".mp3", ".wav", ".ogg")


@dataclass
class _Default:
    """defaultTest as read: its processed vars and its Case (vars kept apart for folding)."""

    vars: dict[str, Any]
    case: Case | None
    fold: bool  # its vars expand or use templates: give every case the merged vars


class _Tests:
    def __init__(self, loader: _Loader):
        self.loader = loader

    # --- defaultTest ----------------------------------------------------------------------
    def default_case(self, value: Any) -> _Default:
        if value is None:
            return _Default({}, None, False)
        spot = self.loader.top.sub("defaultTest")
        if not isinstance(value, dict):
            raise ConfigError("defaultTest must be a mapping", where=spot.at(),
                              fix="write defaultTest: {assert: [...], vars: {...}}")
        self.loader.judge = _grader(value.get("options"))
        self._check_test_keys(value, spot, default=True)
        variables = self._vars(value.get("vars"), spot.sub("vars"), self.loader.base_dir)
        fold = any(_expands(v) or _templated(v) for v in variables.values())
        body = {"assertions": self._assertions(value.get("assert"), spot.sub("assert"),
                                               self.loader.judge),
                "threshold": value.get("threshold")}
        return _Default(variables, _validated(Case, body, spot.at()), fold)

    def kept_default(self, default: _Default) -> Case | None:
        if default.case is None:
            return None
        kept = {} if default.fold else dict(default.vars)
        return default.case.model_copy(update={"vars": kept})

    # --- tests ----------------------------------------------------------------------------
    def cases(self, value: Any, default: _Default) -> list[Case]:
        spot = self.loader.top.sub("tests")
        raw = list(self._raw_tests(value, spot))
        if not raw:  # promptfoo runs the prompts once with no vars
            raw = [({}, spot, self.loader.base_dir)]
        cases: list[Case] = []
        for test, test_spot, base in raw:
            cases.extend(self._cases(test, test_spot, base, default))
        return cases

    def _raw_tests(self, value: Any, spot: _Spot) -> Iterator[tuple[Any, _Spot, Path]]:
        if value is None:
            return
        if isinstance(value, str):
            yield from self._test_file(value, spot)
            return
        if not isinstance(value, list):
            raise ConfigError("'tests' must be a list of tests or a file:// path",
                              where=spot.at(), fix="write tests: file://tests.csv or a list")
        for index, item in enumerate(value):
            if isinstance(item, str):
                yield from self._test_file(item, spot.sub(index))
            else:
                yield item, spot.sub(index), self.loader.base_dir

    def _test_file(self, reference: str, spot: _Spot) -> Iterator[tuple[Any, _Spot, Path]]:
        where = spot.at()
        if reference.startswith(("huggingface://", "https://", "http://")):
            raise _refuse(f"tests from '{reference}'", where,
                          "download the tests into a CSV, YAML or JSONL file and name it")
        text = reference.removeprefix(FILE)
        if _CODE_FILE.search(text):
            raise _refuse("tests generated by code", where,
                          "write the tests to a CSV, YAML or JSONL file and name it")
        for path in self.loader.files(reference, where):
            yield from _tests_in(path, where)

    def _cases(self, test: Any, spot: _Spot, base: Path, default: _Default) -> list[Case]:
        if not isinstance(test, dict):
            raise ConfigError("a test is a mapping with vars and assert", where=spot.at(),
                              fix="write - {vars: {...}, assert: [...]}")
        self._check_test_keys(test, spot, default=False)
        options = test.get("options") or {}
        judge = _grader(options) or self.loader.judge
        own = self._vars(test.get("vars"), spot.sub("vars"), base)
        expand = not options.get("disableVarExpansion")
        merged_default = default.vars if default.fold else {}
        assertions = self._assertions(test.get("assert"), spot.sub("assert"), judge)
        cases = []
        for combination in _combinations({**merged_default, **own}, expand):
            variables = _compose({**default.vars, **combination}, spot.at("vars"),
                                 self.loader.literal)
            kept = {k: variables[k] for k in (variables if default.fold else combination)}
            body = {"id": _case_id(test), "description": test.get("description"),
                    "vars": kept, "assertions": assertions, "threshold": test.get("threshold")}
            cases.append(_validated(Case, body, spot.at()))
        return cases

    def _check_test_keys(self, test: dict[str, Any], spot: _Spot, default: bool) -> None:
        for key in test:
            if key in _REFUSED_TEST_KEYS:
                raise _refuse(f"the test key '{key}'", spot.at(key), _REFUSED_TEST_KEYS[key])
            if key == "description" and default:
                raise ConfigError("defaultTest takes no description", where=spot.at(key),
                                  fix="describe each test instead")
            if key not in _TEST_KEYS:
                raise ConfigError(f"unknown test key '{key}'", where=spot.at(key),
                                  fix="use " + ", ".join(sorted(_TEST_KEYS)))
        self._check_options(test.get("options") or {}, spot.sub("options"))
        metadata = test.get("metadata")
        if isinstance(metadata, dict) and set(metadata) - {"id"}:
            _warn(spot.at("metadata"), "test metadata is ignored (it changes no result)")

    def _check_options(self, options: Any, spot: _Spot) -> None:
        if not isinstance(options, dict):
            raise ConfigError("a test's options must be a mapping", where=spot.at(),
                              fix="write options: {provider: ...}")
        for key in options:
            if key in _IGNORED_OPTIONS:
                _warn(spot.at(key), f"options.{key} is ignored (it changes no result)")
            elif key not in ("provider", "disableVarExpansion"):
                raise _refuse(f"the test option '{key}'", spot.at(key),
                              "of a test's options promptmill reads provider (the grader) and "
                              "disableVarExpansion; write the rest into the prompt or the "
                              "assertions")

    # --- vars -----------------------------------------------------------------------------
    def _vars(self, value: Any, spot: _Spot, base: Path) -> dict[str, Any]:
        if value is None:
            return {}
        if isinstance(value, str | list):  # promptfoo: vars given as file(s) of vars
            value = self._vars_files(value, spot, base)
        if not isinstance(value, dict):
            raise ConfigError("vars must be a mapping of names to values", where=spot.at(),
                              fix="write vars: {name: value}")
        return {str(k): self._var(v, spot.at(k)) for k, v in value.items()}

    def _vars_files(self, value: str | list[Any], spot: _Spot, base: Path) -> dict[str, Any]:
        """``vars: file://vars.yaml`` (or a list, or a glob): the files' mappings, merged."""
        merged: dict[str, Any] = {}
        for reference in value if isinstance(value, list) else [value]:
            for path in self.loader.files(str(reference), spot.at(), base):
                data, _ = read_yaml(path, what="vars file")
                if not isinstance(data, dict):
                    raise ConfigError("a vars file holds a mapping of names to values",
                                      where=str(path), fix="write 'name: value' lines")
                merged.update(data)
        return merged

    def _var(self, value: Any, where: str) -> Any:
        """promptfoo's var values: file:// read (a glob: one value per file; relative to the
        config, as promptfoo resolves them), trailing newline dropped before rendering."""
        if isinstance(value, str) and value.startswith(FILE):
            paths = self.loader.files(value, where)
            texts = [_var_file(p, where) for p in paths]
            return texts[0] if len(texts) == 1 else texts
        if isinstance(value, str):
            return value.removesuffix("\n")
        return value

    # --- assertions -----------------------------------------------------------------------
    def _assertions(self, value: Any, spot: _Spot, judge: Any = None) -> list[Assertion]:
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        return [self._assertion(item, spot.sub(i), judge) for i, item in enumerate(items)]

    def _assertion(self, item: Any, spot: _Spot, judge: Any) -> Assertion:
        from .checks import check_assertion_type

        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise ConfigError("an assertion is a mapping with a type", where=spot.at(),
                              fix="write - {type: contains, value: ...}")
        check_assertion_type(Assertion(type=item["type"]), spot.at("type"))
        for key in item:
            if key in _REFUSED_ASSERT_KEYS:
                raise _refuse(f"the assertion key '{key}'", spot.at(key),
                              _REFUSED_ASSERT_KEYS[key])
            if key == "config" and item[key]:
                raise _refuse("an assertion's config", spot.at(key),
                              "read the values from the case's vars in the check")
            if key not in _ASSERT_KEYS | {"config"}:
                raise ConfigError(f"unknown assertion key '{key}'", where=spot.at(key),
                                  fix="use " + ", ".join(sorted(_ASSERT_KEYS)))
        body = {k: v for k, v in item.items() if k in _ASSERT_KEYS}
        body["value"] = self._assertion_value(body["type"], body.get("value"), spot.at("value"))
        provider = body.get("provider")
        if provider is None and judge is not None and body["type"].removeprefix(
                NEGATION) == "llm-rubric":
            provider = judge
        if provider is not None:
            body["provider"] = _judge_spec(provider, spot.at("provider"))
        elif body["type"].removeprefix(NEGATION) == "llm-rubric":
            self.loader.unjudged = True
        assertion: Assertion = _validated(Assertion, body, spot.at())
        return assertion

    def _assertion_value(self, kind: str, value: Any, where: str) -> Any:
        """promptfoo reads a ``file://`` value (text, JSON or YAML, relative to the config)
        before checking; a python check's file and a JSON schema file stay references (the
        check reads them, and the suite check makes sure they exist)."""
        base_type = kind.removeprefix(NEGATION)
        if isinstance(value, list):
            return [self._assertion_value(kind, v, where) for v in value]
        if not isinstance(value, str) or not value.startswith(FILE):
            return value
        if base_type in ("python", "is-json", "contains-json", "json-schema") or re.search(
                r"\.py(:\w+)?$", value):
            return value
        return _value_file(self.loader.file(value, where), where)


def _grader(options: Any) -> Any:
    """A test's ``options.provider``: the model that grades its llm-rubric assertions."""
    if not isinstance(options, dict):
        return None
    provider = options.get("provider")
    if isinstance(provider, dict) and "id" not in provider:
        provider = provider.get("text")  # {text: ..., embedding: ...}
    return provider


def _judge_spec(provider: Any, where: str) -> str:
    """An assertion's judge as a promptmill model spec (a spec holds no params)."""
    if isinstance(provider, dict):
        provider_id, config = provider.get("id"), provider.get("config") or {}
    else:
        provider_id, config = provider, {}
    if not isinstance(provider_id, str):
        raise ConfigError("the assertion's provider needs an id", where=where,
                          fix="write provider: openai:chat:MODEL")
    mapped = map_provider(provider_id, config, where)
    if mapped.params or mapped.generation:
        raise _refuse("a judge provider with its own config", where,
                      "give the judge as a plain id (openai:chat:MODEL reads OPENAI_BASE_URL "
                      "from the environment)")
    return mapped.spec


def _case_id(test: dict[str, Any]) -> str | None:
    metadata = test.get("metadata")
    value = metadata.get("id") if isinstance(metadata, dict) else None
    return None if value is None else str(value)


def _expands(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], str)


def _templated(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _combinations(variables: dict[str, Any], expand: bool) -> list[dict[str, Any]]:
    """promptfoo's var expansion: a list of strings gives one test per value (all
    combinations); any other list is a single value."""
    if not expand:
        return [variables]
    keys = list(variables)
    choices = [variables[k] if _expands(variables[k]) else [variables[k]] for k in keys]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*choices)]


def _compose(variables: dict[str, Any], where: str, literal: list[str]) -> dict[str, Any]:
    """Vars that refer to other vars (``item: 'tweet about {{topic}}'``), resolved as
    promptfoo does: plain ``{{ name }}`` substituted (up to 5 rounds), then rendered once.
    A value that only looks like a template is kept as text, its place added to ``literal``."""
    out = dict(variables)
    for _ in range(5):
        changed = False
        for key, value in out.items():
            if isinstance(value, str):
                new = _SIMPLE_VAR.sub(lambda m: _substitute(m, out), value)
                changed, out[key] = changed or new != value, new
        if not changed:
            break
    return {k: _render_var(v, out, where, literal) if _templated(v) else v
            for k, v in out.items()}


def _substitute(match: re.Match[str], variables: dict[str, Any]) -> str:
    value = variables.get(match.group(1))
    return value if isinstance(value, str) and match.group(0) not in value else match.group(0)


def _render_var(value: str, variables: dict[str, Any], where: str, literal: list[str]) -> str:
    import jinja2

    from ..templating import render_limited

    try:
        compiled = _lenient_environment().from_string(value)
    except jinja2.TemplateSyntaxError:  # text such as a wiki's {{tq | ...}}, not a template
        literal.append(where)
        return value
    problem = nunjucks_problem(value)
    if problem is not None:
        raise ConfigError(f"a var value: {problem[0]}", where=where, fix=problem[1])
    try:  # Nunjucks renders an undefined name as empty text; so does Jinja2's default
        return render_limited(compiled, variables)
    except Exception as exc:  # a user's template failing is bad input
        raise ConfigError(f"a var value cannot be rendered ({type(exc).__name__}: {exc})",
                          where=where, fix="check the {{ }} in the value") from None


@functools.lru_cache(maxsize=1)
def _lenient_environment() -> Any:
    from ..templating import sandboxed_environment

    return sandboxed_environment()  # default Undefined: a missing name renders as ''


def _var_file(path: Path, where: str) -> Any:
    suffix = path.suffix.lower()
    if suffix in _PROMPT_FUNCTIONS:
        raise _refuse("a var computed by code", where, "write the value into the vars")
    if suffix in _MEDIA:
        raise _refuse(f"a {suffix} file as a var (images, audio, video and PDFs)", where,
                      "give the text itself as the var")
    text = _read_text(path, where)
    if suffix in (".yaml", ".yml"):
        return json.dumps(_yaml_text(text, path), ensure_ascii=False)  # promptfoo: JSON text
    return text.strip()


def _value_file(path: Path, where: str) -> Any:
    suffix = path.suffix.lower()
    text = _read_text(path, where)
    if suffix == ".json":
        return _json_text(text, path)
    if suffix in (".yaml", ".yml"):
        return _yaml_text(text, path)
    if suffix == ".txt":
        return text.strip()
    raise _refuse(f"an assertion value read from a {suffix or 'extensionless'} file", where,
                  "use a .txt, .json or .yaml file")


# --- test files -------------------------------------------------------------------------------
def _tests_in(path: Path, where: str) -> Iterator[tuple[Any, _Spot, Path]]:
    """The tests one file holds, each with where it is; its relative paths are its own."""
    suffix, base = path.suffix.lower(), path.parent
    if suffix == ".csv":
        for test, row_line in _csv_tests(path):
            yield test, _Spot(path, line=row_line), base
    elif suffix == ".jsonl":
        for number, line in _lines(_read_text(path, where)):
            yield _json_line(line, path, number), _Spot(path, line=number), base
    elif suffix in (".yaml", ".yml", ".json"):
        data, root = read_yaml(path, what="tests file")
        items = data if isinstance(data, list) else [data]
        file_spot = _Spot(path, root)
        for index, item in enumerate(items):
            yield item, file_spot.sub(index) if isinstance(data, list) else file_spot, base
    else:
        raise _refuse(f"a tests file of type '{suffix or path.name}'", where,
                      "give a .csv, .yaml, .json or .jsonl file")


def _csv_tests(path: Path) -> Iterator[tuple[dict[str, Any], int]]:
    text = _read_text(path, str(path)).lstrip("\ufeff")
    delimiter = os.environ.get("PROMPTFOO_CSV_DELIMITER") or ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    for number, row in enumerate(reader, start=1):
        yield _csv_test(row, f"{path}:{reader.line_num}", number), reader.line_num


def _csv_test(row: dict[str, Any], where: str, number: int) -> dict[str, Any]:
    """promptfoo's CSV row: vars columns, and the ``__`` columns that say the rest."""
    test: dict[str, Any] = {"vars": {}, "assert": []}
    metric = None
    for raw_key, value in row.items():
        key, value = (raw_key or "").strip(), value or ""
        if key.startswith("__expected"):
            if value.strip():
                test["assert"].append(assertion_from_string(value.strip()))
        elif key == "__description" and value:
            test["description"] = value
        elif key == "__threshold" and value.strip():
            test["threshold"] = _csv_number(value, where) or None  # promptfoo drops a 0
        elif key == "__metric":
            metric = value or None
        elif key in ("__prefix", "__suffix", "__providerOutput") and value:
            raise _refuse(f"the CSV column {key}", where,
                          "write the text into the prompt" if key != "__providerOutput"
                          else "remove the column; promptmill checks what the models answer")
        elif key.startswith("__metadata"):
            continue  # metadata changes no result
        elif not key.startswith("__"):
            test["vars"][key] = value
    for assertion in test["assert"]:
        assertion["metric"] = metric
    test.setdefault("description", f"Row #{number}")
    return test


def _csv_number(value: str, where: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"__threshold must be a number (got {value!r})", where=where,
                          fix="write e.g. 0.5") from None


def assertion_from_string(expected: str) -> dict[str, Any]:
    """promptfoo's one-cell assertion syntax: ``contains:Paris``, ``icontains-any:a,b``,
    ``similar(0.8):text``, ``grade:rubric``, ``file://check.py``, else plain equals."""
    if expected.startswith(("javascript:", "fn:", "eval:")) or (
            expected.startswith(FILE) and re.search(r"\.(js|ts|mjs|cjs)(:\w+)?$", expected)):
        return {"type": "javascript", "value": expected.partition(":")[2].strip()}
    if expected.startswith(("grade:", "llm-rubric:")):
        return {"type": "llm-rubric", "value": expected.partition(":")[2]}
    if expected.startswith("python:") or (expected.startswith(FILE) and (
            expected.endswith(".py") or ".py:" in expected)):
        value = expected.removeprefix("python:").strip() if expected.startswith(
            "python:") else expected
        return {"type": "python", "value": value}
    match = _EXPECTED.match(expected)
    if match is None:
        return {"type": "equals", "value": expected}
    negation, kind, threshold, value = match.groups()
    full = f"{NEGATION if negation else ''}{kind}"
    if kind in ("contains-all", "contains-any", "icontains-all", "icontains-any"):
        return {"type": full, "value": [v.strip() for v in value.split(",")] if value else value}
    if kind in ("contains-json", "is-json"):
        return {"type": full, "value": value}
    out: dict[str, Any] = {"type": full, "value": value.strip() if value else value}
    if kind in _CSV_THRESHOLD_TYPES:
        default = 0.8 if kind == "similar" else 0.75  # promptfoo's defaults for CSV cells
        out["threshold"] = float(threshold) if threshold else default
    return out


# --- export -----------------------------------------------------------------------------------
PROMPTMILL_ONLY_TYPES = frozenset({"json-schema", "rouge-l"})
_UNEXPORTABLE_PROMPT_FIELDS = ("output_spec", "extract", "context_slots", "demo_selection")


def export_promptfoo(suite: Suite, *, store: Store | None = None) -> dict[str, Any]:
    """The suite as a promptfoo config that :func:`load_promptfoo` reads back to the same
    suite. Prompts are written inline (a stored ``NAME@TAG`` needs ``store``)."""
    if suite.mode != "chat":
        raise _refuse(f"exporting a '{suite.mode}'-mode suite", suite.source,
                      "promptfoo configs here are chat; set mode: chat")
    config: dict[str, Any] = {}
    if suite.description:
        config["description"] = suite.description
    config["tags"] = {SUITE_TAG: suite.name}
    config["prompts"] = [_export_prompt(suite, i, e, store) for i, e in enumerate(suite.prompts)]
    config["providers"] = [_export_model(m, suite.generation) for m in suite.models]
    if suite.default_test is not None:
        config["defaultTest"] = _export_case(suite.default_test, suite.source)
    config["tests"] = [_export_case(c, suite.source) for c in suite.cases]
    if suite.repeat > 1:
        config["evaluateOptions"] = {"repeat": suite.repeat}
    return config


def write_promptfoo(suite: Suite, path: str | Path, *, store: Store | None = None) -> None:
    """Write :func:`export_promptfoo`'s config as YAML (relative file paths in assertions stay
    relative: write it next to the suite)."""
    header = (f"# promptfoo config written by promptmill from {suite.source}\n"
              "# promptmill reads it back with: promptmill test THIS_FILE\n")
    body = yaml.safe_dump(export_promptfoo(suite, store=store), sort_keys=False,
                          allow_unicode=True, width=100)
    Path(path).write_text(header + body, encoding="utf-8")


def _export_prompt(suite: Suite, index: int, entry: PromptEntry,
                   store: Store | None) -> dict[str, Any] | str:
    label, prompt = entry.label, entry.prompt
    if prompt is None:
        assert entry.ref is not None  # PromptEntry holds exactly one of the two
        label, prompt = _referenced_prompt(suite, index, entry, store)
    where = f"{suite.source}: prompts[{index}]"
    for field in _UNEXPORTABLE_PROMPT_FIELDS:
        if getattr(prompt, field):
            raise _refuse(f"exporting a prompt's {field}", where,
                          f"promptfoo has no {field}; remove it from the prompt to export")
    raw = _prompt_raw(prompt)
    label = label or prompt.name
    if label is None and prompt.max_tokens is None:
        return raw
    out: dict[str, Any] = {"raw": raw}
    if label is not None:
        out["label"] = label
    if prompt.max_tokens is not None:
        out["config"] = {"max_tokens": prompt.max_tokens}
    return out


def _referenced_prompt(suite: Suite, index: int, entry: PromptEntry,
                       store: Store | None) -> tuple[str | None, Prompt]:
    ref = str(entry.ref)
    path = Path(ref.removeprefix(FILE))
    path = path if path.is_absolute() else suite.base_dir / path
    if path.is_file():
        prompt = Prompt.from_file(path)
        return entry.label or prompt.name or path.stem, prompt
    if store is None:
        raise ConfigError(f"the prompt '{ref}' is neither a file nor exportable without the "
                          "store", where=f"{suite.source}: prompts[{index}]",
                          fix="export with the store that holds it, or give a prompt file")
    from .prompts import resolve_ref

    label, prompt = resolve_ref(ref, store, suite.base_dir, f"{suite.source}: prompts[{index}]")
    return entry.label or label.partition("@")[0], prompt.model_copy(update={"name": None})


def _prompt_raw(prompt: Prompt) -> str:
    """A plain template when the prompt is one user message, else promptfoo's JSON chat."""
    system = prompt.system_text()
    if not system and not prompt.demos:
        return prompt.template
    messages = [{"role": "system", "content": system}] if system else []
    for i, demo in enumerate(prompt.demos):
        messages.append({"role": "user",
                         "content": prompt.render_input(demo.inputs, where=f"demo {i + 1}")})
        messages.append({"role": "assistant", "content": demo.output})
    messages.append({"role": "user", "content": prompt.template})
    return json.dumps(messages, indent=2, ensure_ascii=False)


def _export_model(model: ModelEntry, generation: SuiteGeneration) -> dict[str, Any]:
    settings: dict[str, Any] = {"temperature": generation.temperature,
                                "max_tokens": generation.max_tokens, "top_p": generation.top_p,
                                "seed": generation.seed}
    if generation.stop:
        settings["stop"] = list(generation.stop)
    name, _, argument = model.spec.partition(":")
    params = dict(model.params)
    if name == "openai" and argument and set(params) <= {"base_url", "api_key_env"}:
        config = {**({"apiBaseUrl": params["base_url"]} if "base_url" in params else {}),
                  **({"apiKeyEnvar": params["api_key_env"]} if "api_key_env" in params else {}),
                  **settings}
        out: dict[str, Any] = {"id": f"openai:chat:{argument}", "config": config}
    else:
        clash = sorted(set(params) & set(_GENERATION_KEYS))
        if clash:
            raise _refuse(f"exporting the model param '{clash[0]}'", model.spec,
                          "it would be read back as a generation setting; rename it")
        out = {"id": f"promptmill:{model.spec}", "config": {**params, **settings}}
    if model.label:
        out["label"] = model.label
    return out


def _export_case(case: Case, source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if case.description is not None:
        out["description"] = case.description
    if case.vars:
        out["vars"] = dict(case.vars)
    if case.assertions:
        out["assert"] = [_export_assertion(a, source) for a in case.assertions]
    if case.threshold is not None:
        out["threshold"] = case.threshold
    if case.id is not None:
        out["metadata"] = {"id": case.id}  # promptfoo has no test id; metadata carries it
    return out


def _export_assertion(assertion: Assertion, source: str) -> dict[str, Any]:
    base = assertion.base_type
    if base == "cost":
        _warn(source, "a cost assertion is a token ceiling in promptmill; promptfoo reads its "
                      "threshold as dollars")
    if base in PROMPTMILL_ONLY_TYPES or base.startswith("python:"):
        _warn(source, f"the assertion type '{assertion.type}' is promptmill's own; promptfoo "
                      "does not know it")
    out = assertion.model_dump(mode="json", exclude_none=True, exclude={"weight"})
    if assertion.weight != 1.0:
        out["weight"] = assertion.weight
    if assertion.provider is not None:
        out["provider"] = _provider_id(assertion.provider)
    return out


def _provider_id(spec: str) -> str:
    name, _, argument = spec.partition(":")
    return f"openai:chat:{argument}" if name == "openai" and argument else f"promptmill:{spec}"

