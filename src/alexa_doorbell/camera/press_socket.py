"""The agent's ear for presses made by other processes on its machine.

    listener = await PressSocket.open(path, on_press)   # on_press(endpoint_id)
    listener.close()

``alexa-doorbell press`` and the dashboard send the notifier's DoorbellPress
themselves; a datagram with the endpoint id to this Unix socket
(``runstate.ask_prewarm``) tells the agent to ready that camera's live view at the
same moment. The socket lives in ``data_dir`` (its permissions are the data
directory's); anything but a served endpoint id is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

from alexa_doorbell.camera.runstate import MAX_SOCKET_PATH

log = logging.getLogger(__name__)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_press: Callable[[str], None]) -> None:
        self.on_press = on_press

    def datagram_received(self, data: bytes, addr: object) -> None:
        try:
            self.on_press(data[:512].decode("utf-8", "strict"))
        except Exception:
            log.debug("press socket: unreadable datagram ignored", exc_info=True)


class PressSocket:
    def __init__(self, path: Path, transport: asyncio.DatagramTransport) -> None:
        self.path, self._transport = path, transport

    @classmethod
    async def open(cls, path: Path, on_press: Callable[[str], None]) -> PressSocket | None:
        """Listen at ``path``; None (logged) where a Unix socket cannot be made."""
        if len(os.fsencode(path)) > MAX_SOCKET_PATH:
            log.info("no press socket: %s is too long a path for one", path)
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by an agent that was killed
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(os.fsencode(path))
            os.chmod(path, 0o600)
        except OSError as exc:
            sock.close()
            log.warning("no press socket at %s (%s): presses elsewhere do not pre-warm", path, exc)
            return None
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(on_press), sock=sock)
        return cls(path, transport)

    def close(self) -> None:
        self._transport.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
