"""How our HTTP servers run: uvicorn on a socket we bind, in the caller's event loop.

    sock = listen("127.0.0.1", 0, what="dashboard", hint="Pick another port with --port.")
    server = LoopServer(server_config(app), sock)
    await server.start()          # sock.getsockname() says the port; raises if it cannot serve
    ...
    await server.stop()

``listen`` binds the socket itself, so a port in use is a one-line ``OSError``
that says what to do, and port 0 is known before serving starts. It creates the
socket with ``IPPROTO_TCP``: asyncio sets ``TCP_NODELAY`` only on accepted
sockets whose protocol says TCP, and without it every small response waits
~40 ms for the client's delayed ACK. ``LoopServer`` leaves signals to the owner
of the loop (the demo, the tests, a command that runs several servers).

This module sits beside ``httpguard.py``, below every layer, and imports nothing
from the package: the local cloud (``cloud/``) and the dashboard (``web/``) both
run their servers through it, and neither may import the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Any

import uvicorn
from starlette.types import ASGIApp

WS_IMPL = "websockets-sansio"  # uvicorn's WebSocket server for the cloud and the dashboard


def listen(host: str, port: int, *, what: str, hint: str) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: a free port), ready for uvicorn.

    Raises ``OSError("<what> cannot listen on host:port: <why>. <hint>")``.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"{what} cannot listen on {host}:{port}: {exc.strerror}. {hint}") from exc
    sock.setblocking(False)
    return sock


def server_config(app: ASGIApp, **options: Any) -> uvicorn.Config:
    """uvicorn settings both servers share: quiet, our WebSocket server, 1 s to drain."""
    defaults: dict[str, Any] = {
        "log_level": "warning",
        "access_log": False,
        "ws": WS_IMPL,
        "timeout_graceful_shutdown": 1,
    }
    return uvicorn.Config(app, **{**defaults, **options})


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the owner of the loop decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class LoopServer:
    """One uvicorn server on one bound socket, as a task of the running loop."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket) -> None:
        self.uvicorn: uvicorn.Server = _Server(config)
        self.socket = sock
        self._task: asyncio.Task[None] | None = None

    def begin(self) -> None:
        """Start serving in the background; :meth:`wait_started` says when it is up."""
        self._task = asyncio.create_task(self._serve())

    async def _serve(self) -> None:
        try:
            await self.uvicorn.serve(sockets=[self.socket])
        except SystemExit as exc:  # uvicorn's word for "could not start": not the process's end
            raise RuntimeError(f"server failed to start (uvicorn status {exc.code})") from None

    async def wait_started(self) -> None:
        """Return once it serves; raise why it could not."""
        assert self._task is not None, "begin() first"
        while not self.uvicorn.started:
            if self._task.done():
                self._task.result()  # raises the startup failure
                raise RuntimeError("server failed to start")
            await asyncio.sleep(0.01)

    async def start(self) -> None:
        self.begin()
        await self.wait_started()

    async def stop(self) -> None:
        """Stop accepting, let requests finish (at most ``timeout_graceful_shutdown``)."""
        self.uvicorn.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._task
        self._task = None
        self.socket.close()


def serve_forever(config: uvicorn.Config, sock: socket.socket) -> None:
    """Serve until Ctrl-C / SIGTERM in a loop of its own, with uvicorn's signal handling.

    Exits with status 3, as ``uvicorn.run`` does, when the app failed to start (uvicorn
    has logged why).
    """
    server = uvicorn.Server(config)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    if not server.started:
        raise SystemExit(3)
