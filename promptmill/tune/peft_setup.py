"""Wrapping a base model with the PEFT method a run asks for."""

from __future__ import annotations

from typing import Any

from ..errors import require
from ..prompt import Prompt
from .settings import TuneSettings


def wrap(model: Any, tokenizer: Any, settings: TuneSettings, prompt: Prompt) -> Any:
    """``model`` with trainable LoRA layers, a soft prompt or a prefix; the rest frozen."""
    peft = require("peft", "tune", "model tuning")
    if settings.method == "lora":
        config = peft.LoraConfig(task_type="CAUSAL_LM", r=settings.rank,
                                 lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                                 target_modules=settings.target_modules)
    elif settings.method == "prompt-tuning":
        config = peft.PromptTuningConfig(task_type="CAUSAL_LM",
                                         num_virtual_tokens=settings.virtual_tokens)
    else:
        config = peft.PrefixTuningConfig(task_type="CAUSAL_LM",
                                         num_virtual_tokens=settings.virtual_tokens)
    wrapped = peft.get_peft_model(model, config)
    if settings.method == "prompt-tuning":
        _init_from_text(wrapped, tokenizer, prompt.instruction or "Answer the question.")
    return wrapped


def _init_from_text(wrapped: Any, tokenizer: Any, text: str) -> None:
    """Start the soft prompt at the embeddings of the instruction's tokens, repeated to length.

    PEFT's own text init reloads the tokenizer by name, which a GGUF-loaded model has not got;
    a random init trains much more slowly than one that starts at real words.
    """
    import torch

    table = wrapped.prompt_encoder[wrapped.active_adapter].embedding.weight
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] or [tokenizer.eos_token_id]
    n = table.shape[0]
    ids = (ids * (n // len(ids) + 1))[:n]
    words = wrapped.get_input_embeddings().weight
    with torch.no_grad():
        table.copy_(words[torch.tensor(ids)].detach().clone())


def trainable_parameters(model: Any) -> list:
    return [p for p in model.parameters() if p.requires_grad]
