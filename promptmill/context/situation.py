"""Typed context variables: who is asking, for whom, where, when and through which channel.

A :class:`Situation` is a small, strict record (pydantic, ``extra="forbid"``) so a typo such as
``local: fr`` or a malformed locale fails when the config is read, not as a silently worse
prompt. :class:`SituationContext` turns it into a short block in one context slot::

    Audience: first-time buyers
    Locale: fr-FR
    Date: 2026-11-24

Only the fields that are set are written, so an empty field never costs tokens or invites the
model to make something up. An example can override any field with an input of the same name
(an input ``locale`` beats ``Situation.locale``; an input named like a key of ``extra`` beats
that key), so one task can mix users without one config per user.

Using the values as Jinja variables
-----------------------------------
The evaluator renders the template with the example's inputs only. Two ways get situation values
into the template itself:

* per example: put them in the data (an input field ``locale``); the template reads
  ``{{ locale }}`` like any other field, and ``SituationContext`` picks the same field up too;
* for the whole run: ``SituationContext(situation, variables=True)`` prepends a Jinja
  ``{% set situation = {...} %}`` to the prompt's template, so the template can read
  ``{{ situation.locale }}``, ``{% if situation.audience %}...{% endif %}`` or
  ``{{ situation.extra.plan }}``. Every field is defined (unset ones are ``none``), so strict
  rendering never fails on an unset field. Pass ``slot=None`` to use only the variables.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ConfigError, DataError
from ..prompt import Prompt
from ..task import Example
from .base import Prepared

# language (2-3 letters), optional script (4 letters), optional region (2 letters or 3 digits):
# strict enough to catch 'english' or 'en_US', loose enough for every tag a user will write
_LOCALE = re.compile(r"^([A-Za-z]{2,3})(?:-([A-Za-z]{4}))?(?:-([A-Za-z]{2}|[0-9]{3}))?$")

Channel = Literal["chat", "email", "voice", "sms", "web", "api"]
FIELDS = ("persona", "audience", "locale", "channel", "date")


def normalize_locale(tag: str) -> str:
    """'EN-us' -> 'en-US', 'zh-hant-tw' -> 'zh-Hant-TW'; raise ValueError if not BCP-47-ish."""
    match = _LOCALE.match(tag.strip())
    if not match:
        raise ValueError(f"'{tag}' is not a locale tag like 'en-US', 'fr' or 'zh-Hant-TW'")
    language, script, region = match.groups()
    parts = [language.lower(), script.title() if script else None,
             region.upper() if region else None]
    return "-".join(p for p in parts if p)


class Situation(BaseModel):
    """The circumstances of a request; every field is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    persona: str | None = Field(default=None, description="who the user is (a profile)")
    audience: str | None = Field(default=None, description="who the answer is for")
    locale: str | None = Field(default=None, description="BCP-47 tag, e.g. en-US or fr")
    channel: Channel | None = None
    date: dt.date | None = None
    extra: dict[str, str] = Field(default_factory=dict)

    @field_validator("locale")
    @classmethod
    def _check_locale(cls, value: str | None) -> str | None:
        return normalize_locale(value) if value is not None else None

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "situation") -> Situation:
        """Validate plain data, turning pydantic's report into one actionable line."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise _config_error(exc, where) from None

    def lines(self) -> list[str]:
        """'Field: value' for each field that is set, in a fixed order, extras last."""
        out = [f"{name.capitalize()}: {_show(getattr(self, name))}" for name in FIELDS
               if getattr(self, name) is not None]
        out.extend(f"{_label(key)}: {value}" for key, value in self.extra.items())
        return out

    def text(self) -> str:
        return "\n".join(self.lines())

    def variables(self) -> dict[str, Any]:
        """Every field (unset ones as None) as plain strings, for use in templates."""
        values: dict[str, Any] = {name: getattr(self, name) for name in FIELDS}
        values["date"] = self.date.isoformat() if self.date else None
        values["extra"] = dict(self.extra)
        return values

    def with_overrides(self, inputs: dict[str, Any], where: str = "example") -> Situation:
        """This situation with fields replaced by same-named, non-empty example inputs."""
        changes = {k: _plain(inputs[k]) for k in FIELDS if _given(inputs.get(k))}
        extra = {k: str(inputs[k]) for k in self.extra if _given(inputs.get(k))}
        if not changes and not extra:
            return self
        data = {**self.model_dump(), **changes, "extra": {**self.extra, **extra}}
        try:
            return Situation.model_validate(data)
        except ValidationError as exc:
            raise _data_error(exc, where) from None


class SituationContext:
    """Writes the situation into a context slot (and optionally into template variables)."""

    def __init__(self, situation: Situation | dict[str, Any], slot: str | None = "situation",
                 variables: bool = False):
        self.situation = (situation if isinstance(situation, Situation)
                          else Situation.from_dict(situation))
        if slot is None and not variables:
            raise ConfigError("SituationContext with slot=None and variables=False does nothing",
                              where="SituationContext",
                              fix="give a slot name, or pass variables=True")
        self.slot = slot
        self.variables = variables

    def prepare(self, prepared: Prepared, example: Example) -> Prepared:
        situation = self.situation.with_overrides(example.inputs, where=f"example {example.id}")
        if self.slot is not None:
            self._check_slot(prepared)
            prepared.context[self.slot] = situation.text() or "(not specified)"
        if self.variables:
            prepared.prompt = _with_variables(prepared.prompt, situation)
        return prepared

    def _check_slot(self, prepared: Prepared) -> None:
        if self.slot in prepared.prompt.context_slots:
            return
        name = prepared.prompt.name or "the prompt"
        raise ConfigError(f"{name} has no context slot '{self.slot}' for the situation",
                          where="SituationContext",
                          fix=f"add '{self.slot}' to the prompt's context_slots "
                              f"(context_slots: [{self.slot}]) or pass slot=None, "
                              "variables=True")

    def describe(self) -> dict[str, Any]:
        return {"contextualizer": "situation", "slot": self.slot, "variables": self.variables,
                "situation": self.situation.model_dump(mode="json", exclude_none=True)}


def _with_variables(prompt: Prompt, situation: Situation) -> Prompt:
    # A Python repr of a dict of strings/None is also a valid Jinja literal (Jinja decodes
    # string escapes the same way), and '%}' inside a quoted string does not end the tag.
    # Nothing is emitted, so the rendered text is unchanged apart from the template's own use.
    prelude = "{% set situation = " + repr(situation.variables()) + " %}"
    return prompt.model_copy(update={"template": prelude + prompt.template})


def _show(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _given(value: Any) -> bool:
    return value is not None and str(value).strip() != ""


def _plain(value: Any) -> Any:
    # dates may arrive as date objects or ISO strings; pydantic parses both
    return value if isinstance(value, dt.date) else str(value).strip()


def _first_problem(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"unknown situation field '{field}'", \
            f"use one of: {', '.join((*FIELDS, 'extra'))}"
    return f"situation field '{field}': {err['msg']}", "correct the value"


def _config_error(exc: ValidationError, where: str) -> ConfigError:
    message, fix = _first_problem(exc)
    return ConfigError(message, where=where, fix=fix)


def _data_error(exc: ValidationError, where: str) -> DataError:
    message, _ = _first_problem(exc)
    return DataError(message, where=where,
                     fix="correct the input field in the data, or leave it empty")
