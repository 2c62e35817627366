"""Scoring many examples with a PyTorch model in batches, rendered exactly as evaluation does.

``score`` is what training uses to validate each epoch. ``warm_cache`` answers a split in
batches and writes the answers into the store's call cache under the keys the
:class:`~promptmill.evaluation.Evaluator` computes, so an ordinary recorded evaluation that
follows is all cache hits: the run has every result, at batch speed.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..evaluation import Evaluator, call_key
from ..extract import extract_answer
from ..models.base import Generation, GenerationParams, Model, Request
from ..prompt import Prompt, canonical_json
from ..store.db import utcnow
from ..task import Example
from .errors import TuneError


def _batched(model: Model) -> Model:
    if model.batch_width <= 1:
        raise TuneError(f"model '{model.identity}' cannot answer in batches",
                        where="batched evaluation", fix="use a PyTorch (hf: or tuned:) model")
    return model


def _generate(model: Model, requests: list[Request], params: GenerationParams,
              batch_size: int) -> list[Generation]:
    """Many answers at once; a PyTorch backend takes the batch size, the others their own."""
    from ..models.transformers_model import TransformersModel

    batched = _batched(model)
    if isinstance(batched, TransformersModel):
        return batched.generate_many(requests, params, batch_size=batch_size)
    return batched.generate_many(requests, params)


def _requests(evaluator: Evaluator, prompt: Prompt, examples: Sequence[Example]):
    for example in examples:
        built = evaluator.renderer.build(prompt, example)
        yield example, built.request, built.params


def score(evaluator: Evaluator, prompt: Prompt, examples: Sequence[Example],
          batch_size: int = 16) -> list[float]:
    """The metric's score per example, from batched greedy answers."""
    items = list(_requests(evaluator, prompt, examples))
    texts = _answers(evaluator, items, batch_size)
    return [min(1.0, max(0.0, evaluator.metric.score(extract_answer(prompt.extract, text),
                                                     ex).value))
            for (ex, _, _), text in zip(items, texts, strict=True)]


def _answers(evaluator: Evaluator, items: list, batch_size: int) -> list[str]:
    out: list[str] = [""] * len(items)
    by_params: dict = {}
    for index, (_, request, params) in enumerate(items):
        by_params.setdefault(params, []).append((index, request))
    for params, group in by_params.items():
        generations = _generate(evaluator.model, [r for _, r in group], params, batch_size)
        for (index, _), generation in zip(group, generations, strict=True):
            out[index] = generation.text
    return out


def warm_cache(evaluator: Evaluator, prompt: Prompt, examples: Sequence[Example],
               batch_size: int = 16) -> int:
    """Answer the examples not cached yet, in batches, into the call cache; returns how many."""
    model, store = evaluator.model, evaluator.store
    items = [(ex, request, params, call_key(model.identity, request, params))
             for ex, request, params in _requests(evaluator, prompt, examples)]
    known = store.cached_calls(key for *_, key in items)
    todo = [item for item in items if item[3] not in known]
    rows = []
    by_params: dict = {}
    for item in todo:
        by_params.setdefault(item[2], []).append(item)
    for params, group in by_params.items():
        generations = _generate(model, [r for _, r, _, _ in group], params, batch_size)
        for (_, request, _, key), g in zip(group, generations, strict=True):
            rows.append({"key": key, "model_identity": model.identity,
                         "request": canonical_json(request),
                         "params": canonical_json(params.to_dict()), "sample": 0,
                         "text": g.text, "tokens_in": g.input_tokens,
                         "tokens_out": g.output_tokens, "seconds": g.seconds,
                         "finish_reason": g.finish_reason, "logprobs": None,
                         "created_at": utcnow()})
    if rows:
        with store.transaction() as conn:
            store.add_calls(conn, rows)
    return len(rows)
