"""Fixtures for tuning tests: the embedded model in PyTorch, a tiny model, a synthetic task."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import skip_or_fail, write_jsonl

WORDS = ["apple", "banana", "cherry", "grape", "lemon", "mango", "olive", "peach", "plum",
         "melon", "kiwi", "lime", "tomato", "carrot", "onion", "radish", "spinach", "garlic",
         "pepper", "celery", "potato", "turnip", "fennel", "squash"]


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


def letter_rows() -> list[dict]:
    return [{"id": f"w{i}", "input": w, "output": w[0]} for i, w in enumerate(WORDS)]


def write_task(folder: Path, model: str = "embedded", splits: dict | None = None) -> Path:
    """The first-letter task written for these tests: 24 words, answer = first letter."""
    write_jsonl(folder / "letters.jsonl", letter_rows())
    config = {"name": "letters",
              "data": {"path": "letters.jsonl", "id": "id"},
              "splits": splits or {"train": 12, "validation": 4, "test": 8, "seed": 0},
              "metric": "exact", "model": model, "generation": {"max_tokens": 4},
              "prompt": {"name": "seed", "instruction": "Write the first letter of the word.",
                         "template": "{{ input }}"}}
    (folder / "task.yaml").write_text(yaml.safe_dump(config))
    return folder / "task.yaml"


@pytest.fixture
def letters_task(tmp_path) -> Path:
    return write_task(tmp_path)


@pytest.fixture
def tiny_task(tmp_path, tiny_model_dir) -> Path:
    return write_task(tmp_path, model=f"hf:{tiny_model_dir}")


def loaded(config: Path):
    from promptmill.api import build_metric, generation_params, load_task

    cfg, task = load_task(config)
    return task, cfg.prompt, build_metric(cfg), generation_params(cfg)
