"""systemd's notify protocol (sd_notify(3)), in a few lines of stdlib.

With ``Type=notify`` systemd passes ``NOTIFY_SOCKET`` (a path, or ``@name`` in the
abstract namespace); one datagram of ``KEY=value`` lines per message: ``READY=1`` once
signaling is up, ``STATUS=...`` for ``systemctl status``, ``STOPPING=1``, and
``WATCHDOG=1`` every half of ``WATCHDOG_USEC`` when the unit sets ``WatchdogSec=``.
Outside systemd (no ``NOTIFY_SOCKET``) every call does nothing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


def notify(message: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Send ``message`` (e.g. ``"READY=1\\nSTATUS=serving"``); False when not under systemd."""
    address = environ.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False
    if address[0] == "@":  # Linux's abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError:
        return False  # systemd gone (shutting down): nothing to tell
    return True


def watchdog_interval(environ: Mapping[str, str] = os.environ) -> float | None:
    """Seconds between WATCHDOG=1 pings (half the unit's WatchdogSec), or None."""
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = environ.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 2e6
