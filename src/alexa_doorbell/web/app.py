"""The dashboard: live view, doorbell button and system status in one page.

    app = create_app(settings)                 # a Starlette ASGI app
    run_dashboard(settings, "127.0.0.1", 8760) # `alexa-doorbell dashboard`

    server = await start_dashboard(settings, port=0)  # in-process, e.g. from the demo
    print(server.url); ...; await server.stop()

API (JSON): ``GET /api/cameras``, ``POST /api/cameras/{id}/viewer`` (presigned
VIEWER URL + ICE servers; on the local cloud also a one-time ``relayPath``),
``POST /api/cameras/{id}/press`` (DoorbellPress via the notifier),
``GET /api/status``; WebSocket ``/api/signaling/{token}`` relays signaling to
the local cloud, whose self-made certificate browsers do not trust. The page
and the vendored KVS WebRTC SDK are served from ``/`` and ``/static/``.

Before any of it: a ``Host`` that is not this dashboard's gets 421
(``httpguard.HostGuard``, against DNS rebinding), and with a password (required
beyond loopback) nothing but ``/login`` answers without a session (``web.auth``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import websockets
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Scope
from starlette.websockets import WebSocket

from alexa_doorbell.cloud.admin import ADMIN_TOKEN_ENV, admin_headers
from alexa_doorbell.config import Settings
from alexa_doorbell.httpguard import HostGuard, is_loopback, same_origin
from alexa_doorbell.httpserver import LoopServer, listen, serve_forever, server_config
from alexa_doorbell.notifier.client import Notifier, local_notifier
from alexa_doorbell.notifier.state_report import Outcome
from alexa_doorbell.store.base import Store
from alexa_doorbell.web.auth import (
    SESSION_SECONDS,
    DashboardLogin,
    LoginGuard,
    LoginNotConfigured,
    login_required_message,
    read_password,
)
from alexa_doorbell.web.status import Problem, StatusInputs, build_status, event_advice
from alexa_doorbell.web.viewer import ViewerError, ViewerSigner

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
# Page code revalidates on every load (ETag), so an upgrade shows at once; the
# vendored SDK changes only with a release.
CACHE_PAGE = "no-cache"
CACHE_VENDOR = "public, max-age=86400"
NO_STORE = {"Cache-Control": "no-store"}
RELAY_TOKEN_SECONDS = 60.0

PressFn = Callable[[str], list[Outcome]]  # endpoint id -> one Outcome per user


class _Static(StaticFiles):
    def file_response(self, full_path: Any, stat_result: Any, scope: Scope, status_code: int = 200):  # type: ignore[no-untyped-def]
        response = super().file_response(full_path, stat_result, scope, status_code)
        path = str(full_path)
        response.headers["Cache-Control"] = CACHE_VENDOR if "/vendor/" in path else CACHE_PAGE
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def _press_reply(outcomes: list[Outcome]) -> dict[str, Any]:
    """The notifier's outcomes (one per owner) as one reply: ``ok``, ``status``, ``detail``."""
    if not outcomes:
        return {"ok": False, "status": "no reply", "detail": "", "outcomes": []}
    ok = any(o.ok for o in outcomes)
    shown = [o for o in outcomes if o.ok == ok]
    reply: dict[str, Any] = {
        "ok": ok,
        "status": ", ".join(dict.fromkeys(o.status for o in shown)),
        "detail": "; ".join(o.detail for o in shown if o.detail),
        "outcomes": [o.as_dict() for o in outcomes],
    }
    if not ok:
        reply["fix"] = event_advice(reply["status"], reply["detail"])
    return reply


class NotifierPress:
    """The notifier's camera-side press: in-process on the local cloud, a Lambda in AWS.

    Built on first use, so the dashboard starts even when the notifier is not configured.
    """

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store
        self._notifier: Notifier | None = None
        self._lock = threading.Lock()

    def notifier(self) -> Notifier:
        with self._lock:
            if self._notifier is None:
                self._notifier = local_notifier(self.settings, self.store)
            return self._notifier

    def __call__(self, endpoint_id: str) -> list[Outcome]:
        return self.notifier().press(endpoint_id, cause="APP_INTERACTION")

    def sweep(self) -> list[Outcome]:
        """Report cameras that went silent (local cloud only: AWS schedules the notifier)."""
        return self.notifier().sweep()

    def close(self) -> None:
        with self._lock:
            if self._notifier is not None and self.store is None:
                self._notifier.close()  # it opened its own store
            self._notifier = None


class Dashboard:
    """The app's state: settings, the store, the signer and recent failures."""

    def __init__(
        self, settings: Settings, store: Store | None = None, press: PressFn | None = None
    ):
        self.settings = settings
        self._store = store
        self._own_store = store is None
        # Its own notifier, unless the caller rings some other way (then it sweeps nothing).
        self.notifier: NotifierPress | None = None
        if press is None:
            press = self.notifier = NotifierPress(settings, store)
        self.press_fn: PressFn = press
        self.signer = ViewerSigner(settings)
        self.problems: collections.deque[Problem] = collections.deque(maxlen=10)
        self._relays: dict[str, tuple[str, float]] = {}  # one-time token -> (signed URL, expiry)

    @property
    def store(self) -> Store:
        if self._store is None:
            from alexa_doorbell.store import open_store

            self._store = open_store(self.settings.store_location)
        return self._store

    def close(self) -> None:
        if self.notifier is not None:
            self.notifier.close()
        if self._own_store and self._store is not None:
            self._store.close()
            self._store = None

    def _problem(self, what: str, fix: str, where: str) -> None:
        self.problems.appendleft(Problem(what, fix, where, time.time()))

    # -- handlers -------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        return FileResponse(
            STATIC / "index.html",
            headers={"Cache-Control": CACHE_PAGE, "X-Content-Type-Options": "nosniff"},
        )

    async def cameras(self, request: Request) -> JSONResponse:
        cams = [
            {
                "endpoint_id": c.endpoint_id,
                "friendly_name": c.friendly_name,
                "doorbell": c.doorbell,
                "full_duplex": c.full_duplex,
            }
            for c in self.settings.cameras
        ]
        reply = {"cloud": self.settings.cloud, "cameras": cams, "login": request.app.state.login}
        return JSONResponse(reply, headers=NO_STORE)

    def _camera_or_404(self, request: Request) -> tuple[str, JSONResponse | None]:
        endpoint_id = request.path_params["endpoint_id"]
        try:
            self.settings.camera(endpoint_id)
        except KeyError as exc:
            return endpoint_id, JSONResponse({"error": str(exc.args[0])}, 404, headers=NO_STORE)
        if not same_origin(request.headers):  # another page must not ring or get a viewer URL
            return endpoint_id, JSONResponse({"error": "cross-site request"}, 403)
        return endpoint_id, None

    async def viewer(self, request: Request) -> JSONResponse:
        endpoint_id, refused = self._camera_or_404(request)
        if refused is not None:
            return refused
        try:
            config = await asyncio.to_thread(self.signer.viewer, endpoint_id)
        except ViewerError as exc:
            self.signer.forget(endpoint_id)
            self._problem(f"Live view of {endpoint_id} failed.", str(exc), endpoint_id)
            return JSONResponse({"error": str(exc)}, 502, headers=NO_STORE)
        if self.settings.is_local and request.query_params.get("direct") != "1":
            # Browsers distrust the local cloud's self-made certificate: relay the
            # signaling WebSocket through this (same-origin) server instead.
            config["relayPath"] = f"/api/signaling/{self._relay_token(config['signedURL'])}"
        return JSONResponse(config, headers=NO_STORE)

    def _relay_token(self, url: str) -> str:
        now = time.monotonic()
        for token, (_, expiry) in list(self._relays.items()):
            if expiry < now:
                del self._relays[token]
        token = secrets.token_urlsafe(18)
        self._relays[token] = (url, now + RELAY_TOKEN_SECONDS)
        return token

    async def relay(self, ws: WebSocket) -> None:
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

    async def press(self, request: Request) -> JSONResponse:
        endpoint_id, refused = self._camera_or_404(request)
        if refused is not None:
            return refused
        try:
            result = _press_reply(await asyncio.to_thread(self.press_fn, endpoint_id))
        except Exception as exc:  # the notifier's exceptions carry the user-facing message
            log.warning("press on %s failed: %s", endpoint_id, exc)
            fix = event_advice(str(exc))
            self._problem(f"Doorbell press on {endpoint_id} failed: {exc}", fix, endpoint_id)
            return JSONResponse(
                {"ok": False, "status": "error", "detail": str(exc), "fix": fix},
                502,
                headers=NO_STORE,
            )
        if not result["ok"]:
            self._problem(
                f"Doorbell press on {endpoint_id}: {result['status']}", result["fix"], endpoint_id
            )
        return JSONResponse(result, headers=NO_STORE)

    async def status(self, request: Request) -> JSONResponse:
        signaling, cloud_error = await self._signaling_viewers()
        inputs = await asyncio.to_thread(self._gather, signaling, cloud_error)
        return JSONResponse(build_status(inputs), headers=NO_STORE)

    async def _signaling_viewers(self) -> tuple[dict[str, list[str]] | None, str | None]:
        """Browser viewers per channel, from the local cloud (AWS does not list them)."""
        if not self.settings.is_local:
            return None, None
        try:
            async with httpx.AsyncClient(timeout=2.0, headers=admin_headers()) as client:
                reply = await client.get(self.settings.local.url + "/_local/status")
            if reply.status_code == 401:
                return None, f"{self.settings.local.url}: 401, set {ADMIN_TOKEN_ENV} to its token"
            reply.raise_for_status()
            channels = reply.json().get("channels", [])
        except (httpx.HTTPError, ValueError) as exc:
            return None, f"{self.settings.local.url}: {type(exc).__name__}"
        return {c["ChannelName"]: list(c.get("viewers", [])) for c in channels}, None

    def _gather(self, signaling: dict[str, list[str]] | None, cloud_error: str | None):  # type: ignore[no-untyped-def]
        from alexa_doorbell.camera.runstate import read_state

        s = self.settings
        inputs = StatusInputs(
            cloud=s.cloud,
            region=s.region,
            cameras=s.cameras,
            health={},
            sessions={},
            tokens=[],
            events=[],
            signaling_viewers=signaling,
            cloud_error=cloud_error,
            recent_problems=list(self.problems),
            health_max_age=s.health_max_age,
            max_session_seconds=s.max_session_seconds,
            agents={c.endpoint_id: read_state(s.data_dir, c.endpoint_id) for c in s.cameras},
            source_grace_seconds=s.source_grace_seconds,
        )
        try:
            store = self.store
            since = time.time() - 86400
            for cam in s.cameras:
                inputs.health[cam.endpoint_id] = store.get_health(cam.endpoint_id)
                inputs.sessions[cam.endpoint_id] = store.list_sessions(cam.endpoint_id, since=since)
            inputs.tokens = store.list_tokens()
            inputs.events = store.recent_event_records(20)
        except Exception as exc:
            inputs.store_error = str(exc)
        return inputs


async def _sweep_forever(sweep: Callable[[], list[Outcome]], interval: float) -> None:
    """On one machine nobody schedules the notifier's sweep: the dashboard does."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(sweep)
        except Exception as exc:  # not configured or a gateway hiccup: try again later
            log.warning("health sweep failed: %s", exc)


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

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        sweeper = None
        if settings.is_local and dash.notifier is not None:
            sweep = dash.notifier.sweep
            sweeper = asyncio.create_task(_sweep_forever(sweep, settings.health_max_age / 2))
        yield
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        dash.close()

    app = Starlette(
        routes=[
            Route("/", dash.index, methods=["GET", "HEAD"]),
            Route("/api/cameras", dash.cameras, methods=["GET"]),
            Route("/api/cameras/{endpoint_id}/viewer", dash.viewer, methods=["POST"]),
            Route("/api/cameras/{endpoint_id}/press", dash.press, methods=["POST"]),
            Route("/api/status", dash.status, methods=["GET"]),
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
