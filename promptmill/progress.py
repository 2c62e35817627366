"""Progress for output that is not a terminal: a plain line at least every few seconds.

A Rich progress bar draws nothing when output is piped or captured (CI logs, ``| tee``), so a
long evaluation would print nothing for many minutes. Where no terminal is attached, the
progress displays fall back to a :class:`PlainTicker`: one line, to standard error, at most
every ``every`` seconds and once at the end, so a log shows the work is alive and how far it is.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

PLAIN_EVERY_SECONDS = 10.0


def is_terminal() -> bool:
    """Whether Rich would draw live displays here (it decides from standard output)."""
    from rich.console import Console

    return Console().is_terminal


class PlainTicker:
    """Writes ``line()`` at most once per ``every`` seconds, and on ``finish``."""

    def __init__(self, every: float | None = None, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.every = PLAIN_EVERY_SECONDS if every is None else every
        self.clock = clock
        self.stream = stream if stream is not None else sys.stderr
        self.started = clock()
        self.last = self.started

    def tick(self, line: Callable[[], str]) -> None:
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            self._write(line())

    def finish(self, line: Callable[[], str]) -> None:
        self._write(line())

    def elapsed(self) -> float:
        return self.clock() - self.started

    def _write(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


def eta_words(done: int, total: int, elapsed: float) -> str:
    """'about 40 s left' from the pace so far, or '' before there is a pace."""
    if done <= 0 or done >= total:
        return ""
    left = elapsed / done * (total - done)
    return f", about {left:.0f} s left" if left < 120 else f", about {left / 60:.0f} min left"
