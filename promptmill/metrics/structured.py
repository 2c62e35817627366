"""Metrics for structured output: valid JSON, JSON that matches a schema (jsonschema).

jsonschema is imported when a ``json_schema`` metric is built, not when this module is.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..task import Example, read_user_text
from .base import Metric, Score, clip, digest, quote, resolve_path

_FENCE = re.compile(r"^```[A-Za-z0-9_-]*[ \t]*\n?(.*?)\n?[ \t]*```$", re.DOTALL)


def _strip_fence(text: str) -> str:
    text = text.strip()
    match = _FENCE.match(text)
    return match.group(1).strip() if match else text


def _parse_json(prediction: str) -> tuple[Any, str | None]:
    """The parsed value, or None with feedback that points at the error."""
    text = _strip_fence(prediction)
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        near = text[max(0, exc.pos - 20): exc.pos + 20]
        return None, (f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno} "
                      f"(near {near!r}); got {quote(prediction)}")


class JsonValid(Metric):
    """1 if the output is JSON, optionally inside a ```json fence."""

    name = "json_valid"

    def score(self, prediction: str, example: Example) -> Score:
        _, error = _parse_json(prediction)
        return Score(0.0, error) if error else Score(1.0)


def _load_schema(schema: Any, base_dir: Path | None) -> dict[str, Any]:
    """A schema given inline, as JSON text, or as a path to a JSON file."""
    if isinstance(schema, dict):
        return schema
    if not isinstance(schema, str):
        raise ConfigError(f"'schema' must be a mapping or a path to a JSON file, not {schema!r}",
                          where="metric.params.schema",
                          fix="write the schema inline in the config or give a file path")
    if schema.lstrip().startswith("{"):
        source, text = "metric.params.schema", schema
    else:
        path = resolve_path(schema, base_dir)
        source = str(path)
        text = read_user_text(path, what="JSON schema file", error=ConfigError,
                              missing_fix="check metric.params.schema (relative to the config "
                                          "file)")
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"the schema is not valid JSON ({exc.msg} at line {exc.lineno})",
                          where=source, fix="fix the JSON syntax of the schema") from None
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number, absurd nesting
        raise ConfigError(f"the schema cannot be read ({type(exc).__name__})", where=source,
                          fix="simplify the schema") from None
    if not isinstance(loaded, dict):
        raise ConfigError("a JSON schema must be an object", where=source,
                          fix='write the schema as {"type": ...}')
    return loaded


class JsonSchema(Metric):
    """1 if the output is JSON that validates against ``schema`` (jsonschema)."""

    name = "json_schema"

    def __init__(self, schema: dict[str, Any] | str, base_dir: Path | None = None):
        import jsonschema

        self.schema = _load_schema(schema, base_dir)
        cls = jsonschema.validators.validator_for(self.schema)
        try:
            cls.check_schema(self.schema)
        except jsonschema.SchemaError as exc:
            where = "/".join(str(p) for p in exc.path) or "top level"
            raise ConfigError(f"invalid JSON schema at {where}: {exc.message}",
                              where="metric.params.schema",
                              fix="fix the schema (see https://json-schema.org)") from None
        self._validator = cls(self.schema, format_checker=cls.FORMAT_CHECKER)
        self._best_match = jsonschema.exceptions.best_match

    def describe(self) -> str:
        return f"json_schema({digest(json.dumps(self.schema, sort_keys=True), 12)})"

    def score(self, prediction: str, example: Example) -> Score:
        data, error = _parse_json(prediction)
        if error:
            return Score(0.0, error)
        errors = list(self._validator.iter_errors(data))
        if not errors:
            return Score(1.0)
        first = self._best_match(errors)
        more = f" ({len(errors) - 1} more violations)" if len(errors) > 1 else ""
        return Score(0.0, f"JSON does not match the schema at {first.json_path}: "
                          f"{clip(first.message, 160)}{more}")
