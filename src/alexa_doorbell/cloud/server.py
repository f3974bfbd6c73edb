"""The local cloud: KVS signaling, Login with Amazon and the Alexa event gateway.

Two uvicorn servers share one event loop and one Starlette app: plain HTTP
(``settings.local.port``) for the REST APIs and the ``/_local/...`` admin
endpoints, TLS (``settings.local.tls_port``) for the signaling WebSocket that
``GetSignalingChannelEndpoint`` hands out as ``wss://``. The WebSocket is also
accepted as ``ws://`` on the HTTP port.

Both servers answer only to allowed ``Host`` names (``httpguard.HostGuard``:
no DNS rebinding page reaches them), and ``/_local/...`` never to another site,
and beyond loopback only with the admin token (``cloud.admin.AdminGuard``).

    cloud = LocalCloud(settings)      # port 0 = pick a free port
    await cloud.start()               # settings.local.port/tls_port now hold the real ones
    cloud.admin_token                 # what /_local/... requires (None: open on loopback)
    ...
    await cloud.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp

from alexa_doorbell.amazon.snapshots import bucket_name
from alexa_doorbell.cloud.admin import ADMIN_TOKEN_ENV, AdminGuard, required_admin_token
from alexa_doorbell.cloud.alexa import announcer_for
from alexa_doorbell.cloud.db import CloudDB
from alexa_doorbell.cloud.gateway import EventGateway
from alexa_doorbell.cloud.kvs import KvsEmulator
from alexa_doorbell.cloud.lwa import LwaEmulator
from alexa_doorbell.cloud.s3 import S3Emulator
from alexa_doorbell.cloud.tls import ensure_certificate
from alexa_doorbell.cloud.turn import Coturn
from alexa_doorbell.config import LOCAL_AWS_SECRET_ACCESS_KEY, Settings
from alexa_doorbell.httpguard import HostGuard, is_loopback
from alexa_doorbell.httpserver import LoopServer, listen, server_config

log = logging.getLogger(__name__)


_PORT_HINT = "Is another local cloud running? Pick other ports with --port."


class LocalCloud:
    """KVS + LWA + event gateway emulators in the running event loop."""

    def __init__(self, settings: Settings, admin_token: str | None = None) -> None:
        self.settings = settings
        self.admin_token = admin_token or required_admin_token(settings.local.host)
        self.db = CloudDB(settings.cloud_dir / "cloud.sqlite3")
        self.kvs = KvsEmulator(settings, self.db)
        self.lwa = LwaEmulator(settings, self.db)
        self.gateway = EventGateway(self.lwa)
        # What the users' Alexa would say of each event (snapshots fetched as Alexa does).
        self.alexa = announcer_for(settings.cameras, settings.ca_file)
        self.gateway.listeners.append(self.alexa.heard)
        self.s3 = S3Emulator(settings)
        self.turn = Coturn(settings)  # started by the first GetIceServerConfig
        self.kvs.ice_servers = self.turn.ice_server_list
        self.app = self._build_app()
        self._servers: list[LoopServer] = []

    @property
    def servers(self) -> tuple[LoopServer, ...]:
        """The HTTP and the TLS server while started."""
        return tuple(self._servers)

    @property
    def key_file(self):  # type: ignore[no-untyped-def]
        return self.settings.cloud_dir / "key.pem"

    # -- life cycle ------------------------------------------------------------------
    async def start(self) -> None:
        local = self.settings.local
        ensure_certificate(self.settings.ca_file, self.key_file, local.host)
        for cam in self.settings.cameras:
            self.kvs.ensure_channel(cam.channel_name)
        self.s3.ensure_bucket(bucket_name(self.settings))
        self.s3.apply_lifecycle()
        http_sock = listen(local.host, local.port, what="local cloud", hint=_PORT_HINT)
        try:
            tls_sock = listen(local.host, local.tls_port, what="local cloud", hint=_PORT_HINT)
        except OSError:
            http_sock.close()
            raise
        local.port = http_sock.getsockname()[1]
        local.tls_port = tls_sock.getsockname()[1]
        common: dict[str, Any] = {
            "lifespan": "off",
            "ws_ping_interval": None,  # KVS does not ping; idle timeout is ours to enforce
        }
        tls = {"ssl_certfile": str(self.settings.ca_file), "ssl_keyfile": str(self.key_file)}
        self._servers = [
            LoopServer(server_config(self.app, **common), http_sock),
            LoopServer(server_config(self.app, **common, **tls), tls_sock),
        ]
        for server in self._servers:
            server.begin()
        try:
            for server in self._servers:
                await server.wait_started()
        except BaseException:
            await self.stop()
            raise
        log.info("local cloud on %s (WSS %s)", local.url, local.wss_url)

    async def stop(self) -> None:
        await self.alexa.close()
        await self.kvs.close_all()
        await self.turn.stop()
        for server in self._servers:
            server.uvicorn.should_exit = True
        for server in self._servers:
            await server.stop()
        self._servers.clear()
        self.db.close()
        self.s3.close()

    async def __aenter__(self) -> LocalCloud:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- app ---------------------------------------------------------------------------
    def _build_app(self) -> ASGIApp:
        kvs, lwa, gw = self.kvs, self.lwa, self.gateway
        routes = [Route(path, kvs.rest, methods=["POST"]) for path in kvs.OPERATIONS]
        routes += [
            WebSocketRoute("/", kvs.websocket),
            Route("/auth/o2/token", lwa.token, methods=["POST"]),
            Route("/user/profile", lwa.profile, methods=["GET"]),
            Route("/v3/events", gw.post_event, methods=["POST"]),
            Route("/_local/lwa/link", lwa.admin_link, methods=["POST"]),
            Route("/_local/lwa/faults", lwa.admin_faults, methods=["POST"]),
            Route("/_local/lwa/revoke", lwa.admin_revoke, methods=["POST"]),
            Route("/_local/lwa/expire", lwa.admin_expire, methods=["POST"]),
            Route("/_local/events", gw.admin_events, methods=["GET"]),
            Route("/_local/events", gw.admin_clear, methods=["DELETE"]),
            Route("/_local/announcements", self._announcements, methods=["GET"]),
            Route("/_local/gateway/faults", gw.admin_faults, methods=["POST"]),
            Route("/_local/status", self._status, methods=["GET"]),
            # S3, path-style, last: /<bucket>/<key> would shadow every route above.
            Route("/{bucket}", self.s3.bucket, methods=["GET", "HEAD", "PUT"]),
            Route("/{bucket}/{key:path}", self.s3.object, methods=["GET", "HEAD", "PUT"]),
        ]
        local = self.settings.local
        guarded = AdminGuard(Starlette(routes=routes), self.admin_token)
        return HostGuard(guarded, local.allowed_hosts, bind_host=local.host)

    async def _announcements(self, request: Request) -> JSONResponse:
        """``GET /_local/announcements``: what Alexa said or did for each event, oldest first."""
        items = [a.as_dict() for a in self.alexa.announcements]
        return JSONResponse(items, headers={"Cache-Control": "no-store"})

    async def _status(self, request: Request) -> JSONResponse:
        channels = []
        for row in self.db.list_channels():
            channels.append(
                {
                    "ChannelName": row.name,
                    "ChannelARN": row.arn,
                    "master": self.kvs.master_connected(row.arn),
                    "viewers": self.kvs.viewer_ids(row.arn),
                }
            )
        return JSONResponse(
            {
                "url": self.settings.local.url,
                "wss": self.settings.local.wss_url,
                "channels": channels,
                "events": len(self.gateway.events),
            }
        )


# -- running it in a thread (synchronous callers and tests) -----------------------------
class CloudThread:
    """A LocalCloud running in its own event loop in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cloud: LocalCloud | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="local-cloud", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            self.cloud = LocalCloud(self.settings)
            await self.cloud.start()
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        await self._stop.wait()
        await self.cloud.stop()

    def start(self, timeout: float = 15.0) -> CloudThread:
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("local cloud did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def call(self, coro: Any, timeout: float = 10.0) -> Any:
        """Run a coroutine in the cloud's loop from another thread."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> CloudThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_cloud_thread(settings: Settings) -> CloudThread:
    """Start the local cloud in a background thread; ``.stop()`` ends it."""
    return CloudThread(settings).start()


def run_cloud(settings: Settings) -> None:
    """``alexa-doorbell cloud``: run until Ctrl-C, printing where everything is."""
    from rich.console import Console

    console = Console(soft_wrap=True, highlight=False)

    async def main() -> None:
        cloud = LocalCloud(settings)
        await cloud.start()
        local = settings.local
        env = settings.aws_env()
        console.print(f"[bold]Local cloud[/bold] (data in {settings.cloud_dir})")
        console.print(f"  REST (KVS, LWA, event gateway): {local.url}")
        console.print(
            f"  KVS signaling WebSocket:        {local.wss_url}  (also ws on the HTTP port)"
        )
        console.print(
            f"  S3 (path-style, both ports):    bucket {bucket_name(settings)}, presigned URLs "
            f"https://{local.host}:{local.tls_port}/..."
        )
        console.print(f"  TLS certificate (trust it):     {settings.ca_file}")
        if await cloud.turn.ensure_started():
            turn = cloud.turn
            console.print(f"  STUN/TURN (coturn):             {turn.stun_url}, {turn.uris[0]}")
            console.print(f"  TURN over TLS:                  {turn.uris[2]}")
        else:
            console.print(f"  STUN/TURN:                      none ({cloud.turn.error})")
        for cam in settings.cameras:
            row = cloud.db.channel_by_name(cam.channel_name)
            console.print(f"  channel {cam.channel_name}: {row.arn if row else '?'}")
        # The documented default secret opens nothing but this emulator; a custom one stays hidden.
        secret = env["AWS_SECRET_ACCESS_KEY"]
        if secret != LOCAL_AWS_SECRET_ACCESS_KEY:
            secret = "<your ALEXA_DOORBELL_LOCAL__AWS_SECRET_ACCESS_KEY>"
        console.print("Point AWS tools at it:")
        console.print(f"  export AWS_ENDPOINT_URL={env['AWS_ENDPOINT_URL']}")
        console.print(f"  export AWS_ACCESS_KEY_ID={env['AWS_ACCESS_KEY_ID']}")
        console.print(f"  export AWS_SECRET_ACCESS_KEY={secret}")
        console.print(f"  export AWS_DEFAULT_REGION={settings.region}")
        if cloud.admin_token is not None:
            shown = cloud.admin_token
            if os.environ.get(ADMIN_TOKEN_ENV, "").strip() == shown:
                shown = f"<your {ADMIN_TOKEN_ENV}>"
            console.print(f"Admin API (/_local/...): Authorization: Bearer {shown}")
        if not is_loopback(local.host):
            console.print(
                "[yellow]Listening beyond this machine: anyone who can reach it can use the "
                "emulator with its credentials (change them: ALEXA_DOORBELL_LOCAL__"
                "AWS_SECRET_ACCESS_KEY, ALEXA_DOORBELL_LOCAL__LWA_CLIENT_SECRET); the admin API "
                "needs the token above.[/]"
            )
        console.print("Ctrl-C to stop.")
        try:
            await asyncio.Event().wait()
        finally:
            await cloud.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
