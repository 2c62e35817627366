"""An OpenAI-compatible backend on loopback that leaks: its completions repeat the request's
``Authorization`` header, the bare key, and (when the prompt says SHAPES) fresh key-shaped
strings that nobody configured. Whatever reaches promptmill's store, screen or clients from it
must have been redacted."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ECHO_MARK = "ECHO"  # every completion carries it, so a test can see the echo arrived
SHAPES_MARK = "SHAPES"  # a prompt containing it gets key-shaped strings back


def _b64url(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def fresh_key_shapes() -> dict[str, str]:
    """Credentials in the shapes real ones have, random per call: name -> the full string.

    Each value's random part is at least 16 characters, so finding it anywhere is a leak.
    """
    hex_ = secrets.token_hex
    # hex first: digits among letters, whatever the random draw
    alnum = hex_(8) + secrets.token_urlsafe(30).replace("-", "x").replace("_", "y")
    jwt = ".".join([_b64url({"alg": "HS256", "typ": "JWT"}),
                    _b64url({"sub": hex_(8), "iat": 1700000000}), _b64url(secrets.token_bytes(32))])
    return {
        "openai": f"sk-{alnum[:40]}",
        "openai-live": f"sk-live-{hex_(16)}",
        "openai-project": f"sk-proj-{alnum[:32]}",
        "anthropic": f"sk-ant-api03-{alnum[:36]}",
        "stripe": f"sk_live_{alnum[:24]}",
        "github": f"ghp_{alnum[:36]}",
        "huggingface": f"hf_{alnum[:34]}",
        "slack": f"xoxb-{hex_(6)}-{hex_(12)}",
        "jwt": jwt,
        "bearer": f"Bearer {hex_(10)}{alnum[:10]}",
        "api-key-assignment": f"api_key={hex_(12)}",
        "token-assignment": f"token: {alnum[:12]}{hex_(6)}",
        "key-json": f'"key": "{hex_(14)}"',
        "password": f"password={hex_(10)}Zz",
        "url-query": f"https://api.example.com/v1/data?access_token={hex_(8)}&x=1",
    }


def secret_part(shape: str) -> str:
    """The random part of a shape, which must never be seen (names and schemes may)."""
    for sep in ("Bearer ", "api_key=", "token: ", '"key": "', "password=", "access_token="):
        if sep in shape:
            return shape.split(sep, 1)[1].split("&")[0].rstrip('"')
    return shape


class EchoBackend:
    """A threaded HTTP server; ``base_url`` ends in /v1. Records the Authorization headers."""

    def __init__(self) -> None:
        self.shapes = fresh_key_shapes()
        self.authorizations: list[str] = []
        self._counter = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)

    def completion_text(self, authorization: str, prompt_text: str) -> str:
        """The leak: key first (so clipped displays still show it), then the header."""
        said = f"{ECHO_MARK} you said: {prompt_text[-80:]}"  # repeats a key a user pasted
        if SHAPES_MARK not in prompt_text:
            bare = authorization.split(" ", 1)[-1]
            return f"{bare} | {authorization} | {said}"
        with self._lock:  # rotate, so each answer starts with a different shape
            self._counter += 1
            names = sorted(self.shapes)
            first = self._counter % len(names)
        ordered = names[first:] + names[:first]
        return " ; ".join(self.shapes[n] for n in ordered) + f" {said}"

    def _handler(self):
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self._send({"object": "list", "data": [{"id": "echo", "object": "model"}]})

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                authorization = self.headers.get("authorization", "")
                with backend._lock:
                    backend.authorizations.append(authorization)
                if "messages" in body:
                    prompt = " ".join(str(m.get("content")) for m in body["messages"])
                    text = backend.completion_text(authorization, prompt)
                    choice = {"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": text}}
                    kind = "chat.completion"
                else:
                    text = backend.completion_text(authorization, str(body.get("prompt")))
                    choice = {"index": 0, "finish_reason": "stop", "text": text}
                    kind = "text_completion"
                self._send({"id": "echo-1", "object": kind, "created": 0, "model": "echo",
                            "choices": [choice],
                            "usage": {"prompt_tokens": 5, "completion_tokens": 9,
                                      "total_tokens": 14}})

            def _send(self, body: dict) -> None:
                payload = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format, *args):  # quiet
                pass

        return Handler

    def __enter__(self) -> EchoBackend:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
