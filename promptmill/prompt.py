"""Prompts: instruction, few-shot demos, context slots and an output-format note.

A prompt renders to chat messages (or one completion string for base models) with Jinja2 in
strict mode, so a variable the example does not have is an error, never an empty string. The
shared part (instruction, demos) always comes first and the example last: llama.cpp then reuses
the computed prefix from one example to the next.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .constrain import OutputSpec
from .context.config import DemoSelection  # also importable from here, as before
from .errors import ConfigError, PromptmillError, TemplateError, validator_words
from .hashing import canonical_json, sha256_hex  # also importable from here, as before
from .templating import SecurityError, render_limited, sandboxed_environment, unsafe_reference

# sandboxed: prompts come from other people, and a template must never reach Python
_ENV = sandboxed_environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False,
                             autoescape=False)
_SAFE_USE = "use only the input fields ({{ field }}), filters such as | upper, and {% if %}"


@lru_cache(maxsize=256)
def _compile(source: str) -> jinja2.Template:
    try:
        return _ENV.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error: {exc.message}",
                            where=f"template line {exc.lineno}",
                            fix="check the {{ }} and {% %} pairs in the template") from None
    except RecursionError:
        raise TemplateError("the template nests too deeply to compile", where="template",
                            fix="flatten the nested expressions") from None


class Demo(BaseModel):
    """A worked example shown to the model before the real input."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    inputs: dict[str, Any]
    output: str


_OPTIONAL_FIELDS = ("output_spec", "extract", "max_tokens", "demo_selection")


class Prompt(BaseModel):
    """Everything that decides what the model is asked, as plain data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instruction: str = ""
    template: str = "{{ input }}"
    demos: tuple[Demo, ...] = ()
    output_format: str | None = None
    context_slots: tuple[str, ...] = ()
    answer_prefix: str = Field(default="Answer:", description="completion-mode answer cue")
    output_spec: OutputSpec | None = Field(default=None, description="enforced while decoding")
    extract: str | None = Field(default=None, description="answer extraction rule")
    max_tokens: int | None = Field(default=None, ge=1, description="overrides the run's limit")
    demo_selection: DemoSelection | None = Field(default=None, description="per-input demos")
    name: str | None = Field(default=None, description="not part of the content hash")

    @field_validator("template")
    @classmethod
    def _no_unsafe_attribute(cls, template: str) -> str:
        name = unsafe_reference(template)
        if name is not None:
            raise ValueError(f"the template reaches '{name}', which templates may not use. "
                             f"Fix: {_SAFE_USE}")
        return template

    @field_validator("extract")
    @classmethod
    def _known_rule(cls, rule: str | None) -> str | None:
        if rule:
            from .extract import extractor

            try:
                extractor(rule)
            except PromptmillError as exc:
                raise ValueError(exc.message + ". Fix: " + (exc.fix or "")) from None
        return rule or None

    # --- identity -------------------------------------------------------------------------
    def content(self) -> dict[str, Any]:
        body = self.model_dump(mode="json", exclude={"name"})
        for added_later in _OPTIONAL_FIELDS:  # unset: keep the hashes of older prompts stable
            if body.get(added_later) is None:
                body.pop(added_later, None)
        return body

    @property
    def hash(self) -> str:
        """Stable across processes and machines: the sha256 of the canonical content."""
        return sha256_hex(canonical_json(self.content()))[:16]

    # --- rendering ------------------------------------------------------------------------
    def system_text(self) -> str:
        parts = [p.strip() for p in (self.instruction, self.output_format or "") if p.strip()]
        if self.output_spec is not None and self.output_format is None:
            parts.append(self.output_spec.format_note())
        return "\n\n".join(parts)

    def render_input(self, inputs: dict[str, Any], context: dict[str, Any] | None = None,
                     where: str = "example") -> str:
        missing = [s for s in self.context_slots if not context or s not in context]
        if missing:
            raise TemplateError(f"context slot '{missing[0]}' has no value", where=where,
                                fix=f"pass context={{'{missing[0]}': ...}} or drop the slot")
        body = self._render_template(inputs, where)
        given = context or {}  # None only when there are no slots: the check above raised
        blocks = [f"{slot.replace('_', ' ').capitalize()}:\n{given[slot]}"
                  for slot in self.context_slots]
        return "\n\n".join([*blocks, body])

    def _render_template(self, inputs: dict[str, Any], where: str) -> str:
        compiled = _compile(self.template)
        try:
            return render_limited(compiled, inputs)
        except SecurityError as exc:
            label = f"prompt {self.name}: template" if self.name else "template"
            raise TemplateError(f"{label} refused by the sandbox ({exc})", where=where,
                                fix=_SAFE_USE) from None
        except jinja2.UndefinedError as exc:
            have = ", ".join(sorted(inputs)) or "none"
            raise TemplateError(f"the template uses a variable the data lacks ({exc.message}; "
                                f"fields here: {have})", where=where,
                                fix="add the field to data.input or change the template") from None
        except Exception as exc:  # a user's template failing at run time is bad input, not a bug
            raise TemplateError(f"the template failed ({type(exc).__name__}: {exc})",
                                where=where, fix="check the expressions in the template") from None

    def render_messages(self, inputs: dict[str, Any], context: dict[str, Any] | None = None,
                        where: str = "example") -> list[dict[str, str]]:
        messages: list[dict[str, str]] = []
        system = self.system_text()
        if system:
            messages.append({"role": "system", "content": system})
        for i, demo in enumerate(self.demos):
            messages.append({"role": "user",
                             "content": self.render_input(demo.inputs, None if not
                                                          self.context_slots else
                                                          {s: "" for s in self.context_slots},
                                                          where=f"demo {i + 1}")})
            messages.append({"role": "assistant", "content": demo.output})
        messages.append({"role": "user", "content": self.render_input(inputs, context, where)})
        return messages

    def render_text(self, inputs: dict[str, Any], context: dict[str, Any] | None = None,
                    where: str = "example") -> str:
        """One completion string for base models: shared part first, the example last."""
        parts = [self.system_text()] if self.system_text() else []
        empty = {s: "" for s in self.context_slots} if self.context_slots else None
        for i, demo in enumerate(self.demos):
            shown = self.render_input(demo.inputs, empty, where=f"demo {i + 1}")
            parts.append(f"{shown}\n{self.answer_prefix} {demo.output}")
        parts.append(f"{self.render_input(inputs, context, where)}\n{self.answer_prefix}")
        return "\n\n".join(parts)

    def variables(self) -> set[str]:
        """Names the template reads, so configs can be checked before any call."""
        from jinja2 import meta

        return set(meta.find_undeclared_variables(_ENV.parse(self.template)))

    # --- files ----------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str | Path) -> Prompt:
        from .yamlfile import load_yaml_model

        return load_yaml_model(Path(path), cls)

    @classmethod
    def from_stored(cls, body: str | dict[str, Any], ref: str,
                    name: str | None = None) -> Prompt:
        """A version read back from a store or an export, named ``ref`` (NAME@VERSION) in
        errors: content that no longer validates (say, a template written before the sandbox
        check) is a one-line error, never a traceback."""
        from pydantic import ValidationError

        data = json.loads(body) if isinstance(body, str) else dict(body)
        if name is not None:
            data["name"] = name
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err.get("loc", ())) or "(content)"
            message, fix = validator_words(err)
            raise ConfigError(f"field '{field}': {message}", where=ref,
                              fix=fix or "export the version, correct the field and import it "
                                         "as a new version") from None

    def to_yaml(self) -> str:
        """The prompt as a readable YAML file: unset fields left out, nested settings whole."""
        import yaml

        data = self.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
        for nested in ("demo_selection", "output_spec"):  # {} would hide the settings used
            if getattr(self, nested) is not None:
                data[nested] = getattr(self, nested).model_dump(mode="json", exclude_none=True)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    def to_file(self, path: str | Path) -> None:
        Path(path).write_text(self.to_yaml())


def parse_prompt_ref(ref: str) -> tuple[str, str | None]:
    """'name@3' or 'name@production' -> ('name', '3'|'production'); 'name' -> ('name', None)."""
    if not ref or ref.startswith("@"):
        raise ConfigError(f"bad prompt reference '{ref}'", where="--prompt",
                          fix="use a YAML file path, NAME, NAME@VERSION or NAME@TAG")
    name, _, version = ref.partition("@")
    return name, version or None
