"""A WebSocket upgrade written by hand, so a test can send any ``Host`` (clients set their own).

status = upgrade_status("127.0.0.1", port, "/", host_header="evil.example")  # 101, 403...
"""

from __future__ import annotations

import base64
import os
import socket
import ssl as ssl_module
from collections.abc import Mapping


def upgrade_status(
    address: str,
    port: int,
    path: str,
    host_header: str,
    headers: Mapping[str, str] | None = None,
    ssl: ssl_module.SSLContext | None = None,
) -> int:
    """The HTTP status the server answers a WebSocket upgrade with (101 when accepted)."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host_header}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    with socket.create_connection((address, port), timeout=5) as raw:
        sock = ssl.wrap_socket(raw, server_hostname=address) if ssl else raw
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        reply = b""
        while b"\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return int(reply.split(b" ", 2)[1])
