"""The model-backend conformance suite: what every :class:`~promptmill.models.Model` must do.

Each ``check_*`` function takes a model and raises :class:`ConformanceFailure` naming the broken
rule:

- ``generate`` returns a :class:`~promptmill.models.Generation` whose text is a string and whose
  token counts and seconds are numbers >= 0;
- it writes no more than ``max_tokens`` output tokens;
- ``identity`` is a non-empty string that does not change as the model is used (the call cache
  keys on it), and ``concurrency`` is a whole number >= 1;
- a backend that says it ``can_score_options`` returns one finite log-likelihood (<= 0) per
  option; one that cannot raises ``NotImplementedError``;
- ``generate_many`` answers every request, in order, as ``generate`` answers each (greedy);
- ``stream`` hands out pieces that make up the text it returns;
- ``close()`` may be called twice.

With pytest, subclass :class:`ModelConformance` and give it one fixture, ``model`` (the close
test closes it, unless ``model_to_close`` gives it another)::

    class TestMyBackend(ModelConformance):
        @pytest.fixture
        def model(self):
            return MyBackend()

Without pytest, :func:`check_model` runs every check, closing the model last. This module
does not import pytest.
"""

from __future__ import annotations

import math

from ..models.base import Generation, GenerationParams, Model, Request
from .assertions import ConformanceFailure, expect

REQUEST: Request = [{"role": "user", "content": "Name three colours, separated by commas."}]
OPTIONS = ["red", "blue"]
MAX_TOKENS = 4
LOGPROB_SLACK = 1e-6  # a log-likelihood is <= 0; allow for rounding in the backend


def generate(model: Model, request: Request = REQUEST, max_tokens: int = MAX_TOKENS
             ) -> Generation:
    return model.generate(request, GenerationParams(max_tokens=max_tokens))


def _is_count(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def check_generation(model: Model, request: Request = REQUEST) -> Generation:
    """``generate`` answers with a Generation: text a string, costs numbers >= 0."""
    gen = generate(model, request)
    expect(isinstance(gen, Generation), f"generate returned {type(gen).__name__}, not a "
                                        "Generation")
    expect(isinstance(gen.text, str), f"the answer text is {type(gen.text).__name__}, not str")
    for name in ("input_tokens", "output_tokens", "seconds"):
        value = getattr(gen, name)
        expect(_is_count(value), f"Generation.{name} is {value!r}, not a number >= 0")
    return gen


def check_respects_max_tokens(model: Model, request: Request = REQUEST,
                              max_tokens: int = MAX_TOKENS) -> Generation:
    """No more output tokens than asked for."""
    gen = generate(model, request, max_tokens)
    expect(gen.output_tokens <= max_tokens,
           f"asked for at most {max_tokens} tokens, the model wrote {gen.output_tokens}")
    return gen


def check_identity(model: Model, request: Request = REQUEST) -> None:
    """``identity`` is a non-empty str, the same before and after a call; ``concurrency`` >= 1."""
    before = model.identity
    expect(isinstance(before, str) and before, f"identity is {before!r}, not a non-empty str")
    generate(model, request)
    expect(model.identity == before, f"identity changed from {before!r} to "
                                     f"{model.identity!r} after a call")
    concurrency = model.concurrency
    expect(isinstance(concurrency, int) and not isinstance(concurrency, bool)
           and concurrency >= 1, f"concurrency is {concurrency!r}, not a whole number >= 1")


def check_score_options(model: Model, request: Request = REQUEST,
                        options: list[str] | None = None) -> list[float] | None:
    """One finite log-likelihood per option, if the backend can score; else NotImplementedError."""
    options = options or OPTIONS
    if not model.can_score_options:
        try:
            model.score_options(request, options)
        except NotImplementedError:
            return None
        raise ConformanceFailure("score_options worked although can_score_options is False")
    scores = model.score_options(request, options)
    expect(isinstance(scores, list) and len(scores) == len(options),
           f"score_options returned {scores!r} for {len(options)} options, not a list of "
           f"{len(options)} scores")
    for option, score in zip(options, scores, strict=True):
        expect(isinstance(score, int | float) and math.isfinite(score)
               and score <= LOGPROB_SLACK,
               f"the score of {option!r} is {score!r}, not a finite log-likelihood <= 0")
    return scores


def check_generate_many(model: Model, request: Request = REQUEST) -> list[Generation]:
    """``generate_many`` gives one answer per request, in order, each equal to what
    ``generate`` gives that request alone (greedy decoding)."""
    params = GenerationParams(max_tokens=MAX_TOKENS)
    requests = [request, _variant(request), request]
    many = model.generate_many(requests, params)
    count = len(many) if isinstance(many, list) else "no list of"
    expect(isinstance(many, list) and len(many) == len(requests),
           f"generate_many returned {count} answers for {len(requests)} requests")
    alone = [model.generate(r, params).text for r in requests]
    expect([g.text for g in many] == alone,
           f"generate_many answered {[g.text for g in many]!r}, one at a time gave {alone!r}")
    return many


def check_stream(model: Model, request: Request = REQUEST) -> Generation:
    """``stream``'s pieces, joined, are the text it returns."""
    pieces: list[str] = []
    gen = model.stream(request, GenerationParams(max_tokens=MAX_TOKENS), pieces.append)
    expect(isinstance(gen, Generation), f"stream returned {type(gen).__name__}, not a "
                                        "Generation")
    expect("".join(pieces) == gen.text,
           f"the streamed pieces {pieces!r} do not make the answer {gen.text!r}")
    return gen


def _variant(request: Request) -> Request:
    if isinstance(request, str):
        return request + " Please."
    return [*request[:-1], {**request[-1], "content": request[-1]["content"] + " Please."}]


def check_close_is_idempotent(model: Model) -> None:
    """``close()`` twice raises nothing: callers close in ``finally`` blocks, maybe twice."""
    model.close()
    try:
        model.close()
    except Exception as exc:  # whatever it raises, a second close must not
        raise ConformanceFailure(f"close() raised on its second call ({type(exc).__name__}: "
                                 f"{exc}): make it do nothing once closed") from exc


def check_model(model: Model, request: Request = REQUEST) -> None:
    """Every check on ``model``, closing it last; the first failure raises."""
    check_generation(model, request)
    check_respects_max_tokens(model, request)
    check_identity(model, request)
    check_score_options(model, request)
    check_generate_many(model, request)
    check_stream(model, request)
    check_close_is_idempotent(model)


class ModelConformance:
    """The suite as pytest tests: subclass it and define the fixture ``model``.

    Override ``request`` (and ``options``) where the backend needs another kind of input, e.g.
    a plain string for a completion-only model, and :meth:`model_to_close` where the fixture
    shares one model between tests.
    """

    request: Request = REQUEST
    options: list[str] = OPTIONS

    def test_generate_returns_a_generation(self, model: Model):
        check_generation(model, self.request)

    def test_respects_max_tokens(self, model: Model):
        check_respects_max_tokens(model, self.request)

    def test_identity_is_a_stable_str(self, model: Model):
        check_identity(model, self.request)

    def test_score_options(self, model: Model):
        check_score_options(model, self.request, self.options)

    def test_generate_many_answers_each_in_order(self, model: Model):
        check_generate_many(model, self.request)

    def test_stream_pieces_make_the_answer(self, model: Model):
        check_stream(model, self.request)

    def test_close_is_idempotent(self, model: Model):
        check_close_is_idempotent(self.model_to_close(model))

    def model_to_close(self, model: Model) -> Model:
        """The model the close test closes: override to build another where the fixture's
        model is shared (session-scoped) and must stay open."""
        return model


__all__ = ["ConformanceFailure", "ModelConformance", "check_close_is_idempotent",
           "check_generate_many", "check_generation", "check_identity", "check_model",
           "check_respects_max_tokens", "check_score_options", "check_stream"]
