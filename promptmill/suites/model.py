"""A test suite as data: prompts x models x cases, each case with vars and assertions.

This is the one shape every suite takes, whether it was written in promptmill's own YAML
(``promptmill test suite.yaml``) or read from a promptfoo config
(:mod:`promptmill.suites.promptfoo`). Loading, checking and running all work on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..prompt import Prompt


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


NEGATION = "not-"


class Assertion(_Strict):
    """One check on a model's output.

    ``type`` uses promptfoo's names (``contains``, ``icontains``, ``contains-any``,
    ``llm-rubric``, ``python:FILE.py:FUNCTION`` ...); ``not-TYPE`` negates any of them.
    ``threshold`` is the score a check needs to pass (for ``latency`` the most milliseconds,
    for ``cost`` the most tokens); ``weight`` its share of the case's weighted score;
    ``metric`` a name under which its scores are also reported as a group.
    """

    type: str = Field(min_length=1)
    value: Any = None
    threshold: float | None = None
    weight: float = Field(default=1.0, ge=0)
    metric: str | None = None
    provider: str | None = None  # the judge (llm-rubric) or embedding model (similar)

    @property
    def negated(self) -> bool:
        return self.type.startswith(NEGATION)

    @property
    def base_type(self) -> str:
        return self.type.removeprefix(NEGATION)


class Case(_Strict):
    """One test: the template's vars and the assertions on the answer.

    Without ``threshold`` a case passes when every assertion passes; with one, when the
    weighted mean of the assertion scores reaches it (promptfoo's rule).
    """

    id: str | None = None
    description: str | None = None
    vars: dict[str, Any] = Field(default_factory=dict)
    assertions: list[Assertion] = Field(default_factory=list, alias="assert")
    threshold: float | None = Field(default=None, ge=0, le=1)

    @field_validator("assertions", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value


class PromptEntry(_Strict):
    """A prompt under test: a file, a stored ``NAME@TAG``, or a prompt written inline."""

    ref: str | None = None
    prompt: Prompt | None = None
    label: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> PromptEntry:
        if (self.ref is None) == (self.prompt is None):
            raise ValueError("give either ref (a file or NAME@TAG) or prompt (inline). "
                             "Fix: keep one of the two")
        return self


class ModelEntry(_Strict):
    """A model under test: a spec as ``--model`` takes it, its params and a display label."""

    spec: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or self.spec


class SuiteGeneration(_Strict):
    max_tokens: int = Field(default=64, ge=1)
    temperature: float = Field(default=0.0, ge=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    seed: int | None = 0
    stop: list[str] = Field(default_factory=list)


class Suite(_Strict):
    """Every prompt runs against every model on every case, ``repeat`` times each."""

    name: str = Field(min_length=1)
    description: str | None = None
    prompts: list[PromptEntry] = Field(min_length=1)
    models: list[ModelEntry] = Field(default_factory=lambda: [ModelEntry(spec="embedded")],
                                     min_length=1)
    cases: list[Case] = Field(min_length=1, alias="tests")
    default_test: Case | None = Field(default=None, alias="defaultTest")
    repeat: int = Field(default=1, ge=1)
    generation: SuiteGeneration = Field(default_factory=SuiteGeneration)
    mode: str = "chat"
    # where the suite came from: relative paths (file prompts, python: checks) resolve here
    source: str = Field(default="<suite>", exclude=True)
    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("prompts", mode="before")
    @classmethod
    def _prompt_entries(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [_prompt_entry(v) for v in value]

    @field_validator("models", mode="before")
    @classmethod
    def _model_entries(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            return value
        return [{"spec": v} if isinstance(v, str) else v for v in value]

    def case_id(self, index: int) -> str:
        case = self.cases[index]
        return case.id or f"case-{index + 1}"

    def merged(self, index: int) -> Case:
        """The case with ``defaultTest`` applied: its vars under the case's, its asserts first."""
        case, default = self.cases[index], self.default_test
        if default is None:
            return case
        return case.model_copy(update={
            "vars": {**default.vars, **case.vars},
            "assertions": [*default.assertions, *case.assertions],
            "threshold": case.threshold if case.threshold is not None else default.threshold})


def _prompt_entry(value: Any) -> Any:
    """``path/or/NAME@TAG`` -> a ref; a mapping of prompt fields -> an inline prompt."""
    if isinstance(value, str):
        return {"ref": value}
    if isinstance(value, dict) and not set(value) & {"ref", "prompt"}:
        label = value.get("label")
        body = {k: v for k, v in value.items() if k != "label"}
        return {"prompt": body, "label": label}
    return value
