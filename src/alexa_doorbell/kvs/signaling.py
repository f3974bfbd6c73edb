"""The KVS signaling WebSocket: an asyncio client for MASTER and VIEWER roles.

:class:`SignalingClient` keeps one connection up under supervision: it asks
``url_factory`` for a freshly presigned URL before every attempt (a presigned
URL lives 299 s), reconnects with exponential backoff and jitter after a drop,
at once after ``GO_AWAY``, and on its own before the service's connection cap.
A MASTER connection replaced by another MASTER of the channel (the local cloud
closes it with ``CLOSE_MASTER_REPLACED``) is a second agent on one channel: it says
so in one warning and waits ``replaced_backoff`` (doubling to ``replaced_backoff_max``)
before taking the channel back, rather than fighting over it every second.
Received messages are handed to ``on_message`` in their own tasks so a slow
handler (an answer waits for ICE gathering) never stalls the reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from alexa_doorbell.kvs.messages import (
    CLOSE_MASTER_REPLACED,
    ClientMessage,
    MessageError,
    ServerMessage,
)

log = logging.getLogger(__name__)

UrlFactory = Callable[[], "Awaitable[str] | str"]
MessageHandler = Callable[[ServerMessage], "Awaitable[None] | None"]
StateHandler = Callable[[bool], "Awaitable[None] | None"]


class SignalingError(RuntimeError):
    """The signaling connection is not available."""


def ssl_context_for(url_or_ca: str | Path | None) -> ssl.SSLContext:
    """Default trust, plus the local cloud's self-made certificate when given."""
    ctx = ssl.create_default_context()
    if url_or_ca and Path(url_or_ca).exists():
        ctx.load_verify_locations(cafile=str(url_or_ca))
    return ctx


def redact_url(url: str) -> str:
    """A presigned URL without its signature and credentials, for logs."""
    return url.split("?", 1)[0]


_QUERY_IN_TEXT = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"?]*)\?[^\s'\"]*")


def redact_text(text: str) -> str:
    """An error message with any presigned URL in it cut before its query string."""
    return _QUERY_IN_TEXT.sub(r"\1?…", text)


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class SignalingClient:
    def __init__(
        self,
        url_factory: UrlFactory,
        on_message: MessageHandler,
        *,
        role: str = "MASTER",
        ssl_context: ssl.SSLContext | None = None,
        on_state: StateHandler | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        max_age: float = 3300.0,  # reconnect before KVS's ~1 hour cap
        ping_interval: float = 20.0,  # keeps the ~10 minute idle timeout away
        open_timeout: float = 10.0,
        replaced_backoff: float = 30.0,  # after another MASTER took the channel over
        replaced_backoff_max: float = 300.0,
        name: str = "",  # the channel, for log lines
    ) -> None:
        self.url_factory = url_factory
        self.on_message = on_message
        self.on_state = on_state
        self.role = role
        self.ssl_context = ssl_context
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.max_age, self.ping_interval, self.open_timeout = max_age, ping_interval, open_timeout
        self.connected = asyncio.Event()
        self.connections = 0  # successful connects, for tests and status pages
        self.last_error: str | None = None
        self.replaced_backoff, self.replaced_backoff_max = replaced_backoff, replaced_backoff_max
        self.name = name
        self.replaced = False  # the last connection was taken over by another MASTER
        self.replacements = 0  # in a row
        self._ws: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._handlers: set[asyncio.Task[Any]] = set()

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._supervise(), name=f"kvs-{self.role.lower()}")

    async def stop(self) -> None:
        self._stopping = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for t in list(self._handlers):
            t.cancel()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)

    async def wait_connected(self, timeout: float = 10.0) -> None:
        try:
            await asyncio.wait_for(self.connected.wait(), timeout)
        except TimeoutError:
            raise SignalingError(
                f"signaling not connected after {timeout:.0f} s: {self.last_error or 'no reply'}"
            ) from None

    async def reconnect(self) -> None:
        """Drop the current connection; the supervisor opens a new one at once."""
        if self._ws is not None:
            await self._ws.close()

    async def send(self, message: ClientMessage) -> None:
        ws = self._ws
        if ws is None or not self.connected.is_set():
            raise SignalingError("signaling connection is down")
        try:
            await ws.send(message.to_json())
        except ConnectionClosed as exc:
            raise SignalingError(f"signaling connection closed while sending: {exc}") from None

    # -- supervision ----------------------------------------------------------
    async def _supervise(self) -> None:
        attempt = 0
        while not self._stopping:
            immediate = False
            self.replaced = False
            try:
                url = await _maybe_await(self.url_factory())
                async with websockets.connect(
                    url,
                    ssl=self.ssl_context if url.startswith("wss://") else None,
                    open_timeout=self.open_timeout,
                    ping_interval=self.ping_interval,
                    max_size=2**20,
                ) as ws:
                    self._ws = ws
                    self.connections += 1
                    attempt = 0
                    self.last_error = None
                    self.connected.set()
                    log.info("signaling connected as %s to %s", self.role, redact_url(url))
                    await self._notify(True)
                    immediate = await self._read(ws)
            except asyncio.CancelledError:
                raise
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError, ConnectionClosed) as exc:
                self.last_error = redact_text(f"{type(exc).__name__}: {exc}")
                log.warning("signaling connection failed: %s", self.last_error)
            except Exception as exc:  # a URL factory failure (e.g. AWS API error)
                self.last_error = redact_text(f"{type(exc).__name__}: {exc}")
                log.warning("signaling set-up failed: %s", self.last_error)
            finally:
                was_connected = self.connected.is_set()
                self.connected.clear()
                self._ws = None
                if was_connected and not self._stopping:
                    await self._notify(False)
            if self._stopping:
                break
            if self.replaced:
                self.replacements += 1
                wait = self.replaced_backoff * 2 ** (self.replacements - 1)
                wait = min(self.replaced_backoff_max, wait)
                log.warning(
                    "another %s connected to channel %s and took it over (two camera agents "
                    "with one channel_name?): this one waits %.0f s before taking it back; "
                    "stop the other agent or give each camera its own channel_name",
                    self.role,
                    self.name or "?",
                    wait,
                )
                await asyncio.sleep(wait)
                continue
            self.replacements = 0
            if immediate:
                continue
            delay = min(self.backoff_max, self.backoff_initial * 2**attempt)
            delay *= random.uniform(0.5, 1.0)  # jitter: many cameras must not retry in step
            attempt += 1
            log.info("signaling reconnecting in %.1f s", delay)
            await asyncio.sleep(delay)

    async def _read(self, ws: Any) -> bool:
        """Read until the socket closes; True when the next connect should be immediate."""
        opened = time.monotonic()
        while True:
            remaining = self.max_age - (time.monotonic() - opened)
            if remaining <= 0:
                log.info("signaling connection is %.0f s old: renewing it", self.max_age)
                await ws.close()
                return True
            try:
                raw = await asyncio.wait_for(ws.recv(), remaining)
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                self.last_error = f"closed: {exc}"
                self.replaced = exc.rcvd is not None and exc.rcvd.code == CLOSE_MASTER_REPLACED
                if self.replaced:
                    self.last_error = f"replaced by another {self.role} of the channel"
                log.info("signaling connection closed: %s", exc)
                return False
            try:
                msg = ServerMessage.parse(raw)
            except MessageError as exc:
                log.warning("ignoring malformed signaling message: %s", exc)
                continue
            if msg.message_type == "GO_AWAY":
                log.info("signaling GO_AWAY: reconnecting")
                await ws.close()
                return True
            task = asyncio.create_task(self._dispatch(msg))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _dispatch(self, msg: ServerMessage) -> None:
        try:
            await _maybe_await(self.on_message(msg))
        except Exception:
            log.exception("signaling handler failed for %s", msg.message_type)

    async def _notify(self, up: bool) -> None:
        if self.on_state is not None:
            try:
                await _maybe_await(self.on_state(up))
            except Exception:
                log.exception("signaling state callback failed")
