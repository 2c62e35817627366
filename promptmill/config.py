"""Task configs in YAML, validated by pydantic, with errors that name file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .context.config import ContextConfig
from .prompt import Prompt

# The YAML reader lives in its own leaf module; these names stay importable from here.
from .yamlfile import (  # noqa: F401 - re-exported for older imports
    MAX_ALIAS_GROWTH,
    MAX_YAML_DEPTH,
    load_yaml_model,
    read_yaml,
    validate_with_lines,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


FieldName = Annotated[str, Field(min_length=1)]


class DataConfig(_Strict):
    path: str = Field(min_length=1)
    input: list[FieldName] = Field(default_factory=lambda: ["input"], min_length=1)
    target: FieldName | None = "output"
    answers: FieldName | None = None
    id: FieldName | None = None

    @field_validator("input", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


# A split size is a fraction of the data (a float up to 1) or a count of examples.
SplitSize = Annotated[float | int, Field(ge=0, allow_inf_nan=False)]
# Seeds end up in the store and in model calls: keep them within a signed 64-bit integer.
Seed = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class SplitConfig(_Strict):
    train: SplitSize = 0.5
    validation: SplitSize = 0.2
    test: SplitSize = 0.3
    seed: Seed = 0


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
    seed: Seed = 0
    stop: list[str] = Field(default_factory=list)
    logprobs: bool = False  # keep token log-probabilities, for calibration in diagnose


def _coerce_named(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class TaskConfig(_Strict):
    """Everything needed to evaluate: data, splits, metric, model, generation and prompt."""

    name: str = Field(min_length=1, max_length=200)
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


def load_task_config(path: str | Path) -> TaskConfig:
    path = Path(path)
    data, root = read_yaml(path)
    extra: dict[str, Any] = {"base_dir": path.parent, "source": str(path)}
    if isinstance(data, dict) and isinstance(data.get("prompt"), str):
        prompt_path = path.parent / data["prompt"]
        data = {**data, "prompt": Prompt.from_file(prompt_path).model_dump()}
        extra["prompt_source"] = str(prompt_path)
    return validate_with_lines(TaskConfig, data, path, root, **extra)
