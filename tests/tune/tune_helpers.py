"""Plain helpers for the tuning tests (a conftest module cannot be imported by name: every
test folder has one)."""

from __future__ import annotations

from pathlib import Path

import yaml
from helpers import write_jsonl

WORDS = ["apple", "banana", "cherry", "grape", "lemon", "mango", "olive", "peach", "plum",
         "melon", "kiwi", "lime", "tomato", "carrot", "onion", "radish", "spinach", "garlic",
         "pepper", "celery", "potato", "turnip", "fennel", "squash"]


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


def loaded(config: Path):
    from promptmill.api import build_metric, generation_params, load_task

    cfg, task = load_task(config)
    return task, cfg.prompt, build_metric(cfg), generation_params(cfg)
