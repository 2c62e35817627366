"""Guards in front of the model: API key, request size, concurrency, and secret redaction."""

from __future__ import annotations

import asyncio
import copy
import hmac
import json
import logging
from typing import Any

from ..redact import Redactor, redact, redact_target

__all__ = ["BodyLimit", "ConcurrencyGate", "LogRedaction", "Redactor", "error_body",
           "key_matches", "uvicorn_log_config"]


def key_matches(header: str | None, expected: str | None) -> bool:
    """``Authorization: Bearer KEY`` against the server key, in constant time."""
    if expected is None:
        return True
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


class LogRedaction(logging.Filter):
    """Scrubs every text argument of a log record (and its traceback) before any handler
    formats it.

    uvicorn's access line carries the request target with its query string
    (``GET /v1/models?api_key=... HTTP/1.1``): the values of key-named parameters, and anything
    key-shaped in the path, become ``***``. ``secrets`` are the server's own keys.
    """

    def __init__(self, secrets: list[str | None] | None = None):
        super().__init__()
        self.secrets = Redactor(secrets or []).secrets

    def _scrub(self, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.startswith("/"):  # a request target: decode before judging its parts
            return redact_target(value, self.secrets)
        return redact(value, self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._scrub(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: self._scrub(v) for k, v in record.args.items()}
        if isinstance(record.msg, str):
            record.msg = redact(record.msg, self.secrets)
        if record.exc_info and not record.exc_text:  # a traceback's text is formatted once
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info),
                                     self.secrets)
        return True


def uvicorn_log_config(secrets: list[str | None]) -> dict[str, Any]:
    """uvicorn's own logging config with :class:`LogRedaction` on every handler, so
    neither the access log nor an error line can print a key."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {
        "()": LogRedaction, "secrets": list(secrets)}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_secrets")
    return config


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
