"""Real token streaming for ``serve``: pieces of text from the backend, as they are decoded,
handed from a worker thread to the event loop and on to the client.

A :class:`LiveStream` is one streamed answer. Its task holds a concurrency slot while the
backend generates (``model.stream`` in the server's worker pool), and it, not the HTTP
response, records the trace when the generation ends: a client that disconnects stops
receiving chunks, but the slot is freed and the trace written as soon as the generation (or
the backend timeout) ends, never later and never twice.

Pieces come out of the Model guard redacted already (``promptmill.models.base``); the server's
own secrets that the guard does not know of are scrubbed here the same way, by a
:class:`~promptmill.redact.StreamRedactor` that holds back the run being written.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..redact import MIN_REGISTERED_LENGTH, StreamRedactor, known_secrets

PIECE, END, FAIL = "piece", "end", "fail"
CLIENT_GONE_STATUS = 499  # nginx's "client closed request": the trace says who stopped it


class ClientGone(Exception):
    """Raised into the backend's stream when the client has disconnected, to stop decoding."""

Event = tuple[str, Any]  # (PIECE, text) | (END, Generation) | (FAIL, exception)


def piece_filter(emit: Callable[[str], None], secrets: list[str]):
    """What the server feeds pieces through: ``emit`` itself when the Model guard already knows
    every server secret (the usual case: ``promptmill serve`` registers its key), else a
    redactor for the ones it does not. Returns ``(feed, finish)``."""
    known = set(known_secrets())
    extra = [s for s in secrets if s and len(s) >= MIN_REGISTERED_LENGTH and s not in known]
    if not extra:
        sent: list[str] = []

        def feed(piece: str) -> None:
            if piece:
                sent.append(piece)
                emit(piece)

        def finish(text: str) -> None:
            done = "".join(sent)
            if len(text) > len(done) and text.startswith(done):
                emit(text[len(done):])

        return feed, finish
    redactor = StreamRedactor(emit, extra)
    return redactor.feed, redactor.finish


class LiveStream:
    """One streamed generation: a task on the event loop that runs the backend in a worker
    thread and queues its pieces, its end or its failure as events.

    ``run_backend(on_piece)`` is a coroutine function that calls the backend's ``stream`` in the
    worker pool under the backend timeout and returns its Generation (or raises the failure the
    server answers with); ``on_end(generation, text, error)`` records the trace: the whole
    answer, or on a failure the part the client got.
    """

    def __init__(self, gate: Any, run_backend: Callable[..., Any],
                 on_end: Callable[[Any, str, BaseException | None], None],
                 final_text: Callable[[str], str], secrets: list[str]):
        self.gate, self.run_backend, self.on_end = gate, run_backend, on_end
        self.final_text = final_text
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.sent: list[str] = []  # what the client was handed, redacted, in order
        self._feed, self._finish = piece_filter(self._emit, secrets)
        self.task: asyncio.Task | None = None
        self.ended = False  # after a timeout the worker may still hand in pieces: dropped
        self.cancelled = False  # the client went away: the backend stops at its next piece

    def start(self) -> LiveStream:
        self.task = self.loop.create_task(self._run())
        return self

    # --- the worker side: called from the backend's threads, must never raise --------------
    def on_piece(self, piece: str) -> None:
        if self.cancelled:  # the engine ends this sequence alone and frees its slot
            raise ClientGone("the client disconnected mid-answer")
        try:
            self.loop.call_soon_threadsafe(self._feed, piece)
        except RuntimeError:  # the loop has closed: the server is shutting down
            pass

    # --- the event loop side ---------------------------------------------------------------
    def _emit(self, piece: str) -> None:
        if self.ended:
            return
        self.sent.append(piece)
        self.queue.put_nowait((PIECE, piece))

    async def _run(self) -> None:
        generation, error = None, None
        try:
            async with self.gate:
                generation = await self.run_backend(self.on_piece)
        except Exception as exc:  # any backend failure becomes an error event, never a crash
            error = exc
        if self.cancelled and generation is None:
            error = ClientGone("the client disconnected mid-answer")
        if generation is not None:
            # every piece the worker queued before returning has been fed by now (FIFO loop)
            text = self.final_text(generation.text)
            self._finish(text)
            self.queue.put_nowait((END, generation))
        else:
            text = "".join(self.sent)  # what the client got before the failure
            self.queue.put_nowait((FAIL, error))
        self.ended = True
        self.on_end(generation, text, error)

    def cancel(self) -> None:
        """The client is gone: stop the backend at its next piece (a backend that cannot be
        stopped runs to its end; its slot is freed then)."""
        if not self.ended:
            self.cancelled = True

    async def first(self) -> Event:
        """The first event: a piece, or the end or failure of a generation that sent none."""
        return await self.queue.get()

    async def rest(self) -> AsyncIterator[Event]:
        """The events after the first, up to and including the end or the failure."""
        while True:
            event = await self.queue.get()
            yield event
            if event[0] != PIECE:
                return
