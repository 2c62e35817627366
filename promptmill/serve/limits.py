"""Guards in front of the model: API key, request size, concurrency, and secret redaction."""

from __future__ import annotations

import asyncio
import hmac
import json
import re
from collections.abc import Iterable

# Key shapes worth scrubbing even when this server was not told about them (OpenAI-style keys)
_KEY_SHAPES = re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}")


def key_matches(header: str | None, expected: str | None) -> bool:
    """``Authorization: Bearer KEY`` against the server key, in constant time."""
    if expected is None:
        return True
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


class Redactor:
    """Replaces every known secret with ``***`` in text that may reach a log, trace or client."""

    def __init__(self, secrets: Iterable[str | None]):
        # longest first, so a secret that contains another is replaced whole
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str | None) -> str | None:
        if not text:
            return text
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return _KEY_SHAPES.sub("***", text)


def error_body(message: str, kind: str, code: str | None = None) -> bytes:
    """OpenAI's error shape, which its clients turn into typed exceptions."""
    return json.dumps({"error": {"message": message, "type": kind, "param": None,
                                 "code": code}}).encode()


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, by Content-Length and by counting.

    The body is read here up to the limit and replayed to the app, so a client that lies about
    (or omits) Content-Length is still cut off without the whole body being buffered.
    """

    def __init__(self, app, max_bytes: int, on_reject=None):
        self.app, self.max_bytes, self.on_reject = app, max_bytes, on_reject

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._reject(send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send) -> None:
        message = (f"the request body is larger than the limit of {self.max_bytes} bytes; "
                   "send a shorter message, or start the server with a larger --max-body-bytes")
        if self.on_reject is not None:
            self.on_reject(message)
        body = error_body(message, "invalid_request_error", "request_too_large")
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class ConcurrencyGate:
    """At most ``limit`` requests at the backend; the rest wait in arrival order, none dropped.

    asyncio's semaphore wakes waiters first-in first-out, which is the queue.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self._slots = asyncio.Semaphore(limit)
        self.in_flight = 0
        self.waiting = 0
        self.max_in_flight = 0
        self.max_waiting = 0

    async def __aenter__(self) -> ConcurrencyGate:
        self.waiting += 1
        self.max_waiting = max(self.max_waiting, self.waiting)
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return self

    async def __aexit__(self, *exc) -> None:
        self.in_flight -= 1
        self._slots.release()

    def stats(self) -> dict[str, int]:
        return {"limit": self.limit, "in_flight": self.in_flight, "waiting": self.waiting,
                "max_in_flight": self.max_in_flight, "max_waiting": self.max_waiting}
