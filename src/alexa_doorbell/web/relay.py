"""The signaling relay: a browser's VIEWER WebSocket piped to the local cloud's.

Browsers do not trust the local cloud's self-made certificate, so on one machine
the page signals through the dashboard (same origin): ``POST .../viewer`` hands
out a one-time token for the presigned URL (``token``), and
``/api/signaling/{token}`` connects to it and pipes both ways (``serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable

import websockets
from starlette.websockets import WebSocket

from alexa_doorbell.config import Settings
from alexa_doorbell.httpguard import same_origin

log = logging.getLogger("alexa_doorbell.web.app")

RELAY_TOKEN_SECONDS = 60.0


class SignalingRelay:
    """One-time tokens for presigned URLs, and the pipe each one opens."""

    def __init__(self, settings: Settings, problem: Callable[[str, str, str], None]) -> None:
        self.settings = settings
        self._problem = problem  # (what, fix, where): shown on the dashboard's status
        self._relays: dict[str, tuple[str, float]] = {}  # one-time token -> (signed URL, expiry)

    def token(self, url: str) -> str:
        now = time.monotonic()
        for token, (_, expiry) in list(self._relays.items()):
            if expiry < now:
                del self._relays[token]
        token = secrets.token_urlsafe(18)
        self._relays[token] = (url, now + RELAY_TOKEN_SECONDS)
        return token

    async def serve(self, ws: WebSocket) -> None:
        """Pipe one browser's signaling WebSocket to the presigned URL its token stands for."""
        entry = self._relays.pop(ws.path_params["token"], None)
        if not same_origin(ws.headers):
            await ws.close(code=4403, reason="cross-site")
            return
        if entry is None or entry[1] < time.monotonic():
            await ws.close(code=4403, reason="unknown or expired relay token")
            return
        from alexa_doorbell.kvs.signaling import ssl_context_for

        try:
            upstream = await websockets.connect(
                entry[0],
                ssl=ssl_context_for(self.settings.ca_file),
                open_timeout=5,
                ping_interval=None,  # KVS does not ping; neither does the SDK
                max_size=2**20,
            )
        except (OSError, websockets.WebSocketException, TimeoutError) as exc:
            log.warning("signaling relay could not connect: %s", type(exc).__name__)
            self._problem(
                "The live view could not reach signaling.",
                f"Is the local cloud running at {self.settings.local.url}? ({exc})",
                "dashboard",
            )
            await ws.close(code=1011, reason="signaling unavailable")
            return
        await ws.accept()

        async def down() -> None:
            async for message in upstream:
                await ws.send_text(message if isinstance(message, str) else message.decode())

        async def up() -> None:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                await upstream.send(text if text is not None else message.get("bytes") or b"")

        tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await upstream.close()
            with contextlib.suppress(Exception):
                await ws.close()
