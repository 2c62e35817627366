"""Keeps web pages away from ``promptmill serve``: a page the user visits can make the browser
post to ``127.0.0.1``, and a rebound DNS name can even read the replies.

API clients (the openai SDK, curl) send no ``Origin`` and post JSON; browsers mark every
cross-site request with ``Origin`` (and ``Sec-Fetch-Site``), and a page can post JSON across
sites only after a CORS preflight, which this server never grants. So, on every request:

* the ``Host`` header must name this server (a loopback name, the bound address or an
  ``--allowed-host`` name, at the bound port), else 400: a rebound name gets nothing;
* a request that a browser marks as coming from another site, by an ``Origin`` that is not this
  server's own or by ``Sec-Fetch-Site: cross-site``/``same-site``, is refused with 403 unless
  its origin was given with ``--allow-origin``;
* a POST whose body is of a kind a page can send across sites without a preflight (a form,
  ``text/plain``) gets 415 and is never read: API clients send ``application/json``.

The API key, when one is configured, is the token that proves the client was given access.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from ..hosts import (
    SAFE_METHODS,
    HostPort,
    HostRefused,
    admitted_host,
    header_values,
    same_origin,
)

# the bodies a page may post to any site without a CORS preflight
SIMPLE_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})


@dataclass(frozen=True)
class ApiGuardSettings:
    allowed_hosts: tuple[HostPort, ...]
    port: int | None = None  # the bound port; None: the port the server reports per request
    allowed_origins: tuple[str, ...] = ()


class _Refused(Exception):
    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


class ApiGuard:
    """ASGI middleware in front of the whole ``serve`` app."""

    def __init__(self, app, settings: ApiGuardSettings):
        self.app = app
        self.settings = settings

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            try:
                self.check(scope)
            except _Refused as refused:
                await _refuse(send, refused)
                return
        await self.app(scope, receive, send)

    def check(self, scope) -> None:
        server = scope.get("server")
        port = self.settings.port or (server[1] if server else None)
        try:
            host = admitted_host(header_values(scope, b"host"), scope.get("scheme", "http"),
                                 self.settings.allowed_hosts, port)
        except HostRefused as refused:
            raise _Refused(400, "host", f"{refused}. Fix: call http://127.0.0.1:{port}/v1, or "
                                        "start the server with --allowed-host NAME") from None
        self.check_site(scope, host)
        if scope["method"] not in SAFE_METHODS:
            types = [v.split(";")[0].strip().lower()
                     for v in header_values(scope, b"content-type")]
            if any(t in SIMPLE_TYPES for t in types):
                raise _Refused(415, "content-type",
                               f"a {types[0]} body is refused (web pages can send one to any "
                               "site). Fix: send the JSON with 'Content-Type: application/json'")

    def check_site(self, scope, host: HostPort) -> None:
        scheme = scope.get("scheme", "http")
        for origin in header_values(scope, b"origin"):
            if origin.strip() in self.settings.allowed_origins:
                return
            if not same_origin(origin, scheme, host):
                raise _Refused(403, "origin", f"requests from web pages at {origin.strip()[:80]} "
                                              "are refused. Fix: call the API from a program, "
                                              "or start the server with --allow-origin ORIGIN")
        sites = [v.strip().lower() for v in header_values(scope, b"sec-fetch-site")]
        if any(site in ("cross-site", "same-site") for site in sites) \
                and not header_values(scope, b"origin"):
            raise _Refused(403, "origin", "requests from other web sites are refused")


async def _refuse(send, refused: _Refused) -> None:
    body = json.dumps({"error": {"message": refused.message, "type": "invalid_request_error",
                                 "code": f"refused_{refused.kind}"}}).encode()
    await send({"type": "http.response.start", "status": refused.status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"x-promptmill-refused", refused.kind.encode())]})
    await send({"type": "http.response.body", "body": body})


def guard_settings(host: str | None, port: int | None, allowed_hosts: Iterable[str] = (),
                   allowed_origins: Iterable[str] = ()) -> ApiGuardSettings:
    """Settings for the bound ``host``/``port``; raises ValueError naming a malformed name."""
    from ..hosts import allowed_host_names

    return ApiGuardSettings(allowed_host_names(host, allowed_hosts), port,
                            tuple(o.strip().rstrip("/") for o in allowed_origins))
