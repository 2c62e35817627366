"""Tuning hyperparameters as one strict, JSON-serializable record."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Method = Literal["lora", "prompt-tuning", "prefix"]
METHODS: tuple[str, ...] = ("lora", "prompt-tuning", "prefix")


class TuneSettings(BaseModel):
    """Everything that decides what a tuning run learns. Stored with the adapter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Method = "lora"
    learning_rate: float | None = Field(default=None, gt=0, description="default by method")
    epochs: int = Field(default=3, ge=1)
    max_steps: int | None = Field(default=None, ge=1, description="stop after this many steps")
    batch_size: int = Field(default=8, ge=1)
    grad_accum: int = Field(default=1, ge=1)
    max_length: int = Field(default=128, ge=8, description="tokens per training sequence")
    rank: int = Field(default=8, ge=1, description="LoRA rank")
    alpha: int = Field(default=16, ge=1, description="LoRA alpha")
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: str = "all-linear"
    virtual_tokens: int = Field(default=16, ge=1, description="soft prompt / prefix length")
    patience: int = Field(default=1, ge=0, description="epochs without improvement before "
                                                       "stopping; 0 never stops early")
    eval_limit: int | None = Field(default=None, ge=1, description="validation examples "
                                                                  "scored per epoch")
    checkpoint_every: int | None = Field(default=None, ge=1, description="also checkpoint "
                                                                         "every N steps")
    weight_decay: float = Field(default=0.0, ge=0)
    seed: int = 0

    @property
    def lr(self) -> float:
        return self.learning_rate or default_learning_rate(self.method)


def default_learning_rate(method: str) -> float:
    """Soft prompts need a far larger step than LoRA: they start far from any useful point."""
    return 1e-3 if method == "lora" else 3e-2
