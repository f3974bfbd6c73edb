"""The dashboard: live view, doorbell button and system status in one page.

    app = create_app(settings)                 # a Starlette ASGI app
    run_dashboard(settings, "127.0.0.1", 8760) # `alexa-doorbell dashboard`

    server = await start_dashboard(settings, port=0)  # in-process, e.g. from the demo
    print(server.url); ...; await server.stop()

API (JSON, handled in ``web/dashboard.py``): ``GET /api/cameras``,
``POST /api/cameras/{id}/viewer`` (presigned VIEWER URL + ICE servers; on the local
cloud also a one-time ``relayPath``, ``web/relay.py``),
``POST /api/cameras/{id}/press`` (DoorbellPress via the notifier),
``GET /api/status``, ``GET /api/timeline`` and its pictures (``web/timeline.py``);
WebSocket ``/api/signaling/{token}`` relays signaling to
the local cloud, whose self-made certificate browsers do not trust. The page
and the vendored KVS WebRTC SDK are served from ``/`` and ``/static/``.

Before any of it: a ``Host`` that is not this dashboard's gets 421
(``httpguard.HostGuard``, against DNS rebinding), and with a password (required
beyond loopback) nothing but ``/login`` answers without a session (``web.auth``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from alexa_doorbell.config import Settings
from alexa_doorbell.httpguard import HostGuard, is_loopback
from alexa_doorbell.httpserver import LoopServer, listen, serve_forever, server_config
from alexa_doorbell.store.base import Store
from alexa_doorbell.web.auth import (
    SESSION_SECONDS,
    DashboardLogin,
    LoginGuard,
    LoginNotConfigured,
    login_required_message,
    read_password,
)
from alexa_doorbell.web.dashboard import CACHE_PAGE, CACHE_VENDOR, STATIC, Dashboard
from alexa_doorbell.web.press import PressFn, sweep_forever
from alexa_doorbell.web.timeline import TimelineView

__all__ = ["Dashboard", "DashboardServer", "create_app", "run_dashboard", "start_dashboard"]

log = logging.getLogger(__name__)


class _Static(StaticFiles):
    def file_response(self, full_path: Any, stat_result: Any, scope: Scope, status_code: int = 200):  # type: ignore[no-untyped-def]
        response = super().file_response(full_path, stat_result, scope, status_code)
        path = str(full_path)
        response.headers["Cache-Control"] = CACHE_VENDOR if "/vendor/" in path else CACHE_PAGE
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    press: PressFn | None = None,
    host: str = "127.0.0.1",
    password: str | None = None,
) -> Starlette:
    """The dashboard ASGI app. ``store`` and ``press`` default to the configured ones.

    ``host`` is where it listens: beyond loopback it needs ``password`` (default: from
    the environment, see ``web.auth``) and raises :class:`LoginNotConfigured` without.
    """
    password = password or read_password(settings.region)
    if password is None and not is_loopback(host):
        raise LoginNotConfigured(login_required_message(host))
    guards = [Middleware(HostGuard, settings.dashboard.allowed_hosts, bind_host=host)]
    if password is not None:
        guards.append(Middleware(LoginGuard, DashboardLogin(password)))
    dash = Dashboard(settings, store, press)
    timeline = TimelineView(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        sweeper = None
        if settings.is_local and dash.notifier is not None:
            sweep = dash.notifier.sweep
            sweeper = asyncio.create_task(sweep_forever(sweep, settings.health_max_age / 2))
        yield
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        dash.close()
        timeline.close()

    app = Starlette(
        routes=[
            Route("/", dash.index, methods=["GET", "HEAD"]),
            Route("/api/cameras", dash.cameras, methods=["GET"]),
            Route("/api/cameras/{endpoint_id}/viewer", dash.viewer, methods=["POST"]),
            Route("/api/cameras/{endpoint_id}/press", dash.press, methods=["POST"]),
            Route("/api/status", dash.status, methods=["GET"]),
            Route("/api/timeline", timeline.entries, methods=["GET"]),
            Route("/api/timeline/{entry_id}/snapshot", timeline.snapshot, methods=["GET"]),
            WebSocketRoute("/api/signaling/{token}", dash.relay),
            Mount("/static", _Static(directory=STATIC), name="static"),
        ],
        middleware=guards,
        lifespan=lifespan,
    )
    app.state.dashboard = dash
    app.state.login = password is not None
    return app


_PORT_HINT = "Pick another port with --port."


class DashboardServer:
    """The dashboard in the running event loop; ``port=0`` picks a free port."""

    def __init__(
        self,
        settings: Settings,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        store: Store | None = None,
        press: PressFn | None = None,
        password: str | None = None,
    ) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self.app = create_app(settings, store=store, press=press, host=host, password=password)
        self._server: LoopServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def server(self) -> LoopServer | None:
        """The uvicorn server while started."""
        return self._server

    async def start(self) -> None:
        sock = listen(self.host, self.port, what="dashboard", hint=_PORT_HINT)
        self.port = sock.getsockname()[1]
        self._server = LoopServer(server_config(self.app), sock)
        try:
            await self._server.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
        self._server = None

    async def __aenter__(self) -> DashboardServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def start_dashboard(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8760,
    *,
    store: Store | None = None,
    press: PressFn | None = None,
    password: str | None = None,
) -> DashboardServer:
    """A started :class:`DashboardServer` in the running loop (``await server.stop()``)."""
    server = DashboardServer(settings, host, port, store=store, press=press, password=password)
    await server.start()
    return server


def run_dashboard(settings: Settings, host: str = "127.0.0.1", port: int = 8760) -> None:
    """``alexa-doorbell dashboard``: serve until Ctrl-C.

    Raises :class:`LoginNotConfigured` when ``host`` is beyond loopback and no password is set,
    ``OSError`` (one line: what to do) when it cannot listen there.
    """
    from rich.console import Console

    app = create_app(settings, host=host)
    sock = listen(host, port, what="dashboard", hint=_PORT_HINT)  # a port in use: one line
    console = Console()
    where = "the local cloud at " + settings.local.url if settings.is_local else "AWS"
    console.print(f"[bold]Dashboard[/bold] on http://{host}:{port}/ (talking to {where})")
    if app.state.login:
        days = SESSION_SECONDS // 86400
        console.print(f"Sign in with the dashboard password; a session lasts {days} days.")
    if not is_loopback(host):
        console.print(
            "[yellow]Listening beyond this machine: only browsers that signed in can watch the "
            "camera and ring the bell, but the password crosses your network in clear text "
            "on http. Browsers allow the microphone only on https or localhost.[/]"
        )
    serve_forever(server_config(app), sock)
