"""An RTSP camera: FFmpeg's options for it, and a cheap "is it there" check."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

# TCP: no lost packets to conceal. 1 s of probing (FFmpeg's default is 5 s) is
# enough to learn the picture size and whether B-frames come; once the agent has
# seen the stream, a reopen after an outage probes 0.2 s (the picture is back sooner).
FIRST_PROBE_US = 1_000_000
REOPEN_PROBE_US = 200_000


def is_rtsp(spec: str) -> bool:
    return spec.startswith(("rtsp://", "rtsps://"))


def rtsp_options(*, reopen: bool = False) -> dict[str, str]:
    probe = REOPEN_PROBE_US if reopen else FIRST_PROBE_US
    return {"rtsp_transport": "tcp", "analyzeduration": str(probe)}


def rtsp_address(spec: str) -> tuple[str, int]:
    """(host, port) of an rtsp:// or rtsps:// URL; ValueError when it has no host."""
    parts = urlsplit(spec)
    if not parts.hostname:
        raise ValueError("no host in the URL")
    default = 322 if parts.scheme == "rtsps" else 554
    return parts.hostname, parts.port or default


def rtsp_reachable(spec: str, timeout: float = 2.0) -> bool:
    """A TCP connection to the camera's RTSP port: what an idle agent checks now and then
    (opening the stream would cost a second of demuxing for every look)."""
    try:
        with socket.create_connection(rtsp_address(spec), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False
