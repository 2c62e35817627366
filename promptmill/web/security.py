"""Guards that keep other web sites from driving the loopback workbench.

Any page a user visits can make the browser send requests to ``127.0.0.1``: simple cross-site
form posts need no permission, and DNS rebinding lets a page read replies from a name that now
points at loopback. Three checks stop that, in one ASGI middleware so that every route, today's
and tomorrow's, is behind them:

* the ``Host`` header must name this server (a loopback name, the bound address, or a name given
  with ``--allowed-host``) and its port, else 400: a rebound name is refused before any page;
* a state-changing request (anything but GET and HEAD) must come from this server's own origin,
  by its ``Origin`` header or, when a browser leaves that out, its ``Referer``; else 403;
* and it must carry the CSRF token of its session: the cookie holds a random session id, the
  page holds an HMAC of it under a per-server secret (a signed double-submit token), sent back as
  the ``csrf_token`` form field or the ``X-CSRF-Token`` header; else 403.

SameSite=Strict alone is not enough here: pages on other ports of localhost are the same *site*.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..hosts import (  # noqa: F401 - re-exported: the workbench's tests and CLI use them here
    LOOPBACK_NAMES,
    SAFE_METHODS,
    WILDCARD_ADDRESSES,
    HostPort,
    HostRefused,
    admitted_host,
    allowed_host_names,
    clip,
    header_values,
    parse_host,
    same_origin,
)

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_COOKIE = "promptmill_session"
SCOPE_KEY = "promptmill.csrf"

_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")
# no other site may frame the workbench and trick clicks onto its buttons (clickjacking)
PAGE_HEADERS = [(b"x-frame-options", b"DENY"),
                (b"content-security-policy", b"frame-ancestors 'none'"),
                (b"x-content-type-options", b"nosniff"),
                (b"referrer-policy", b"same-origin")]


@dataclass
class CsrfSession:
    """One request's session id and the token its pages embed. ``new`` sessions get their
    cookie only when a page asked for the token, so parallel requests cannot replace it."""

    session_id: str
    secret: bytes = field(repr=False)
    new: bool = False
    handed_out: bool = False

    def expected(self) -> str:
        return token_for(self.secret, self.session_id)

    @property
    def token(self) -> str:
        self.handed_out = True
        return self.expected()


def token_for(secret: bytes, session_id: str) -> str:
    return hmac.new(secret, b"csrf:" + session_id.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The token a page must send back with a form or a fetch(); "" outside the guard."""
    session = request.scope.get(SCOPE_KEY)
    return session.token if session is not None else ""


class Refusal(Exception):
    """A request the guard turns away; ``kind`` (host, origin, csrf) goes into a header."""

    def __init__(self, status: int, kind: str, message: str):
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class GuardSettings:
    allowed_hosts: tuple[HostPort, ...]
    port: int | None = None  # the bound port; None: the port the server reports per request
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)


class BrowserGuard:
    """ASGI middleware: Host check on every request, Origin and CSRF checks on state changes."""

    def __init__(self, app: ASGIApp, settings: GuardSettings, refuse_page=None):
        self.app = app
        self.settings = settings
        self.refuse_page = refuse_page  # (request, status, message) -> Response, for HTML

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            host = self.check_host(scope)
            session = self.session_of(scope)
            scope[SCOPE_KEY] = session
            if scope["type"] == "websocket":  # a socket is opened by a page: its origin counts
                self.check_origin(scope, host)
            elif scope["method"] not in SAFE_METHODS:
                self.check_origin(scope, host)
                receive = await self.check_token(scope, receive, session)
        except Refusal as refusal:
            await self.refuse(scope, receive, send, refusal)
            return
        await self.app(scope, receive, self.cookie_setter(scope, send, session))

    # -- Host --------------------------------------------------------------------------------

    def expected_port(self, scope: Scope) -> int | None:
        if self.settings.port is not None:
            return self.settings.port
        server = scope.get("server")
        return server[1] if server and server[1] is not None else None

    def check_host(self, scope: Scope) -> HostPort:
        port = self.expected_port(scope)
        try:
            return admitted_host(header_values(scope, b"host"), scope.get("scheme", "http"),
                                 self.settings.allowed_hosts, port)
        except HostRefused as refused:
            message = str(refused).replace("this server", "this workbench")
            if "not this workbench" in message:
                message += (f". Fix: open it at http://127.0.0.1:{port or 'PORT'}/, or start it "
                            "with 'promptmill ui --allowed-host NAME' to admit another name")
            raise Refusal(400, "host", message) from None

    # -- Origin ------------------------------------------------------------------------------

    def check_origin(self, scope: Scope, host: HostPort) -> None:
        scope_scheme: str = scope.get("scheme", "http")
        scheme = {"ws": "http", "wss": "https"}.get(scope_scheme, scope_scheme)
        origins = header_values(scope, b"origin")
        if origins:
            for origin in origins:
                if not same_origin(origin, scheme, host):
                    raise Refusal(403, "origin",
                                  f"refused: the request comes from {clip(origin)}, not from "
                                  "this workbench's own pages")
            return
        referers = header_values(scope, b"referer")
        if not referers:
            raise Refusal(403, "origin",
                          "refused: the request has no Origin or Referer header, so it cannot "
                          "be told apart from one sent by another web site. Fix: submit the "
                          "form from the workbench's own page")
        for referer in referers:
            if not same_origin(referer, scheme, host):
                raise Refusal(403, "origin",
                              "refused: the request was sent from a page of another origin, "
                              "not from this workbench's own pages")

    # -- CSRF token --------------------------------------------------------------------------

    def cookie_name(self, scope: Scope) -> str:
        # cookies ignore the port, so two workbenches on one machine need their own names
        port = self.expected_port(scope)
        return f"{SESSION_COOKIE}_{port}" if port else SESSION_COOKIE

    def session_of(self, scope: Scope) -> CsrfSession:
        request = Request(scope)
        value = request.cookies.get(self.cookie_name(scope), "")
        if _SESSION_ID.fullmatch(value):
            return CsrfSession(value, self.settings.secret)
        return CsrfSession(secrets.token_urlsafe(32), self.settings.secret, new=True)

    async def check_token(self, scope: Scope, receive: Receive,
                          session: CsrfSession) -> Receive:
        """Refuses a missing or wrong token; returns a receive that replays the read body."""
        if session.new:
            raise Refusal(403, "csrf", "refused: the session cookie is missing (or expired "
                                       "when the workbench restarted). Fix: reload the page "
                                       "and submit again")
        presented = header_values(scope, CSRF_HEADER.encode())
        if not presented:
            body, receive = await buffered(receive)
            presented = await form_tokens(scope, body)
        if not presented:
            raise Refusal(403, "csrf", "refused: the CSRF token is missing. Fix: reload the page "
                                       f"and submit its form again (it sends '{CSRF_FIELD}'; "
                                       "scripts send the X-CSRF-Token header)")
        expected = session.expected().encode()
        given = presented[0].encode("utf-8", "replace")
        if len(presented) != 1 or not hmac.compare_digest(given, expected):
            raise Refusal(403, "csrf", "refused: the CSRF token does not belong to this "
                                       "session. Fix: reload the page and submit again")
        return receive

    def cookie_setter(self, scope: Scope, send: Send, session: CsrfSession) -> Send:
        """Adds the session cookie when a page handed out its token, and framing rules."""
        name = self.cookie_name(scope)
        secure = scope.get("scheme") == "https"

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *PAGE_HEADERS]
                if session.new and session.handed_out:
                    cookie = Response()
                    cookie.set_cookie(name, session.session_id, httponly=True,
                                      samesite="strict", secure=secure, path="/")
                    headers += [h for h in cookie.raw_headers if h[0] == b"set-cookie"]
                message = {**message, "headers": headers}
            await send(message)

        return send_with_cookie

    # -- refusals ----------------------------------------------------------------------------

    async def refuse(self, scope: Scope, receive: Receive, send: Send, refusal: Refusal) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        scope.pop(SCOPE_KEY, None)  # a refusal page hands out no token
        response = refusal_response(scope, refusal, self.refuse_page)
        response.headers["X-Promptmill-Refused"] = refusal.kind
        for key, value in PAGE_HEADERS:
            response.headers[key.decode()] = value.decode()
        await response(scope, receive, send)


def refusal_response(scope: Scope, refusal: Refusal, refuse_page) -> Response:
    request = Request(scope)
    accept = request.headers.get("accept", "")
    wants_json = (request.url.path.startswith("/api/") or "application/json" in accept
                  or CSRF_HEADER in request.headers)
    if wants_json:
        return JSONResponse({"error": refusal.message}, status_code=refusal.status)
    if refusal.status == 400 or refuse_page is None:
        # a foreign Host gets no page of ours: nothing a rebinding page could use
        return PlainTextResponse(refusal.message, status_code=refusal.status)
    return refuse_page(request, refusal.status, refusal.message)


async def buffered(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a receive that hands it to the app as if unread."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            # the client went away mid-body: never act on a truncated form
            raise Refusal(400, "csrf", "the request body ended before it was complete")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


async def form_tokens(scope: Scope, body: bytes) -> list[str]:
    """The ``csrf_token`` values of a form body (url-encoded or multipart); [] for others."""
    content_type = Request(scope).headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return []

    async def once() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    request = Request(scope, once)
    try:
        form = await request.form()
    except Exception:  # a malformed body carries no token; the app never sees it
        return []
    try:
        return [value for value in form.getlist(CSRF_FIELD) if isinstance(value, str)]
    finally:
        await form.close()
