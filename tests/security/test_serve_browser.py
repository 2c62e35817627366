"""Web pages cannot use ``promptmill serve``: foreign Host names (DNS rebinding) get 400, requests
a browser marks as cross-site get 403, and bodies a page can post without a preflight get 415 —
all before the model is called or a trace is written. API clients (no Origin, JSON) still work.
Real HTTP against a real uvicorn server on 127.0.0.1, with and without an API key.
"""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from helpers import free_port, run_main, uvicorn_in_thread, wait_for

from promptmill.models.fake import FakeModel
from promptmill.prompt import Prompt
from promptmill.serve import create_app, load_served_prompt
from promptmill.serve.traces import list_traces

pytestmark = pytest.mark.server

KEY = "pm-serve-browser-key-5d1c"
BODY = {"messages": [{"role": "user", "content": "France"}]}
FOREIGN_HOSTS = ["evil.example:{port}", "127.0.0.1.evil.example:{port}", "localhost.evil:{port}",
                 "127.0.0.1:{other}", "localhost:{other}", "0.0.0.0:{port}", "127.0.0.2:{port}",
                 "", "127.0.0.1:{port}:1", "[::2]:{port}", "evil.example"]
CROSS_SITE = {
    "foreign-origin": {"origin": "https://evil.example"},
    "null-origin": {"origin": "null"},
    "other-port-origin": {"origin": "http://127.0.0.1:{other}"},
    "lookalike-origin": {"origin": "http://127.0.0.1:{port}.evil.example"},
    "userinfo-origin": {"origin": "http://127.0.0.1:{port}@evil.example"},
    "sec-fetch-cross-site": {"sec-fetch-site": "cross-site"},
    "sec-fetch-same-site": {"sec-fetch-site": "same-site"},
}
SIMPLE_BODIES = {"text-plain": "text/plain", "text-plain-charset": "text/plain;charset=UTF-8",
                 "form": "application/x-www-form-urlencoded", "multipart": "multipart/form-data"}


class Counting(FakeModel):
    calls = 0

    def generate(self, request, params):
        type(self).calls += 1
        return super().generate(request, params)


@pytest.fixture(params=["no-key", "key"])
def server(request, store):
    store.save_prompt("capital", Prompt(name="capital", template="{{ country }}").content(),
                      Prompt(name="capital", template="{{ country }}").hash)
    Counting.calls = 0
    served = load_served_prompt(store, "capital", model=Counting({"France": "Paris"}))
    port = free_port()
    key = KEY if request.param == "key" else None
    app = create_app(served, store, api_key=key, host="127.0.0.1", port=port,
                     allowed_hosts=["api.internal"], allowed_origins=["https://app.example"])
    with uvicorn_in_thread(app, port, "promptmill serve", lifespan="on"):
        yield {"url": f"http://127.0.0.1:{port}", "port": port, "key": key, "store": store}


def _headers(server, extra: dict[str, str]) -> dict[str, str]:
    out = {"content-type": "application/json"}
    if server["key"]:
        out["authorization"] = f"Bearer {server['key']}"
    fill = {"port": server["port"], "other": server["port"] + 1}
    out.update({k: v.format(**fill) for k, v in extra.items()})
    return out


def _post(server, extra: dict[str, str], body: bytes | None = None) -> httpx.Response:
    return httpx.post(f"{server['url']}/v1/chat/completions", headers=_headers(server, extra),
                      content=body if body is not None else json.dumps(BODY).encode())


def _traced_statuses(server, expected: int) -> list[int]:
    """The trace statuses once ``expected`` traces are written (the writer is a thread)."""
    wait_for(lambda: len(list_traces(server["store"])) >= expected, timeout=20)
    return sorted(t["status"] for t in list_traces(server["store"]))


def _nothing_happened(server, reply: httpx.Response, status: int) -> None:
    assert reply.status_code == status, reply.text
    assert "error" in reply.json()
    assert Counting.calls == 0
    # a probe that is answered: its trace follows any the refused request would have left
    assert _post(server, {}).status_code == 200
    assert _traced_statuses(server, 1) == [200]


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return sock.recv(65536)


@pytest.mark.parametrize("host", FOREIGN_HOSTS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_foreign_host_gets_400(server, host, method):
    value = host.format(port=server["port"], other=server["port"] + 1)
    path = "/healthz" if method == "GET" else "/v1/chat/completions"
    body = json.dumps(BODY).encode() if method == "POST" else b""
    auth = f"Authorization: Bearer {server['key']}\r\n" if server["key"] else ""
    request = (f"{method} {path} HTTP/1.1\r\nHost: {value}\r\n{auth}"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
               "Connection: close\r\n\r\n").encode() + body
    reply = _raw(server["port"], request)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert b"Paris" not in reply
    assert Counting.calls == 0
    assert _post(server, {}).status_code == 200
    assert _traced_statuses(server, 1) == [200]


@pytest.mark.parametrize("case", sorted(CROSS_SITE))
def test_a_request_from_another_site_gets_403(server, case):
    _nothing_happened(server, _post(server, CROSS_SITE[case]), 403)


@pytest.mark.parametrize("case", sorted(SIMPLE_BODIES))
def test_a_body_a_page_could_send_gets_415(server, case):
    _nothing_happened(server, _post(server, {"content-type": SIMPLE_BODIES[case]}), 415)


def test_programs_and_admitted_names_and_origins_are_answered(server):
    for extra in ({}, {"host": "api.internal:{port}"}, {"origin": "https://app.example"},
                  {"origin": "http://127.0.0.1:{port}"}, {"sec-fetch-site": "none"}):
        reply = _post(server, extra)
        assert reply.status_code == 200, (extra, reply.text)
        assert reply.json()["choices"][0]["message"]["content"] == "Paris"
    assert Counting.calls >= 1
    assert _traced_statuses(server, 5) == [200] * 5


def test_a_bad_allowed_host_is_one_line(capsys):
    code, out = run_main(["serve", "--prompt", "x", "--allowed-host", "not a host!"], capsys)
    assert code == 2
    assert "--allowed-host" in out and "Traceback" not in out
