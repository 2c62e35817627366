"""A transformers backend: a PyTorch causal LM behind the :class:`Model` interface.

It renders chat messages through the tokenizer's own chat template and decodes greedily, so a
prompt is seen exactly as it was during tuning. The ``hf:PATH_OR_GGUF`` and ``tuned:NAME``
factories that build one live in :mod:`promptmill.tune.backend`: loading a base or reading an
adapter's row from the store is tuning's business, and this module knows neither.
A tuned model's identity includes the adapter files' hash, so the call cache never mixes a
tuned model with its base or with another adapter.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .base import Generation, GenerationParams, Model, Request

BATCH_SIZE = 16  # requests padded into one forward pass


class TransformersModel(Model):
    """Greedy (or sampled) generation with a PyTorch causal LM, one request at a time."""

    concurrency = 1

    def __init__(self, model: Any, tokenizer: Any, identity: str, spec: str,
                 threads: int | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.identity, self.spec = identity, spec
        self.context_window = getattr(model.config, "max_position_embeddings", None)
        self.threads = threads
        self._lock = threading.Lock()

    def encode(self, request: Request) -> list[int]:
        if isinstance(request, str):
            return self.tokenizer(request, add_special_tokens=True)["input_ids"]
        text = self.tokenizer.apply_chat_template(request, tokenize=False,
                                                  add_generation_prompt=True)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def generate(self, request: Request, params: GenerationParams) -> Generation:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        ids = self.encode(request)
        inputs = torch.tensor([ids])
        sample = params.temperature > 0
        kwargs: dict[str, Any] = dict(max_new_tokens=params.max_tokens, do_sample=sample,
                                      pad_token_id=self.tokenizer.pad_token_id,
                                      eos_token_id=self.tokenizer.eos_token_id)
        if sample:
            torch.manual_seed(params.seed)
            kwargs.update(temperature=params.temperature, top_p=params.top_p)
        with self._lock, torch.inference_mode():
            start = time.perf_counter()
            out = self.model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs),
                                      **kwargs)
            seconds = time.perf_counter() - start
        new = out[0][len(ids):].tolist()
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        text, stopped = _cut_at_stop(text, params.stop)
        finished = stopped or (new and new[-1] == self.tokenizer.eos_token_id)
        return Generation(text=text, input_tokens=len(ids), output_tokens=len(new),
                          seconds=seconds, finish_reason="stop" if finished else "length")


    @property
    def batch_width(self) -> int:
        return BATCH_SIZE

    def generate_many(self, requests: list[Request], params: GenerationParams,
                      batch_size: int = 16) -> list[Generation]:
        """Greedy answers to many requests, several at a time (left-padded), in input order.

        Much faster on CPU than one at a time; padding can flip a near-tie in the last float
        bits, so an answer may rarely differ from :meth:`generate`'s.
        """
        encoded = [self.encode(r) for r in requests]
        out: list[Generation | None] = [None] * len(encoded)
        for chunk in self._chunks(encoded, batch_size):
            for i, generation in zip(chunk, self._batch([encoded[i] for i in chunk], params),
                                     strict=True):
                out[i] = generation
        return out  # type: ignore[return-value]

    def _chunks(self, encoded: list[list[int]], batch_size: int) -> list[list[int]]:
        """Indices batched by length. Soft prompts and prefixes get equal-length batches only:
        PEFT puts their virtual tokens before the padding and drops position ids, so a padded
        batch would answer differently from a single request (measured)."""
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        config = getattr(self.model, "active_peft_config", None)
        if not getattr(config, "is_prompt_learning", False):
            return [order[k:k + batch_size] for k in range(0, len(order), batch_size)]
        groups: dict[int, list[int]] = {}
        for i in order:
            groups.setdefault(len(encoded[i]), []).append(i)
        return [g[k:k + batch_size] for g in groups.values() for k in range(0, len(g), batch_size)]

    def _batch(self, encoded: list[list[int]], params: GenerationParams) -> list[Generation]:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        width = max(len(ids) for ids in encoded)
        pad, eos = self.tokenizer.pad_token_id, self.tokenizer.eos_token_id
        inputs = torch.tensor([[pad] * (width - len(ids)) + ids for ids in encoded])
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in encoded])
        with self._lock, torch.inference_mode():
            start = time.perf_counter()
            out = self.model.generate(input_ids=inputs, attention_mask=mask, do_sample=False,
                                      max_new_tokens=params.max_tokens, pad_token_id=pad,
                                      eos_token_id=eos)
            seconds = (time.perf_counter() - start) / len(encoded)
        results = []
        for ids, row in zip(encoded, out[:, width:].tolist(), strict=True):
            new = row[:row.index(eos) + 1] if eos in row else row
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            text, stopped = _cut_at_stop(text, params.stop)
            finished = stopped or (new and new[-1] == eos)
            results.append(Generation(text=text, input_tokens=len(ids), output_tokens=len(new),
                                      seconds=seconds,
                                      finish_reason="stop" if finished else "length"))
        return results


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    cuts = [text.index(s) for s in stops if s and s in text]
    return (text[:min(cuts)], True) if cuts else (text, False)
