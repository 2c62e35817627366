"""Task configs in YAML, validated by pydantic, with errors that name file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .context.config import ContextConfig
from .errors import ConfigError
from .prompt import Prompt

M = TypeVar("M", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataConfig(_Strict):
    path: str
    input: list[str] = Field(default_factory=lambda: ["input"])
    target: str | None = "output"
    answers: str | None = None
    id: str | None = None

    @field_validator("input", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class SplitConfig(_Strict):
    train: float | int = 0.5
    validation: float | int = 0.2
    test: float | int = 0.3
    seed: int = 0


class MetricConfig(_Strict):
    name: str = "exact"
    params: dict[str, Any] = Field(default_factory=dict)


class ModelConfig(_Strict):
    name: str = "embedded"
    params: dict[str, Any] = Field(default_factory=dict)
    mode: Literal["chat", "completion"] = "chat"


class GenerationConfig(_Strict):
    max_tokens: int = Field(default=64, ge=1, le=32768)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int = 0
    stop: list[str] = Field(default_factory=list)
    logprobs: bool = False  # keep token log-probabilities, for calibration in diagnose


def _coerce_named(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class TaskConfig(_Strict):
    """Everything needed to evaluate: data, splits, metric, model, generation and prompt."""

    name: str
    data: DataConfig
    splits: SplitConfig = Field(default_factory=SplitConfig)
    metric: MetricConfig = Field(default_factory=MetricConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    prompt: Prompt = Field(default_factory=Prompt)
    context: ContextConfig | None = None
    base_dir: Path = Field(default=Path("."), exclude=True)
    source: str = Field(default="task config", exclude=True)
    prompt_source: str | None = Field(default=None, exclude=True)

    _metric_named = field_validator("metric", "model", mode="before")(_coerce_named)

    def data_path(self) -> Path:
        path = Path(self.data.path)
        return path if path.is_absolute() else self.base_dir / path


# ---------------------------------------------------------------------------------------------
# YAML loading with line numbers


def _node_for(node: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """Walk a composed YAML node tree along a pydantic error location."""
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if getattr(k, "value", None) == str(key)]
            if not match:
                return node
            node = match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            return node
    return node


def _read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    if not path.exists():
        raise ConfigError("file not found", where=str(path), fix="check the path")
    text = path.read_text(encoding="utf-8")
    try:
        return yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid YAML ({problem})", where=f"{path}{line}",
                          fix="check indentation and quoting on that line") from None


def validate_with_lines(model: type[M], data: Any, path: Path, root: yaml.Node | None,
                        **extra: Any) -> M:
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of settings", where=str(path),
                          fix="write the file as 'key: value' lines")
    try:
        return model.model_validate({**data, **extra})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        node = _node_for(root, loc)
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        field = ".".join(str(p) for p in loc) or "(top level)"
        kind = err["type"]
        if kind == "extra_forbidden":
            allowed = ", ".join(_allowed_fields(model, loc[:-1]))
            msg, fix = f"unknown field '{field}'", f"remove it or use one of: {allowed}"
        elif kind == "missing":
            msg, fix = f"missing required field '{field}'", f"add '{loc[-1]}:' to the file"
        else:
            msg, fix = f"field '{field}': {err['msg']}", "correct the value"
        raise ConfigError(msg, where=f"{path}{line}", fix=fix) from None


def _allowed_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for key in loc:
        info = getattr(current, "model_fields", {}).get(str(key))
        if info is None:
            return []
        current = _model_in(info.annotation)
    fields = getattr(current, "model_fields", {})
    return [name for name, info in fields.items() if not info.exclude]


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside ``Model | None`` (or the annotation itself)."""
    import typing

    for arg in typing.get_args(annotation) or (annotation,):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return annotation


def load_yaml_model(path: Path, model: type[M]) -> M:
    data, root = _read_yaml(path)
    return validate_with_lines(model, data, path, root)


def load_task_config(path: str | Path) -> TaskConfig:
    path = Path(path)
    data, root = _read_yaml(path)
    extra: dict[str, Any] = {"base_dir": path.parent, "source": str(path)}
    if isinstance(data, dict) and isinstance(data.get("prompt"), str):
        prompt_path = path.parent / data["prompt"]
        data = {**data, "prompt": Prompt.from_file(prompt_path).model_dump()}
        extra["prompt_source"] = str(prompt_path)
    return validate_with_lines(TaskConfig, data, path, root, **extra)
