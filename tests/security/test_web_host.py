"""DNS rebinding against the workbench: a foreign ``Host`` header gets 400 on every method.

A rebinding page is same-origin with itself in the browser's eyes (its Origin and its Host are
both the attacker's name), so only the Host check stands in its way. A real server on loopback,
real HTTP, with and without ``--token``; the request carries the user's cookies.
"""

from __future__ import annotations

import socket
from contextlib import closing

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from web_page_client import live_workbench, page_http_client, page_token

pytestmark = pytest.mark.server

FOREIGN_HOSTS = {
    "evil-name-with-port": "evil.example:{port}",
    "evil-name": "evil.example",
    "loopback-prefix-name": "127.0.0.1.evil",
    "loopback-prefix-name-with-port": "127.0.0.1.evil:{port}",
    "localhost-suffix-name": "localhost.evil.example:{port}",
    "localhost-trailing-dot": "localhost.:{port}",
    "loopback-other-port": "127.0.0.1:{other}",
    "localhost-other-port": "localhost:{other}",
    "ipv6-loopback-other-port": "[::1]:{other}",
    "loopback-default-port": "127.0.0.1",
    "wildcard-address": "0.0.0.0:{port}",
    "other-loopback-address": "127.0.0.2:{port}",
    "short-ipv4-form": "127.1:{port}",
    "userinfo-trick": "127.0.0.1:{port}@evil.example",
    "two-ports": "127.0.0.1:{port}:{port}",
    "port-out-of-range": "127.0.0.1:99999",
    "empty": "",
    "spaces-inside": "127.0.0.1 evil:{port}",
    "unicode-lookalike": "1２7.0.0.1:{port}",
}
OWN_HOSTS = {
    "loopback": "127.0.0.1:{port}",
    "localhost": "localhost:{port}",
    "localhost-upper-case": "LOCALHOST:{port}",
    "ipv6-loopback": "[::1]:{port}",
}
METHODS = ["GET", "POST"]


@pytest.fixture(scope="module", params=[None, "s3cret-token"], ids=["no-token", "with-token"])
def live(request, tmp_path_factory):
    with live_workbench(tmp_path_factory.mktemp("host"), token=request.param,
                        allowed_hosts=("workbench.test", "proxy.test:443")) as server:
        yield server


@pytest.fixture(scope="module")
def victim(live):
    client = live.browser()
    token = page_token(client.get("/playground").text)
    yield client, token
    client.close()


def _raw_request(port: int, request: bytes) -> bytes:
    """Bytes on a socket: for requests httpx will not send (no Host, two Hosts)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _host(template: str, live) -> str:
    return template.format(port=live.port, other=live.port + 1)


def _send(client, method: str, host: str, token: str):
    # a rebinding page posts from its own origin, which is the foreign name itself
    headers = {"Host": host.encode(), "Origin": f"http://{host}".encode()}  # bytes: any text
    if method == "GET":
        return client.get("/runs", headers=headers)
    return client.post("/prompts/small/tag", headers=headers,
                       data={"version": "1", "tag": "rebound", "csrf_token": token})


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(FOREIGN_HOSTS))
def test_a_foreign_host_gets_400(live, victim, case, method):
    client, token = victim
    host = _host(FOREIGN_HOSTS[case], live)
    before = live.fingerprint()
    response = _send(client, method, host, token)
    assert response.status_code == 400, response.text[:200]
    assert response.headers.get("x-promptmill-refused") == "host"
    assert "small" not in response.text and "<html" not in response.text.lower()
    assert live.fingerprint() == before


@pytest.mark.parametrize("case", list(OWN_HOSTS))
def test_the_own_address_is_served(live, case):
    host = _host(OWN_HOSTS[case], live)
    with closing(live.browser(headers={"Host": host})) as client:
        assert client.get("/runs").status_code == 200


@pytest.mark.parametrize("raw, case", [
    (b"GET /runs HTTP/1.0\r\n\r\n", "no-host-http-1.0"),
    (b"GET /runs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example:{port}\r\n"
     b"Connection: close\r\n\r\n", "two-host-headers"),
    (b"POST /prompts/small/tag HTTP/1.0\r\nContent-Length: 0\r\n\r\n", "post-without-host"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_requests_without_one_host_get_400(live, raw, case):
    reply = _raw_request(live.port, raw.replace(b"{port}", str(live.port).encode()))
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]


def test_an_allowed_host_is_served_and_its_page_can_post(live):
    host = f"workbench.test:{live.port}"
    with closing(live.browser(headers={"Host": host})) as client:
        assert client.get("/runs").status_code == 200
    page = page_http_client(live.base, headers={"Host": host})
    page.origin = f"http://{host}"  # the page was loaded from that name
    try:
        live.authenticate(page)
        before = live.fingerprint()
        response = page.post("/prompts/small/tag", data={"version": "1", "tag": "by-name"},
                             follow_redirects=False)
        assert response.status_code == 303 and live.fingerprint() != before
    finally:
        page.close()


def test_an_allowed_host_on_another_port_is_not_a_wildcard(live):
    """``--allowed-host proxy.test:443`` admits that port only; a bare name only the bound
    port; and an allowed name does not make its Origin acceptable on another Host."""
    with closing(live.browser()) as client:
        assert client.get("/runs", headers={"Host": "proxy.test:443"}).status_code == 200
        assert client.get("/runs", headers={"Host": f"proxy.test:{live.port}"}).status_code \
            == 400
        assert client.get("/runs", headers={"Host": "workbench.test:443"}).status_code == 400
        token = page_token(client.get("/playground").text)
        cross = client.post("/prompts/small/tag", headers={
            "Origin": f"http://workbench.test:{live.port}"},
            data={"version": "1", "tag": "x", "csrf_token": token})
        assert cross.status_code == 403
