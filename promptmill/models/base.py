"""The model interface: a model ``generate``s; some can also score fixed answer options."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

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
    """

    identity: str = "model"
    concurrency: int = 1
    context_window: int | None = None

    @abstractmethod
    def generate(self, request: Request, params: GenerationParams) -> Generation:
        """Answer one request."""

    def score_options(self, request: Request, options: list[str]) -> list[float]:
        """Log-likelihood of each option as the answer; only some backends can do this."""
        raise NotImplementedError(f"{type(self).__name__} cannot score answer options")

    @property
    def can_score_options(self) -> bool:
        return type(self).score_options is not Model.score_options

    def close(self) -> None:  # noqa: B027 - optional hook; most backends hold nothing
        """Release resources (threads, servers, file handles)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.identity}>"


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
