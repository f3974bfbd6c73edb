"""The agent's ear for presses made by other processes on its machine.

    listener = await PressSocket.open(path, on_notice)   # on_notice(PressNotice)
    listener.close()

``alexa-doorbell press`` and the dashboard send the notifier's DoorbellPress
themselves, and tell the agent of it with two datagrams to this Unix socket
(``runstate.ask_prewarm``, ``runstate.tell_press_outcome``), both JSON:

    {"endpoint_id": "front-door", "press": "<id>", "source": "press command",
     "cause": "PHYSICAL_INTERACTION"}                  # before the notifier call
    {"endpoint_id": "front-door", "press": "<id>", "status": "202"}   # its answer

The first readies the camera's live view and has its picture taken; the second
records the press in the door timeline with what the notifier answered. A bare
endpoint id (what older senders send) only readies the view. The socket lives in
``data_dir`` (its permissions are the data directory's); anything else, or more
than ``MAX_NOTICE`` bytes, is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# AF_UNIX paths hold at most 107 bytes: a data_dir too deep has no press socket.
MAX_SOCKET_PATH = 107
MAX_NOTICE = 2048  # bytes: ids, a source and a status fit many times over


@dataclass(frozen=True)
class PressNotice:
    """One datagram: a press on this machine outside the agent, or its answer."""

    endpoint_id: str
    press: str | None = None  # the press's id; None: a bare endpoint id (an older sender)
    source: str = ""  # "press command", "dashboard"
    cause: str = ""  # PHYSICAL_INTERACTION, APP_INTERACTION
    status: str | None = None  # the notifier's answer: set on the second notice only

    @property
    def answer(self) -> bool:
        return self.status is not None

    def encode(self) -> bytes:
        if self.press is None:
            return self.endpoint_id.encode()
        fields: dict[str, str] = {"endpoint_id": self.endpoint_id, "press": self.press}
        if self.status is None:
            fields.update(source=self.source, cause=self.cause)
        else:
            fields["status"] = self.status
        return json.dumps(fields).encode()

    @classmethod
    def decode(cls, data: bytes) -> PressNotice:
        """ValueError for anything but a notice of at most ``MAX_NOTICE`` bytes."""
        if len(data) > MAX_NOTICE:
            raise ValueError(f"{len(data)} bytes: too long for a press notice")
        text = data.decode("utf-8", "strict")
        if not text.startswith(("{", "[")):  # endpoint ids hold no brackets
            if not text or not text.isprintable():
                raise ValueError("not an endpoint id")
            return cls(text)
        fields = json.loads(text)
        if not isinstance(fields, dict):
            raise ValueError("not a JSON object")

        def text_of(key: str, default: str | None = "") -> str | None:
            value = fields.get(key, default)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{key} is not a string")
            return value

        endpoint_id, press = text_of("endpoint_id", None), text_of("press", None)
        if not endpoint_id or not press:
            raise ValueError("a notice names its endpoint_id and its press")
        return cls(
            endpoint_id,
            press,
            source=text_of("source") or "",
            cause=text_of("cause") or "",
            status=text_of("status", None),
        )


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_notice: Callable[[PressNotice], None]) -> None:
        self.on_notice = on_notice

    def datagram_received(self, data: bytes, addr: object) -> None:
        try:
            notice = PressNotice.decode(data)
        except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            log.debug("press socket: unreadable datagram ignored", exc_info=True)
            return
        try:
            self.on_notice(notice)
        except Exception:
            log.exception("press socket: %s", notice)


class PressSocket:
    def __init__(self, path: Path, transport: asyncio.DatagramTransport) -> None:
        self.path, self._transport = path, transport

    @classmethod
    async def open(cls, path: Path, on_notice: Callable[[PressNotice], None]) -> PressSocket | None:
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
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(on_notice), sock=sock)
        return cls(path, transport)

    def close(self) -> None:
        self._transport.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
