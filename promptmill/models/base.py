"""The model interface: a model ``generate``s; some can also score fixed answer options."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ModelError
from ..redact import StreamRedactor, redact, redact_exception, redact_generation

Messages = list[dict[str, str]]
Request = Messages | str  # chat messages, or a plain completion string for base models


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()
    logprobs: bool = False
    constraint: str | None = None  # an OutputSpec's canonical JSON (promptmill.constrain)

    def to_dict(self) -> dict[str, Any]:
        out = {**asdict(self), "stop": list(self.stop)}
        if out["constraint"] is None:  # keeps the cache keys of unconstrained calls unchanged
            del out["constraint"]
        return out


@dataclass
class Generation:
    """What one call returned, with what it cost."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    finish_reason: str | None = None
    logprobs: list[float] | None = None
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Model(ABC):
    """A language model backend.

    ``identity`` must change whenever outputs could change (weights file, server model name), so
    the call cache can never mix two models. ``concurrency`` says how many calls may run at once:
    1 for an in-process model, more for an HTTP server.

    A backend implements ``generate``. One that decodes several requests together overrides
    ``generate_many`` (and says how many with ``batch_width``); one that can hand out text as
    it is decoded overrides ``stream``. The defaults fall back on ``generate``.

    Every subclass's ``generate``, ``generate_many`` and ``stream`` is wrapped here, so whatever
    a backend returns is checked and redacted (:mod:`promptmill.redact`) before anything else
    sees it: the Evaluator, the cache, optimizers, diagnose and ``serve`` only ever get text
    without keys, from built-in and plugin backends alike. Streamed pieces pass through a
    :class:`~promptmill.redact.StreamRedactor`, which holds back text that could still turn
    out to be part of a key.
    """

    identity: str = "model"
    concurrency: int = 1
    context_window: int | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, guard in (("generate", _checked), ("generate_many", _checked_batch)):
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "_promptmill_guarded", False):
                setattr(cls, name, _guarded(method, guard))
        method = cls.__dict__.get("stream")
        if callable(method) and not getattr(method, "_promptmill_guarded", False):
            cls.stream = _guarded_stream(method)  # type: ignore[method-assign]

    @abstractmethod
    def generate(self, request: Request, params: GenerationParams) -> Generation:
        """Answer one request."""

    def generate_many(self, requests: list[Request], params: GenerationParams
                      ) -> list[Generation]:
        """Answer many requests, in order; batching backends decode them together."""
        return [self.generate(request, params) for request in requests]

    @property
    def batch_width(self) -> int:
        """How many sequences this backend decodes together (1: one at a time)."""
        return 1

    def stream(self, request: Request, params: GenerationParams,
               on_piece: Callable[[str], None]) -> Generation:
        """Answer one request, handing each piece of text to ``on_piece`` as it is decoded.

        The default generates the whole answer and hands it over as one piece.
        """
        generation = self.generate(request, params)
        if generation.text:
            on_piece(generation.text)
        return generation

    @property
    def can_stream(self) -> bool:
        """True when ``stream`` hands out text token by token rather than all at the end."""
        return type(self).stream is not Model.stream

    def score_options(self, request: Request, options: list[str]) -> list[float]:
        """Log-likelihood of each option as the answer; only some backends can do this."""
        raise NotImplementedError(f"{type(self).__name__} cannot score answer options")

    @property
    def can_score_options(self) -> bool:
        return type(self).score_options is not Model.score_options

    def runtime_settings(self) -> dict[str, Any]:
        """How this backend runs (threads, batch width...), for ``eval -v`` and benchmarks."""
        return {"concurrency": self.concurrency, "batch_width": self.batch_width}

    def close(self) -> None:  # noqa: B027 - optional hook; most backends hold nothing
        """Release resources (threads, servers, file handles)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.identity}>"


def _guarded(method: Callable[..., Any], check: Callable[[Model, Any], Any]):
    """``method`` with its result passed through ``check`` and its errors redacted."""

    @functools.wraps(method)
    def guarded(self: Model, *args: Any, **kwargs: Any) -> Any:
        try:
            result = method(self, *args, **kwargs)
        except Exception as exc:
            redact_exception(exc)  # a server's error may quote the request, key included
            raise
        return check(self, result)

    guarded._promptmill_guarded = True  # type: ignore[attr-defined]
    return guarded


def _guarded_stream(method: Callable[..., Any]):
    """``stream`` with redacted pieces (held back while a key could still be forming) and a
    checked, redacted result."""

    @functools.wraps(method)
    def guarded(self: Model, request: Request, params: GenerationParams,
                on_piece: Callable[[str], None]) -> Generation:
        redactor = StreamRedactor(on_piece)
        try:
            result = method(self, request, params, redactor.feed)
        except Exception as exc:
            redact_exception(exc)
            raise
        generation = _checked(self, result)
        redactor.finish(generation.text)
        return generation

    guarded._promptmill_guarded = True  # type: ignore[attr-defined]
    return guarded


def _checked(model: Model, generation: Any) -> Generation:
    if not isinstance(generation, Generation):
        raise ModelError(f"the backend returned {describe_value(generation)} instead of a "
                         "Generation",
                         where=f"model {_name(model)}",
                         fix="make the backend's generate() return promptmill.models.Generation")
    if not isinstance(generation.text, str):
        raise ModelError(f"the backend returned {describe_value(generation.text)} as the answer "
                         "text",
                         where=f"model {_name(model)}",
                         fix="make the backend return the completion as a string")
    return redact_generation(generation)


def _checked_batch(model: Model, generations: Any) -> list[Generation]:
    if not isinstance(generations, list):
        raise ModelError(f"the backend returned {describe_value(generations)} from "
                         "generate_many",
                         where=f"model {_name(model)}", fix="return a list of Generations")
    return [_checked(model, g) for g in generations]


def _name(model: Model) -> str:
    return str(getattr(model, "spec", None) or model.identity)


def describe_value(value: Any, limit: int = 60) -> str:
    """A short, redacted picture of an unexpected value for a one-line error: "null",
    "an int 42", "a list ['a', 'b']"."""
    if value is None:
        return "null"
    shown = redact(" ".join(repr(value).split()))
    if len(shown) > limit:
        shown = shown[:limit] + "..."
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name} {shown}"


def count_words(text: str) -> int:
    """A cheap token estimate for backends that do not report tokens."""
    return max(1, len(text.split())) if text else 0


def request_text(request: Request) -> str:
    if isinstance(request, str):
        return request
    return "\n".join(m["content"] for m in request)


def last_user_text(request: Request) -> str:
    if isinstance(request, str):
        return request
    users = [m["content"] for m in request if m["role"] == "user"]
    return users[-1] if users else ""
