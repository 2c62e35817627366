"""One model call with the retry policy, as a value: the same code on the driver and on workers.

An executor (in this process or on a Ray worker) turns each ``(request, params)`` work item
into an :class:`Attempt` with :func:`call_with_retries`; the caller decides what an attempt
means for its run (keep the error on the example, or stop because the backend is dead). An
attempt pickles with the error's ``where`` and ``fix``, so a worker's failure reads exactly as
a local one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ModelError, PromptmillError

if TYPE_CHECKING:
    from .models.base import Generation, GenerationParams, Model, Request

WorkItem = tuple["Request", "GenerationParams"]


@dataclass(frozen=True)
class Attempt:
    """What one work item came to: an answer, an error to keep, or an error that stops a run.

    ``failure`` is the promptmill error behind ``error``: a :class:`ModelError` when the
    backend itself gave up (it has retried already), any other kind when the input is wrong.
    """

    generation: Generation | None = None
    error: str | None = None
    failure: PromptmillError | None = None

    @property
    def answered(self) -> bool:
        return self.generation is not None

    @property
    def backend_gave_up(self) -> bool:
        return isinstance(self.failure, ModelError)


def call_with_retries(model: Model, request: Request, params: GenerationParams,
                      retries: int) -> Attempt:
    """Ask the model, retrying unexpected failures with a short backoff.

    A backend's own :class:`ModelError` is not retried: it has retried already, and
    multiplying its waits would stall a run on a dead server for minutes.
    """
    last = ""
    for n in range(retries + 1):
        try:
            return Attempt(generation=model.generate(request, params))
        except PromptmillError as exc:
            return Attempt(error=exc.one_line(), failure=exc)
        except Exception as exc:  # noqa: BLE001 - any backend failure is retried, then kept
            last = f"{type(exc).__name__}: {exc}"
            if n < retries:
                time.sleep(min(0.1 * 2 ** n, 2.0))
    return Attempt(error=last)


__all__ = ["Attempt", "WorkItem", "call_with_retries"]
