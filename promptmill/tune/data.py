"""Training sequences: the prompt rendered through the chat template, loss on the answer only.

Each example becomes ``prompt tokens + answer tokens + end-of-turn``. Labels are -100 on the
prompt, so the model learns to answer, not to repeat instructions. The prompt is rendered by
:meth:`promptmill.rendering.Renderer.render`, the same path evaluation uses, so training and
inference see identical text, demos retrieved per input (``demo_selection``) included; an
example never retrieves itself.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import DataError
from ..task import Example

IGNORE = -100
Render = Callable[[Example], list[dict[str, str]]]


@dataclass(frozen=True)
class Sequence:
    input_ids: list[int]
    labels: list[int]


def encode_example(tokenizer: Any, render: Render, example: Example,
                   max_length: int) -> Sequence:
    """One example as a training sequence; a long prompt is cut from the left, never the answer.

    ``render`` turns the example into chat messages the way evaluation does (an
    :meth:`Renderer.render` bound to the prompt), so retrieved demos are there too.
    """
    if example.target is None:
        raise DataError(f"example '{example.id}' has no target to train on",
                        where=f"example '{example.id}'",
                        fix="set data.target in the task config to the answer field")
    messages = render(example)
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(example.target + tokenizer.eos_token,
                           add_special_tokens=False)["input_ids"]
    answer_ids = answer_ids[:max_length - 1]
    prompt_ids = prompt_ids[-(max_length - len(answer_ids)):]
    return Sequence(prompt_ids + answer_ids, [IGNORE] * len(prompt_ids) + answer_ids)


def encode_all(tokenizer: Any, render: Render, examples: list[Example],
               max_length: int) -> list[Sequence]:
    return [encode_example(tokenizer, render, ex, max_length) for ex in examples]


def batches(sequences: list[Sequence], batch_size: int, epoch: int, seed: int
            ) -> list[list[Sequence]]:
    """The epoch's batches in a fixed order: a resumed run replays exactly the same order."""
    order = list(range(len(sequences)))
    random.Random(f"{seed}:{epoch}").shuffle(order)
    return [[sequences[i] for i in order[k:k + batch_size]]
            for k in range(0, len(order), batch_size)]


def collate(batch: list[Sequence], pad_id: int):
    """Right-padded tensors: input_ids, attention_mask, labels."""
    import torch

    width = max(len(s.input_ids) for s in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, seq in enumerate(batch):
        n = len(seq.input_ids)
        ids[row, :n] = torch.tensor(seq.input_ids)
        labels[row, :n] = torch.tensor(seq.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
