"""A scripted stub of the OpenAI API on loopback, for replies a real server will not produce on
demand: timeouts, 5xx, 429, 4xx, missing usage, malformed completions."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def chat_completion_body(text: str = "hello", usage: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": "stub",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    return body


def text_completion_body(text: str = "hello") -> dict[str, Any]:
    return {
        "id": "cmpl-stub", "object": "text_completion", "created": 0, "model": "stub",
        "choices": [{"index": 0, "finish_reason": "stop", "text": text, "logprobs": None}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
    }


def default_body(path: str) -> dict[str, Any]:
    return chat_completion_body() if path.endswith("/chat/completions") else text_completion_body()


def error_body(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error"}}


@dataclass
class StubReply:
    status: int = 200
    body: dict[str, Any] | None = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    echo_authorization: bool = False  # put the request's Authorization header in the message
    raw: bytes | None = None  # sent as is instead of ``body``: for replies that are not JSON
    content_type: str = "application/json"


@dataclass
class StubRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class OpenAIStub:
    """Answers each POST with the next scripted reply (the last one repeats); records requests."""

    def __init__(self) -> None:
        self.replies: list[StubReply] = []
        self.requests: list[StubRequest] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True  # a sleeping handler must not hold up shutdown
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    def script(self, *replies: StubReply) -> None:
        self.replies = list(replies)

    def _next(self, request: StubRequest) -> StubReply:
        with self._lock:
            self.requests.append(request)
            if len(self.replies) > 1:
                return self.replies.pop(0)
            return self.replies[0] if self.replies else StubReply(500, error_body("no script"))

    def _handler_class(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                headers = {name.lower(): value for name, value in self.headers.items()}
                request = StubRequest(self.path, headers,
                                      json.loads(self.rfile.read(length) or b"{}"))
                reply = stub._next(request)
                if reply.delay and stub.stopping.wait(reply.delay):
                    return
                body = reply.body if reply.body is not None else default_body(self.path)
                if reply.echo_authorization:
                    body = error_body(f"invalid key: {self.headers.get('authorization')}")
                payload = reply.raw if reply.raw is not None else json.dumps(body).encode()
                self._send(reply.status, payload, reply.content_type, reply.headers)

            def _send(self, status: int, payload: bytes, content_type: str,
                      headers: dict[str, str]):
                try:
                    self.send_response(status)
                    self.send_header("content-type", content_type)
                    self.send_header("content-length", str(len(payload)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test); nothing to answer

            def log_message(self, format, *args):  # keep test output quiet
                pass

        return Handler

    def __enter__(self) -> OpenAIStub:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
