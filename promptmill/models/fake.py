"""A deterministic fake model for fast tests: no weights, no network, same answer every time."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

from .base import Generation, GenerationParams, Model, Request, count_words, last_user_text


class FakeModel(Model):
    """Answers from a lookup table or a function of the last user message.

    ``answers`` maps a substring of the input to the answer; the first match wins. ``fail_on``
    makes calls whose input contains that substring raise, to test error handling. ``delay``
    simulates latency. Every call is counted in ``calls``.
    """

    def __init__(self, answers: dict[str, str] | None = None,
                 fn: Callable[[str], str] | None = None, default: str = "",
                 fail_on: str | None = None, delay: float = 0.0, name: str = "fake",
                 concurrency: int = 1, logprob: float = -0.5):
        self.answers = answers or {}
        self.fn = fn
        self.default = default
        self.fail_on = fail_on
        self.delay = delay
        self.concurrency = concurrency
        self.logprob = logprob
        table = repr(sorted(self.answers.items())) + repr(default)
        self.identity = f"fake:{name}:{hashlib.sha256(table.encode()).hexdigest()[:12]}"
        self.calls = 0
        self._lock = threading.Lock()

    def _answer(self, user_text: str) -> str:
        if self.fn is not None:
            return self.fn(user_text)
        for key, value in self.answers.items():
            if key in user_text:
                return value
        return self.default

    def generate(self, request: Request, params: GenerationParams) -> Generation:
        with self._lock:
            self.calls += 1
        user_text = last_user_text(request)
        if self.fail_on and self.fail_on in user_text:
            raise RuntimeError(f"fake failure on input containing {self.fail_on!r}")
        start = time.perf_counter()
        if self.delay:
            time.sleep(self.delay)
        self.last_params = params
        words = self._constrained(self._answer(user_text), params).split(" ")
        text = " ".join(words[: params.max_tokens])
        truncated = len(words) > params.max_tokens
        n_out = count_words(text)
        return Generation(
            text=text,
            input_tokens=count_words(user_text),
            output_tokens=n_out,
            seconds=time.perf_counter() - start,
            finish_reason="length" if truncated else "stop",
            logprobs=[self.logprob] * n_out if params.logprobs else None,
        )

    @staticmethod
    def _constrained(answer: str, params: GenerationParams) -> str:
        """Like a grammar would: a label spec always yields one of its labels."""
        if not params.constraint:
            return answer
        from ..constrain import OutputSpec

        spec = OutputSpec.from_key(params.constraint)
        if spec.labels is None or answer in spec.labels:
            return answer
        mentioned = [x for x in spec.labels if x.lower() in answer.lower()]
        return (mentioned or list(spec.labels))[0]

    def score_options(self, request: Request, options: list[str]) -> list[float]:
        answer = self._answer(last_user_text(request)).strip().lower()
        return [0.0 if o.strip().lower() == answer else -5.0 for o in options]


def fake_model(spec: str = "", **params) -> FakeModel:
    """Entry point for ``fake`` and ``fake:TEXT`` (always answers TEXT)."""
    params.setdefault("default", spec)
    params.setdefault("name", "fake")
    return FakeModel(**params)
