"""Errors specific to tuning, and the translation of torch's memory failures into advice."""

from __future__ import annotations

from ..errors import PromptmillError


class TuneError(PromptmillError):
    """A tuning run that cannot start or continue, with what to change."""


MEMORY_WORDS = ("out of memory", "can't allocate", "cannot allocate", "alloc", "bad_alloc")


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or (
        isinstance(exc, RuntimeError) and any(w in str(exc).lower() for w in MEMORY_WORDS))


def out_of_memory(batch_size: int, max_length: int) -> TuneError:
    return TuneError(f"training ran out of memory at batch size {batch_size} and sequence "
                     f"length {max_length}", where="tune settings",
                     fix=f"lower --batch-size (e.g. {max(1, batch_size // 2)}) and raise "
                         "--grad-accum to keep the effective batch, or lower --max-length; "
                         "the last checkpoint is kept, rerun with the same --name to resume")
