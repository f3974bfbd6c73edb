"""What our HTTP servers refuse before anything else: other sites.

    app = HostGuard(app, allowed_hosts=["door.lan"], bind_host="0.0.0.0")

``HostGuard`` is ASGI middleware that checks the ``Host`` header of every HTTP
request and WebSocket upgrade against an allow-list, so a page on a DNS
rebinding domain (``evil.example`` resolving to 127.0.0.1) reaches nothing:
421 with a fixed body, or a WebSocket closed before it is accepted. Allowed are
the loopback names, the address the server listens on, any IP address literal
(a rebinding page's requests carry the attacker's domain name, never an
address), this machine's host name when listening beyond loopback, and the
names given. ``same_origin`` and ``bearer_matches`` are the other checks the
dashboard and the local cloud's admin API share.

This module sits beside ``config.py``, below every layer, and imports nothing
from the package: the dashboard (``web/``) and the local cloud (``cloud/``)
both use it, and ``cloud/`` may not import from ``web/``.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
REFUSED_BODY = b"Misdirected request: this server does not answer to that Host name.\n"


def split_host(value: str) -> tuple[str, str]:
    """``(hostname, port)`` of a ``Host`` header: lowercase, IPv6 unbracketed, no final dot."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        name, _, port = value.partition(":")
    else:
        name, port = value, ""  # a bare IPv6 address (not valid in Host, but harmless)
    return name.rstrip("."), port


def is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps a server on this machine."""
    name = split_host(host)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def default_hosts(bind_host: str) -> list[str]:
    """The names a server listening on ``bind_host`` answers to without configuration."""
    names = [*LOOPBACK_NAMES, bind_host]
    if not is_loopback(bind_host):
        machine = socket.gethostname().lower()
        names += [machine, machine.split(".")[0] + ".local"]
    return names


class HostAllowList:
    """``allowed("door.lan:8760")``: names with or without a port; address literals always."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names: set[str] = set()
        self.with_port: set[tuple[str, str]] = set()
        for entry in names:
            name, port = split_host(entry)
            if port:
                self.with_port.add((name, port))
            elif name:
                self.names.add(name)

    def __call__(self, host_header: str | None) -> bool:
        if not host_header:
            return False
        name, port = split_host(host_header)
        return name in self.names or (name, port) in self.with_port or is_address(name)


class HostGuard:
    """ASGI middleware: a request whose ``Host`` is not allowed gets 421 and nothing else."""

    def __init__(
        self, app: ASGIApp, allowed_hosts: Iterable[str] = (), bind_host: str = "127.0.0.1"
    ) -> None:
        self.app = app
        self.allowed = HostAllowList([*default_hosts(bind_host), *allowed_hosts])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not self.allowed(_header(scope, b"host")):
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})  # before accept: 403
            else:
                await refuse(send, 421, REFUSED_BODY)
            return
        await self.app(scope, receive, send)


async def refuse(
    send: Send, status: int, body: bytes, content_type: bytes = b"text/plain; charset=utf-8"
) -> None:
    """A complete HTTP reply that says nothing about the server."""
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def same_origin(headers: Mapping[str, str]) -> bool:
    """No other site sent this: ``Origin`` absent or equal to ``Host``, and ``Sec-Fetch-Site``
    (when a browser sends it) ``same-origin`` or ``none``. Another port on localhost is
    "same-site", not same-origin, and is refused too."""
    if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = headers.get("origin")
    if origin is None:
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    host = headers.get("host", "")
    return bool(host) and parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


def bearer_matches(headers: Mapping[str, str], token: str) -> bool:
    """``Authorization: Bearer <token>`` compared in constant time."""
    auth = headers.get("authorization", "")
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())
