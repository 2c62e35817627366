"""Fixtures for tuning tests: the embedded model in PyTorch, a tiny model, a synthetic task."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import skip_or_fail
from tune_helpers import write_task


def _require_tune() -> None:
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        skip_or_fail(f"the [tune] extra is not installed ({exc})")


@pytest.fixture(scope="session")
def embedded_base():
    """SmolLM2-135M-Instruct dequantized into PyTorch, loaded once for the whole session."""
    _require_tune()
    from promptmill.errors import ModelError
    from promptmill.tune.base import load_base

    try:
        return load_base("embedded")
    except ModelError as exc:
        skip_or_fail(f"embedded model unavailable: {exc}")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, embedded_base) -> Path:
    """A randomly initialised 2-layer Llama with SmolLM2's tokenizer: trains in milliseconds."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = embedded_base.tokenizer
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def letters_task(tmp_path) -> Path:
    return write_task(tmp_path)


@pytest.fixture
def tiny_task(tmp_path, tiny_model_dir) -> Path:
    return write_task(tmp_path, model=f"hf:{tiny_model_dir}")
