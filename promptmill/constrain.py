"""Constrained output: an output spec that the backend enforces while decoding.

An :class:`OutputSpec` is one of a set of labels, a regular expression or a JSON schema.
- llama.cpp backends compile it to a GBNF grammar, so every sampled token keeps the answer
  valid: a 135M model cannot drift into an explanation.
- OpenAI-compatible servers get ``response_format`` with a JSON schema (labels and patterns are
  wrapped in ``{"answer": ...}`` and unwrapped again), which is what hosted APIs enforce.

Regular expressions are parsed with Python's own regex parser (``re._parser``) rather than a
hand-written one, so the accepted syntax is exactly Python's; features a grammar cannot express
(backreferences, lookarounds) are refused with a clear error before any call.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from .errors import ConfigError, validator_words
from .hashing import canonical_json

ANSWER_KEY = "answer"


class OutputSpec(BaseModel):
    """What a valid answer looks like: exactly one of ``labels``, ``pattern``, ``json_schema``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: tuple[str, ...] | None = None
    pattern: str | None = None
    json_schema: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> OutputSpec:
        given = [k for k in ("labels", "pattern", "json_schema") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of labels, pattern or json_schema "
                             f"(got {', '.join(given) or 'none'})")
        if self.labels is not None and (not self.labels or any(not x for x in self.labels)):
            raise ValueError("labels must be a non-empty list of non-empty strings")
        return self

    @property
    def kind(self) -> str:
        return "labels" if self.labels is not None else \
            "pattern" if self.pattern is not None else "json_schema"

    def key(self) -> str:
        """Canonical JSON: part of the call cache key, and what backends receive."""
        return canonical_json(self.model_dump(mode="json", exclude_none=True))

    @classmethod
    def from_key(cls, key: str) -> OutputSpec:
        return cls.model_validate(json.loads(key))

    # --- compiling --------------------------------------------------------------------------
    def to_gbnf(self) -> str:
        """The llama.cpp grammar; raises ConfigError if the spec cannot be expressed."""
        return _gbnf(self.key())

    def response_format(self) -> dict[str, Any]:
        """The OpenAI ``response_format`` that enforces this spec."""
        if self.json_schema is not None:
            schema = self.json_schema
        else:
            inner = {"type": "string", "enum": list(self.labels)} if self.labels is not None \
                else {"type": "string", "pattern": self.pattern}
            schema = {"type": "object", "properties": {ANSWER_KEY: inner},
                      "required": [ANSWER_KEY], "additionalProperties": False}
        return {"type": "json_schema",
                "json_schema": {"name": "answer", "schema": schema, "strict": True}}

    def unwrap(self, text: str) -> str:
        """Undo :meth:`response_format`'s wrapping of labels and patterns."""
        if self.json_schema is not None:
            return text
        try:
            value = json.loads(text)
        except ValueError:
            return text
        return str(value.get(ANSWER_KEY, text)) if isinstance(value, dict) else text

    # --- checking ---------------------------------------------------------------------------
    def is_valid(self, text: str) -> bool:
        """Does ``text`` satisfy the spec? Used for format-violation rates."""
        if self.labels is not None:
            return text.strip() in self.labels
        if self.pattern is not None:
            return re.fullmatch(self.pattern, text.strip()) is not None
        try:
            value = json.loads(text)
        except ValueError:
            return False
        import jsonschema

        schema = self.json_schema
        assert schema is not None  # exactly one of the three is set, checked on construction
        return jsonschema.Draft202012Validator(schema).is_valid(value)

    def format_note(self) -> str:
        """A sentence for the prompt, so the model is told what the grammar will enforce."""
        if self.labels is not None:
            return "Answer with exactly one of: " + ", ".join(self.labels) + "."
        if self.pattern is not None:
            return f"Answer in the format matching the pattern {self.pattern}."
        return "Answer with JSON matching this schema: " + canonical_json(self.json_schema)


def parse_spec(value: Any, where: str = "output_spec") -> OutputSpec:
    """An OutputSpec from config data, with a one-line error naming the field."""
    if isinstance(value, OutputSpec):
        return value
    try:
        spec = OutputSpec.model_validate(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        detail, own_fix = validator_words(error)
        raise ConfigError(f"bad output spec ({detail})", where=where,
                          fix=own_fix or "write labels: [..], pattern: '...' or json_schema: "
                                         "{...}") from None
    spec.to_gbnf()  # refuse a spec we cannot enforce before any call is made
    return spec


# --- GBNF generation ------------------------------------------------------------------------
def _literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # GBNF string literals use JSON escapes


@lru_cache(maxsize=128)
def _gbnf(key: str) -> str:
    spec = OutputSpec.from_key(key)
    if spec.labels is not None:
        return "root ::= " + " | ".join(_literal(label) for label in spec.labels) + "\n"
    if spec.pattern is not None:
        return "root ::= " + _regex_to_gbnf(spec.pattern) + "\n"
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        return json_schema_to_gbnf(json.dumps(spec.json_schema))
    except Exception as exc:  # the converter raises bare exceptions
        raise ConfigError(f"the JSON schema cannot be compiled to a grammar ({exc})",
                          where="output_spec.json_schema",
                          fix="use plain types, properties, enum, items and required") from None


def _regex_to_gbnf(pattern: str) -> str:
    import re._parser as sre  # Python's own regex parser: see the module docstring

    try:
        parsed = sre.parse(pattern)
    except re.error as exc:
        raise ConfigError(f"bad regular expression ({exc})", where="output_spec.pattern",
                          fix="fix the pattern; test it with Python's re module") from None
    return _seq(list(parsed), pattern) or '""'


_CATEGORIES = {
    "CATEGORY_DIGIT": "[0-9]", "CATEGORY_NOT_DIGIT": "[^0-9]",
    "CATEGORY_WORD": "[a-zA-Z0-9_]", "CATEGORY_NOT_WORD": "[^a-zA-Z0-9_]",
    "CATEGORY_SPACE": "[ \\t\\n\\r]", "CATEGORY_NOT_SPACE": "[^ \\t\\n\\r]",
}
_CLASS_CATEGORIES = {"CATEGORY_DIGIT": "0-9", "CATEGORY_WORD": "a-zA-Z0-9_",
                     "CATEGORY_SPACE": " \\t\\n\\r"}


def _char(code: int) -> str:
    ch = chr(code)
    if ch in "\\]-^[":
        return "\\" + ch
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, ch)


def _seq(items: list, pattern: str) -> str:
    return " ".join(part for part in (_item(op, av, pattern) for op, av in items) if part)


def _unsupported(what: str, pattern: str) -> ConfigError:
    return ConfigError(f"the pattern uses {what}, which a grammar cannot enforce",
                       where=f"output_spec.pattern '{pattern}'",
                       fix="rewrite it without lookarounds, backreferences or anchors inside")


def _item(op: Any, av: Any, pattern: str) -> str:
    name = str(op)
    if name == "LITERAL":
        return _literal(chr(av))
    if name == "NOT_LITERAL":
        return f"[^{_char(av)}]"
    if name == "ANY":
        return "[^\\n]"
    if name == "AT":  # ^ and $: generation already spans the whole answer
        return ""
    if name == "IN":
        return _char_class(av, pattern)
    if name == "CATEGORY":
        return _CATEGORIES[str(av)]
    if name == "BRANCH":
        return "(" + " | ".join(_seq(list(b), pattern) or '""' for b in av[1]) + ")"
    if name == "SUBPATTERN":
        return "(" + (_seq(list(av[-1]), pattern) or '""') + ")"
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, high, body = av
        inner = "(" + (_seq(list(body), pattern) or '""') + ")"
        if (low, high) == (0, 1):
            return inner + "?"
        if high == sre_maxrepeat():
            return inner + ("*" if low == 0 else "+" if low == 1 else f"{{{low},}}")
        return inner + (f"{{{low}}}" if low == high else f"{{{low},{high}}}")
    raise _unsupported(name.lower().replace("_", " "), pattern)


def sre_maxrepeat() -> Any:
    import re._constants as constants

    return constants.MAXREPEAT


def _char_class(items: list, pattern: str) -> str:
    negate, parts = False, []
    for op, av in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            parts.append(_char(av))
        elif name == "RANGE":
            parts.append(f"{_char(av[0])}-{_char(av[1])}")
        elif name == "CATEGORY" and str(av) in _CLASS_CATEGORIES:
            parts.append(_CLASS_CATEGORIES[str(av)])
        else:
            raise _unsupported(f"'{name.lower()}' inside a character class", pattern)
    return "[" + ("^" if negate else "") + "".join(parts) + "]"
