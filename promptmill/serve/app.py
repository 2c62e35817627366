"""The FastAPI app: OpenAI's ``/v1/chat/completions`` and legacy ``/v1/completions`` (plain and
streamed) for one prompt version.

Per request: check the key, parse the body, fill the template fields from the last user message
(or the completion ``prompt``), render the prompt version exactly as an evaluation would, wait
for a concurrency slot, call the backend in a worker thread, answer, and queue a trace.

Concurrent requests reach the backend at once (up to ``max_concurrency``; the worker pool has
room for all of them), so a batching backend (the embedded model's engine) decodes them
together: a request arriving mid-batch joins at the next step.

``stream: true`` is streamed token by token when the backend can (``model.can_stream``) and the
prompt has no answer extraction: ``model.stream`` runs in a worker thread and each piece is sent
as an OpenAI chunk as it is decoded (:mod:`promptmill.serve.streaming`). The pieces come out of
the Model guard redacted, and pass a second stream redactor for the server's own keys that the
guard does not know, so a key never straddles two chunks unseen. The response starts only with
the first piece, so a backend that fails before it still gets the 502 JSON; a failure or the
backend timeout later ends the stream with an OpenAI error event. Otherwise (an extraction rule,
which needs the whole text, or a backend that cannot stream) the answer is generated whole,
extracted and redacted whole, and sent as word chunks. Both end with ``data: [DONE]``.

Whatever the body, the reply is JSON: 200 for a request the prompt can answer, a 4xx naming the
field for anything else, a 502 for a failing backend. Even a bug in this server gets an OpenAI
JSON error (500) without a traceback.
"""


import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import require
from ..redact import redact_target
from ..store.db import Store
from .limits import BodyLimit, ConcurrencyGate, Redactor, error_body, key_matches
from .render import Rendered, RequestError, ServedPrompt
from .streaming import CLIENT_GONE_STATUS, END, FAIL, PIECE, ClientGone, Event, LiveStream
from .traces import TraceWriter, trace_row

log = logging.getLogger("promptmill.serve")

DEFAULT_MAX_BODY_BYTES = 1_000_000
DEFAULT_MAX_CONCURRENCY = 8
DEFAULT_BACKEND_TIMEOUT = 120.0
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class _Body(BaseModel):
    """The request fields both endpoints read; other OpenAI fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    seed: int | None = Field(default=None, ge=INT64_MIN, le=INT64_MAX)  # OpenAI's range
    stop: str | list[str] | None = None
    n: int = Field(default=1, ge=1, le=1)

    def overrides(self) -> dict[str, Any]:
        return {"max_tokens": self.max_tokens, "temperature": self.temperature,
                "top_p": self.top_p, "seed": self.seed, "stop": self.stop}

    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))

    def as_messages(self) -> list[dict[str, Any]]:
        """The conversation the prompt's template fields are filled from."""
        raise NotImplementedError  # each endpoint's body says where its messages are


class ChatBody(_Body):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)

    def overrides(self) -> dict[str, Any]:
        return {**super().overrides(),
                "max_tokens": self.max_completion_tokens or self.max_tokens}

    def as_messages(self) -> list[dict[str, Any]]:
        return [m.model_dump() for m in self.messages]


class CompletionBody(_Body):
    """The legacy completions request: ``prompt`` plays the part of the last user message."""

    prompt: str | list[str] = Field(min_length=1)
    echo: bool = False

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, prompt: str | list[str]) -> str:
        if isinstance(prompt, list) and len(prompt) != 1:
            raise ValueError("send one prompt per request (a string, or a list of one)")
        return prompt if isinstance(prompt, str) else prompt[0]

    def as_messages(self) -> list[dict[str, Any]]:
        return [{"role": "user", "content": self.prompt}]


class _Failure(Exception):
    """An answer that is an HTTP error, with what goes into the trace."""

    def __init__(self, status: int, message: str, kind: str, code: str,
                 rendered: Rendered | None = None, inputs: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code
        self.rendered, self.inputs = rendered, inputs


def create_app(served: ServedPrompt, store: Store, *, api_key: str | None = None,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
               backend_timeout: float = DEFAULT_BACKEND_TIMEOUT,
               secrets: Iterable[str | None] = (), host: str | None = None,
               port: int | None = None, allowed_hosts: Iterable[str] = (),
               allowed_origins: Iterable[str] = ()):
    """An ASGI app serving ``served``. ``api_key`` None means no auth (loopback use only).

    ``secrets`` are extra strings (e.g. the backend's API key) scrubbed from every error body,
    trace and log line, besides ``api_key`` itself. ``host``/``port`` are where it is bound:
    with ``allowed_hosts`` and ``allowed_origins`` they decide which Host headers and which web
    pages' origins it answers (:mod:`promptmill.serve.guard`).
    """
    from .guard import ApiGuard, guard_settings

    guard = guard_settings(host, port, allowed_hosts, allowed_origins)
    fastapi = require("fastapi", "serve", "promptmill serve")
    from fastapi import Request
    from fastapi.responses import JSONResponse, StreamingResponse

    redact = Redactor([api_key, *secrets])
    state = _ServerState(served, store, redact, max_concurrency, backend_timeout)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        state.close()

    app = fastapi.FastAPI(title=f"promptmill serve {served.ref}", lifespan=lifespan,
                          docs_url=None, redoc_url=None, openapi_url=None)
    app.state.promptmill = state

    def failure_response(f: _Failure) -> JSONResponse:
        message = cast(str, redact(f.message))  # a string stays a string
        return JSONResponse(json.loads(error_body(message, f.kind, f.code)),
                            status_code=f.status)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "prompt": served.ref, "queue": state.gate.stats(),
                "batch_width": state.batch_width}

    @app.get("/v1/models")
    async def models(request: Request):
        if not key_matches(request.headers.get("authorization"), api_key):
            return failure_response(_unauthorized())
        return {"object": "list", "data": [{"id": served.ref, "object": "model",
                                            "created": 0, "owned_by": "promptmill"}]}

    async def answer(request: Request, body_type: type[_Body], reply_type: type[_Reply]):
        started = time.perf_counter()
        try:
            if not key_matches(request.headers.get("authorization"), api_key):
                raise _unauthorized()
            body = _parse_body(await request.body(), body_type)
            rendered = await state.prepare(body)
            if body.stream and state.streams_tokens(rendered):
                return await streamed(body, rendered, reply_type(served), started)
            text, gen = await state.complete(rendered)
        except _Failure as f:
            state.record(f.status, started, f.rendered, inputs=f.inputs, error=f.message)
            return failure_response(f)
        # the backend's output is redacted already; this adds our own keys (a string stays one)
        text = cast(str, redact(text))
        state.record(200, started, rendered, output=text, generation=gen)
        reply = reply_type(served, text, gen)
        if body.stream:  # the answer is whole already: sent as word chunks
            return StreamingResponse(reply.sse(body.include_usage()),
                                     media_type="text/event-stream",
                                     headers={"cache-control": "no-cache"})
        # a ready JSONResponse skips FastAPI's recursive encoder: a third of the CPU per request
        return JSONResponse(reply.completion())

    async def streamed(body: _Body, rendered: Rendered, reply: _Reply, started: float):
        live = state.live_stream(rendered, started)
        first = await live.first()  # the 502 JSON is still possible until the first piece
        if first[0] == FAIL:  # its trace is written by the stream
            return failure_response(_as_failure(first[1], rendered))
        return StreamingResponse(reply.live_sse(first, live.rest(), body.include_usage(),
                                                lambda exc: error_event(exc, rendered),
                                                live.cancel),
                                 media_type="text/event-stream",
                                 headers={"cache-control": "no-cache"})

    def error_event(exc: BaseException, rendered: Rendered) -> str:
        f = _as_failure(exc, rendered)
        return error_body(cast(str, redact(f.message)), f.kind, f.code).decode()

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        return await answer(request, ChatBody, _Reply)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await answer(request, CompletionBody, _TextReply)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        # a bug must still answer in OpenAI's JSON error shape, without a traceback or a secret
        log.error("unexpected %s on %s", type(exc).__name__, redact_target(request.url.path))
        failure = _Failure(500, "the server failed on this request; see its log",
                           "server_error", "internal_error")
        return failure_response(failure)

    app.add_middleware(BodyLimit, max_bytes=max_body_bytes,
                       on_reject=lambda message: state.record(413, time.perf_counter(), None,
                                                              error=message))
    app.add_middleware(ApiGuard, settings=guard)  # outermost: nothing runs for a page's request
    return app


def _as_failure(exc: BaseException, rendered: Rendered | None) -> _Failure:
    """A streamed answer's failure as the HTTP error it is; anything but a backend failure is
    a bug of this server (500)."""
    if isinstance(exc, _Failure):
        return exc
    log.error("unexpected %s in a streamed answer", type(exc).__name__)
    return _Failure(500, "the server failed on this request; see its log", "server_error",
                    "internal_error", rendered)


def _unauthorized() -> _Failure:
    return _Failure(401, "invalid or missing API key; send 'Authorization: Bearer KEY' with "
                         "the key the server was started with", "authentication_error",
                    "invalid_api_key")


_EXAMPLE_BODIES = {ChatBody: '{"messages": [{"role": "user", "content": "..."}]}',
                   CompletionBody: '{"prompt": "..."}'}


def _parse_body(raw: bytes, body_type: type[_Body]) -> _Body:
    try:
        value = json.loads(raw or b"null")
    except RecursionError:
        raise _invalid("the body is nested too deeply", body_type) from None
    except ValueError:  # includes invalid UTF-8 (UnicodeDecodeError)
        raise _invalid("the body is not valid JSON", body_type) from None
    if not isinstance(value, dict):
        raise _invalid(f"the body is a JSON {_json_type(value)}, not an object", body_type)
    try:
        return body_type.model_validate(value)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err.get("loc", ())) or "body"
        raise _invalid(f"{where}: {err.get('msg', 'invalid value')}", body_type) from None
    except RecursionError:
        raise _invalid("the body is nested too deeply", body_type) from None


def _invalid(message: str, body_type: type[_Body]) -> _Failure:
    kind = "chat completion" if body_type is ChatBody else "completion"
    return _Failure(400, f"{message}; send an OpenAI {kind} request "
                         f"({_EXAMPLE_BODIES[body_type]})",
                    "invalid_request_error", "invalid_request")


def _json_type(value: Any) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


class _ServerState:
    """What requests share: the prompt, the queue, the worker threads, the trace writer."""

    def __init__(self, served: ServedPrompt, store: Store, redact: Redactor,
                 max_concurrency: int, backend_timeout: float):
        self.served, self.redact, self.timeout = served, redact, backend_timeout
        self.gate = ConcurrencyGate(max_concurrency)
        # a pool of its own: asyncio's default pool has only cpu_count + 4 threads
        self.pool = ThreadPoolExecutor(max_workers=max_concurrency + 4,
                                       thread_name_prefix="promptmill-serve")
        self.traces = TraceWriter(store)
        self.batch_width: int | None = None  # the backend's, read after its first answer
        self._streams: set[asyncio.Task] = set()  # live streams outlive a gone client

    async def prepare(self, body: _Body) -> Rendered:
        loop = asyncio.get_running_loop()
        messages = body.as_messages()
        try:
            inputs = self.served.inputs_from_messages(messages)
            if self.served.renders_quickly:  # a thread hop would cost more than the render
                rendered = self.served.render(inputs, body.overrides())
            else:
                rendered = await loop.run_in_executor(self.pool, self.served.render, inputs,
                                                      body.overrides())
        except RequestError as exc:
            raise _Failure(400, exc.one_line(), "invalid_request_error",
                           "prompt_fields") from None
        return rendered

    async def complete(self, rendered: Rendered):
        model = self.served.model
        async with self.gate:
            gen = await self._call_backend(rendered, model.generate, rendered.request,
                                           rendered.params)
        return self.served.answer_text(rendered, gen.text), gen

    def streams_tokens(self, rendered: Rendered) -> bool:
        """Stream as decoded: only a streaming backend, and only without an extraction rule
        (which needs the whole text)."""
        return self.served.model.can_stream and not self.served.extracts(rendered)

    def live_stream(self, rendered: Rendered, started: float) -> LiveStream:
        model = self.served.model

        async def run_backend(on_piece: Callable[[str], None]):
            return await self._call_backend(rendered, model.stream, rendered.request,
                                            rendered.params, on_piece)

        def on_end(gen, text: str, error: BaseException | None) -> None:
            if error is None:
                self.record(200, started, rendered, output=text, generation=gen)
                return
            if isinstance(error, ClientGone):
                self.record(CLIENT_GONE_STATUS, started, rendered, output=text or None,
                            error=str(error))
                return
            f = _as_failure(error, rendered)
            self.record(f.status, started, rendered, output=text or None, error=f.message)

        live = LiveStream(self.gate, run_backend, on_end, self.answer_text,
                          self.redact.secrets).start()
        assert live.task is not None
        self._streams.add(live.task)
        live.task.add_done_callback(self._streams.discard)
        return live

    def answer_text(self, text: str) -> str:
        # the backend's output is redacted already; this adds our own keys
        return cast(str, self.redact(text))

    async def _call_backend(self, rendered: Rendered, method: Callable[..., Any], *args: Any):
        call = asyncio.get_running_loop().run_in_executor(self.pool, self._backend_call,
                                                         method, args)
        try:
            return await asyncio.wait_for(call, self.timeout)
        except TimeoutError:
            raise self._backend_failure(f"no answer within {self.timeout:g}s", rendered) \
                from None
        except Exception as exc:  # any backend failure is a 502, never a crash
            detail = exc.one_line() if hasattr(exc, "one_line") else \
                f"{type(exc).__name__}: {exc}"
            raise self._backend_failure(detail, rendered) from None

    def _backend_call(self, method: Callable[..., Any], args: tuple[Any, ...]):
        generation = method(*args)
        if self.batch_width is None:  # cheap now: a batching backend has built its engine
            self.batch_width = self.served.model.batch_width
        return generation

    def _backend_failure(self, detail: str, rendered: Rendered) -> _Failure:
        message = (f"the model backend ({self.served.model.identity}) failed: {detail}. "
                   "The server is still running; retry when the backend is back")
        return _Failure(502, message, "backend_error", "backend_unavailable", rendered)

    def record(self, status: int, started: float, rendered: Rendered | None, *,
               inputs: dict | None = None, output: str | None = None,
               error: str | None = None, generation=None) -> None:
        seconds = time.perf_counter() - started
        row = trace_row(
            prompt_name=self.served.name, prompt_id=self.served.prompt_id,
            model=self.redact(getattr(self.served.model, "spec", None)
                              or self.served.model.identity),
            inputs=rendered.inputs if rendered else (inputs or {}),
            messages=rendered.request if rendered else None,
            output=output, status=status, error=self.redact(error),
            tokens_in=generation.input_tokens if generation else 0,
            tokens_out=generation.output_tokens if generation else 0, seconds=seconds)
        for key in ("inputs", "messages", "output"):  # a client may paste a key into a message
            row[key] = self.redact(row[key])
        self.traces.add(row)
        log.info("%s %d %.3fs", self.served.ref, status, seconds)

    def close(self) -> None:
        self.traces.close()
        self.pool.shutdown(wait=False, cancel_futures=True)


class _Reply:
    """One answer in OpenAI's response shapes (chat here; legacy completions below)."""

    prefix, kind, chunk_kind = "chatcmpl", "chat.completion", "chat.completion.chunk"

    def __init__(self, served: ServedPrompt, text: str = "", gen=None):
        """``gen`` None: a reply being streamed, whose end (:meth:`ended`) is still to come."""
        self.id = f"{self.prefix}-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = served.ref
        self.fingerprint = f"promptmill:{served.prompt.hash}"
        self.text = text
        self.finish = "stop"
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        if gen is not None:
            self.ended(gen)

    def ended(self, gen) -> None:
        self.finish = gen.finish_reason if gen.finish_reason in ("stop", "length") else "stop"
        self.usage = {"prompt_tokens": gen.input_tokens, "completion_tokens": gen.output_tokens,
                      "total_tokens": gen.input_tokens + gen.output_tokens}

    def _base(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model,
                "system_fingerprint": self.fingerprint}

    # a stream's choices: an opening one (or None), one per piece of text, a closing one
    def _opening(self) -> dict[str, Any] | None:
        return {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                "finish_reason": None}

    def _piece(self, text: str, finish: str | None = None) -> dict[str, Any]:
        delta = {"content": text} if text else {}
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    def completion(self) -> dict[str, Any]:
        return {**self._base(self.kind),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": self.text},
                             "logprobs": None, "finish_reason": self.finish}],
                "usage": self.usage}

    def _chunk(self, choice: dict[str, Any]) -> str:
        body = {**self._base(self.chunk_kind), "choices": [choice]}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    async def sse(self, include_usage: bool):
        # self.text was redacted whole, so a secret cut across two chunks is already gone
        for chunk in self._head():
            yield chunk
        for piece in re.findall(r"\s*\S+|\s+$", self.text):
            yield self._chunk(self._piece(piece))
        for chunk in self._tail(include_usage):
            yield chunk

    async def live_sse(self, first: Event, rest: AsyncIterator[Event], include_usage: bool,
                       error_event: Callable[[Any], str], cancel: Callable[[], None]):
        """Chunks as the backend decodes them: ``first`` and ``rest`` are the stream's events
        (:class:`~promptmill.serve.streaming.LiveStream`), redacted as one text already.
        Closed before the end (the client went away), it calls ``cancel``."""
        try:
            async for chunk in self._live_chunks(first, rest, include_usage, error_event):
                yield chunk
        finally:
            cancel()  # a no-op once the stream has ended

    async def _live_chunks(self, first: Event, rest: AsyncIterator[Event], include_usage: bool,
                           error_event: Callable[[Any], str]):
        for chunk in self._head():
            yield chunk
        event = first
        while True:
            kind, value = event
            if kind == PIECE:
                yield self._chunk(self._piece(value))
            elif kind == END:
                self.ended(value)
                for chunk in self._tail(include_usage):
                    yield chunk
                return
            else:  # FAIL once chunks went out: an error event in the stream ends it
                yield f"data: {error_event(value)}\n\n"
                yield "data: [DONE]\n\n"
                return
            event = await anext(rest)

    def _head(self) -> list[str]:
        opening = self._opening()
        return [] if opening is None else [self._chunk(opening)]

    def _tail(self, include_usage: bool) -> list[str]:
        chunks = [self._chunk(self._piece("", self.finish))]
        if include_usage:
            usage = {**self._base(self.chunk_kind), "choices": [], "usage": self.usage}
            chunks.append(f"data: {json.dumps(usage)}\n\n")
        return [*chunks, "data: [DONE]\n\n"]


class _TextReply(_Reply):
    """Legacy ``text_completion`` shapes: ``choices[0].text``, streamed as text pieces."""

    prefix, kind, chunk_kind = "cmpl", "text_completion", "text_completion"

    def completion(self) -> dict[str, Any]:
        return {**self._base(self.kind),
                "choices": [{"index": 0, "text": self.text, "logprobs": None,
                             "finish_reason": self.finish}],
                "usage": self.usage}

    def _opening(self) -> dict[str, Any] | None:
        return None  # a text stream has no role chunk

    def _piece(self, text: str, finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
