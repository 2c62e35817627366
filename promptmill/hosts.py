"""Host and Origin headers, parsed and compared: what keeps other web sites and rebound names
away from promptmill's loopback servers (the workbench and ``serve``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

SAFE_METHODS = frozenset({"GET", "HEAD"})  # requests that change nothing
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

# a host name, an IPv4 address or a bracketed IPv6 address, then an optional port
_HOST = re.compile(r"(?:\[(?P<v6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9_.-]+))(?::(?P<port>[0-9]{1,5}))?")


@dataclass(frozen=True)
class HostPort:
    name: str
    port: int | None  # None: the scheme's default port, or any port for an allowed name

    def with_default_port(self, scheme: str) -> HostPort:
        return self if self.port is not None else HostPort(self.name, DEFAULT_PORTS.get(scheme))


def parse_host(value: str) -> HostPort | None:
    """``name``, ``name:port`` or ``[v6]:port`` as a lower-case name and port; None if malformed."""
    match = _HOST.fullmatch(value.strip().lower())
    if match is None:
        return None
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 0 < port < 65536:
        return None
    return HostPort(match["v6"] or match["name"], port)


def allowed_host_names(bound: str | None, extra: Iterable[str]) -> tuple[HostPort, ...]:
    """Loopback names, the bound address unless it is a wildcard, and the ``--allowed-host``
    names (each ``NAME`` or ``NAME:PORT``). Raises ValueError naming a malformed entry."""
    hosts = [HostPort(name, None) for name in LOOPBACK_NAMES]
    if bound and bound.strip("[]") not in WILDCARD_ADDRESSES:
        hosts.append(HostPort(bound.strip("[]").lower(), None))
    for value in extra:
        parsed = parse_host(value)
        if parsed is None:
            raise ValueError(f"'{value}' is not a host name (NAME or NAME:PORT)")
        hosts.append(parsed)
    return tuple(dict.fromkeys(hosts))


def same_origin(url: str, scheme: str, host: HostPort) -> bool:
    """Is ``url`` (an Origin or a Referer) at ``scheme://host:port``? ``null`` never is."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return False
    if not parts.scheme or not parts.hostname or parts.username or parts.password:
        return False
    theirs = HostPort(parts.hostname.lower(), port).with_default_port(parts.scheme.lower())
    return parts.scheme.lower() == scheme and theirs == host


def header_values(scope: Mapping[str, Any], name: bytes) -> list[str]:
    """Every value of one header of an ASGI request scope, as text."""
    return [value.decode("latin-1") for key, value in scope.get("headers", [])
            if key.lower() == name]


def clip(text: Any, limit: int = 80) -> str:
    text = "".join(ch if ch.isprintable() else "?" for ch in str(text))
    return text if len(text) <= limit else text[: limit - 1] + "…"


class HostRefused(ValueError):
    """A Host header that does not name this server."""


def admitted_host(values: list[str], scheme: str, allowed: Iterable[HostPort],
                  port: int | None) -> HostPort:
    """The request's one Host header, if it names this server: an ``allowed`` name at the
    bound ``port`` (a name given with its own port admits that port). Else HostRefused."""
    if len(values) != 1:
        raise HostRefused("the request needs exactly one Host header")
    host = parse_host(values[0])
    if host is None:
        raise HostRefused(f"Host '{clip(values[0])}' is not a host name")
    host = host.with_default_port(scheme)
    for name in allowed:
        if name.name == host.name and (name.port or port) in (None, host.port):
            return host
    raise HostRefused(f"Host '{clip(values[0])}' is not this server")

